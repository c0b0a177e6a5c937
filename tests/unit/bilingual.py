"""What makes a refusal's Chinese its own: present, Chinese, not the generic wording of its kind,
carrying the values its English names, and its code with a title of its own."""

from __future__ import annotations

import re

from shared.errors import DomainError
from shared.http import status_of
from shared.problems import TITLES, generic_chinese

_CJK = re.compile(r"[\u4e00-\u9fff]")
# Values a message carries: anything with a digit in it (dates, ids, jurisdictions, quarters).
_VALUE = re.compile(r"[\w.:-]*\d[\w.:-]*")


def bilingual_problems(error: DomainError) -> list[str]:
    """Why `error` would answer a Chinese reader badly (nothing when its Chinese is its own)."""
    where = f"{type(error).__name__}(code={error.code!r}, detail={error.detail!r})"
    zh = error.detail_zh
    if not zh or not zh.strip():
        return [f"{where} has no detail_zh"]
    problems = []
    if not _CJK.search(zh):
        problems.append(f"{where}: detail_zh {zh!r} is not Chinese")
    if zh == generic_chinese(error.code, status_of(error)):
        problems.append(f"{where}: detail_zh is only the generic wording of its kind")
    missing = [v.strip(".:-") for v in _VALUE.findall(error.detail) if v.strip(".:-") not in zh]
    if missing:
        problems.append(f"{where}: detail_zh {zh!r} lacks the values {missing}")
    if error.code not in TITLES:
        problems.append(f"{where}: code {error.code!r} has no title in shared/problems.py TITLES")
    return problems
