"""Builds the Word templates of the documents (templates/official.docx for letters, templates/form.docx
for the 审批表), laid out as GB/T 9704-2012 lays out a document: `python -m
services.clarification.docx_templates`. The office may edit the committed .docx in Word instead; the
docxtpl tags ({{ … }}, {%p … %}, {%tr … %}) name the fields of documents.Layout."""

from __future__ import annotations

from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.text.paragraph import Paragraph

from services.clarification.documents import TEMPLATES_DIR

RED = RGBColor(0xD4, 0x00, 0x00)
BIAO_SONG = "方正小标宋简体"  # 发文机关标志 and title
FANG_SONG = "仿宋_GB2312"  # body, 3号 (16 pt)
HEI = "黑体"
SONG = "宋体"  # page numbers


def _font(
    paragraph: Paragraph, east_asia: str, size: float, *, bold: bool = False, color: RGBColor | None = None
) -> None:
    for run in paragraph.runs:
        run.font.size = Pt(size)
        run.font.bold = bold
        run.font.name = east_asia
        run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), east_asia)
        if color is not None:
            run.font.color.rgb = color


def _border(paragraph: Paragraph, side: str, size_eighths: int, color: str = "000000") -> None:
    p_pr = paragraph._p.get_or_add_pPr()
    borders = p_pr.find(qn("w:pBdr"))
    if borders is None:
        borders = OxmlElement("w:pBdr")
        p_pr.append(borders)
    edge = OxmlElement(f"w:{side}")
    edge.set(qn("w:val"), "single")
    edge.set(qn("w:sz"), str(size_eighths))
    edge.set(qn("w:space"), "1")
    edge.set(qn("w:color"), color)
    borders.append(edge)


class Builder:
    def __init__(self) -> None:
        self.doc = Document()
        section = self.doc.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)
        section.top_margin, section.bottom_margin = Mm(37), Mm(35)
        section.left_margin, section.right_margin = Mm(28), Mm(26)
        style = self.doc.styles["Normal"]
        style.font.name = FANG_SONG
        style.font.size = Pt(16)
        style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FANG_SONG)
        style.paragraph_format.space_after = Pt(0)
        style.paragraph_format.line_spacing = Pt(28.9)  # 22 lines in the 225 mm 版心
        self._page_number(section.footer.paragraphs[0])

    def _page_number(self, paragraph: Paragraph) -> None:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        paragraph.add_run("— ")
        field = OxmlElement("w:fldSimple")
        field.set(qn("w:instr"), "PAGE")
        run = OxmlElement("w:r")
        text = OxmlElement("w:t")
        text.text = "1"
        run.append(text)
        field.append(run)
        paragraph._p.append(field)
        paragraph.add_run(" —")
        _font(paragraph, SONG, 14)

    def line(
        self,
        text: str,
        *,
        font: str = FANG_SONG,
        size: float = 16,
        bold: bool = False,
        color: RGBColor | None = None,
        align: WD_ALIGN_PARAGRAPH | None = None,
        first_indent: float = 0,
        right_indent: float = 0,
    ) -> Paragraph:
        paragraph = self.doc.add_paragraph(text)
        if align is not None:
            paragraph.alignment = align
        if first_indent:
            paragraph.paragraph_format.first_line_indent = Pt(first_indent)
        if right_indent:
            paragraph.paragraph_format.right_indent = Pt(right_indent)
        _font(paragraph, font, size, bold=bold, color=color)
        return paragraph

    def head(self, number: str) -> None:
        """发文机关标志 (red, centred), 发文字号, the red 版头分隔线, the title."""
        self.line("{%p for name in organ %}")
        self.line("{{ name }}", font=BIAO_SONG, size=24, color=RED, align=WD_ALIGN_PARAGRAPH.CENTER)
        self.line("{%p endfor %}")
        rule = self.line(number, align=WD_ALIGN_PARAGRAPH.CENTER)
        rule.paragraph_format.space_before = Pt(14)
        rule.paragraph_format.space_after = Pt(12)
        _border(rule, "bottom", 24, "D40000")
        title = self.line("{{ title }}", font=BIAO_SONG, size=22, align=WD_ALIGN_PARAGRAPH.CENTER)
        title.paragraph_format.space_before = Pt(28.9)
        title.paragraph_format.space_after = Pt(14)

    def imprint(self) -> None:
        """版记: 抄送 and 印发机关和印发日期 between rules."""
        self.line("{%p if cc %}")
        cc = self.line("抄送：{{ cc }}。", size=14, first_indent=0)
        cc.paragraph_format.left_indent = Pt(14)
        _border(cc, "top", 8)
        self.line("{%p endif %}")
        self.line("{%p if printer %}")
        printer = self.line("{{ printer }}\t{{ printed_on }}印发", size=14)
        printer.paragraph_format.left_indent = Pt(14)
        printer.paragraph_format.tab_stops.add_tab_stop(Mm(150), WD_TAB_ALIGNMENT.RIGHT)
        _border(printer, "top", 4)
        _border(printer, "bottom", 8)
        self.line("{%p endif %}")

    def save(self, path: Path) -> None:
        self.doc.core_properties.title = "{{ title }}"
        self.doc.save(str(path))


def letter() -> Builder:
    """拟澄清告知书, 澄清通知书, 关于失实检举控告澄清的函."""
    b = Builder()
    b.head("{{ number }}")
    b.line("{{ addressee }}：")
    b.line("{%p for para in paragraphs %}")
    b.line("{{ para }}", first_indent=32)
    b.line("{%p endfor %}")
    b.line("")
    b.line("{%p if sealed %}")
    b.line("（印章位置）", size=12, color=RED, align=WD_ALIGN_PARAGRAPH.RIGHT, right_indent=96)
    b.line("{%p endif %}")
    b.line("{%p for name in signatories %}")
    b.line("{{ name }}", align=WD_ALIGN_PARAGRAPH.RIGHT, right_indent=64)
    b.line("{%p endfor %}")
    b.line("{{ dated }}", align=WD_ALIGN_PARAGRAPH.RIGHT, right_indent=64)
    b.line("")
    b.imprint()
    return b


def form() -> Builder:
    """失实检举控告澄清审批表: one table row per row of the layout."""
    b = Builder()
    b.head("编号：{{ number }}")
    table = b.doc.add_table(rows=3, cols=2)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.rows[0].cells[0].text = "{%tr for row in rows %}"
    label, value = table.rows[1].cells
    label.width, value.width = Mm(40), Mm(116)
    label.text = "{{ row.label }}"
    value.paragraphs[0].text = "{%p for line in row.lines %}"
    value.add_paragraph("{{ line }}")
    value.add_paragraph("{%p endfor %}")
    table.rows[2].cells[0].text = "{%tr endfor %}"
    for row in table.rows:
        for cell in row.cells:
            for paragraph in cell.paragraphs:
                _font(paragraph, FANG_SONG, 14)
    b.line("填报日期：{{ dated }}", size=14, align=WD_ALIGN_PARAGRAPH.RIGHT)
    return b


def main() -> None:
    letter().save(TEMPLATES_DIR / "official.docx")
    form().save(TEMPLATES_DIR / "form.docx")
    print(f"wrote {TEMPLATES_DIR / 'official.docx'} and {TEMPLATES_DIR / 'form.docx'}")


if __name__ == "__main__":
    main()
