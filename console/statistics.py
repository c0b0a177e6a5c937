"""The quarterly statistics as the dashboard and its exports show them: the archive's figures per
jurisdiction (the city sees all ten, a county its own), labelled with the archive's own Chinese
descriptions of each figure."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from services.archive.domain import Figures

FIGURES: list[tuple[str, str]] = [
    (name, (info.description or name).split("。")[0].split("（")[0].split("：")[0])
    for name, info in Figures.model_fields.items()
    if info.annotation in (int, float, float | None)
]
"""(figure, its Chinese label) of every countable figure, in the archive's order."""


def statistics_rows(report: dict[str, Any], jurisdictions: list[str]) -> list[dict[str, Any]]:
    """One row per jurisdiction the user holds, then the city-wide total when the user holds the city."""
    rows = [r for r in report.get("rows") or [] if r.get("jurisdiction") in jurisdictions]
    total = report.get("total")
    if total and "331100" in jurisdictions:
        name = str(total.get("name") or "全市")
        rows.append({**total, "name": name if "合计" in name else f"{name}（合计）"})
    return [
        {
            "jurisdiction": r.get("jurisdiction"),
            "name": r.get("name") or r.get("jurisdiction"),
            "figures": r.get("figures") or {},
            "indicator": (r.get("indicator") or {}).get("score"),
        }
        for r in rows
    ]


def xlsx_of(title: str, header: list[str], table: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "统计"
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in table:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
