"""An issued document's layout as DOCX (docxtpl, from the Word templates the office edits) and as PDF
(WeasyPrint, from an HTML rendering with the page set as GB/T 9704-2012 sets it, CJK fonts from
fonts-noto-cjk)."""

from __future__ import annotations

import io
from typing import Any, Literal
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.clarification.documents import TEMPLATES_DIR, Layout, cn_date

Format = Literal["docx", "pdf"]
MEDIA_TYPES: dict[Format, str] = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
DOCX_TEMPLATES = {"letter": "official.docx", "form": "form.docx"}
HTML_TEMPLATE = "official.html"

_HTML = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined, trim_blocks=True
)


def _context(layout: Layout) -> dict[str, Any]:
    """What both renderings see: the layout with its dates written as documents write them."""
    return {
        **layout.model_dump(),
        "is_form": layout.is_form,
        "dated": cn_date(layout.dated),
        "printed_on": cn_date(layout.printed_on) if layout.printed_on else "",
        "cc": "，".join(layout.cc),
    }


def to_docx(layout: Layout) -> bytes:
    from docxtpl import DocxTemplate

    template = DocxTemplate(TEMPLATES_DIR / DOCX_TEMPLATES["form" if layout.is_form else "letter"])
    template.render(_context(layout), autoescape=True)
    out = io.BytesIO()
    template.save(out)
    return out.getvalue()


def to_html(layout: Layout) -> str:
    return _HTML.get_template(HTML_TEMPLATE).render(_context(layout))


def to_pdf(layout: Layout) -> bytes:
    # Imported here: WeasyPrint loads Pango when imported, which only PDF rendering needs.
    from weasyprint import HTML

    pdf: bytes = HTML(string=to_html(layout), base_url=str(TEMPLATES_DIR)).write_pdf()
    return pdf


RENDERERS = {"docx": to_docx, "pdf": to_pdf}


def render(layout: Layout, fmt: Format) -> bytes:
    return RENDERERS[fmt](layout)


def content_disposition(doc_id: str, title: str, fmt: Format) -> str:
    """attachment, with an ASCII name (the id) and the Chinese one (RFC 6266 / RFC 5987)."""
    return f"attachment; filename=\"{doc_id}.{fmt}\"; filename*=UTF-8''{quote(f'{title}-{doc_id}.{fmt}')}"
