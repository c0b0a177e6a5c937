"""The one bounded most-recently-used map (token cache, projected rows in hand)."""

from __future__ import annotations

from shared.recent import Recent


def test_the_least_recently_used_goes_first() -> None:
    recent: Recent[str, int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1  # a is now the newest
    recent.put("c", 3)
    assert ("a" in recent, "b" in recent, "c" in recent) == (True, False, True)
    recent.put("a", 4)
    recent.put("d", 5)
    assert (recent.get("a"), recent.get("c"), recent["d"], len(recent)) == (4, None, 5, 2)
    assert recent.pop("a") == 4 and recent.pop("a") is None and len(recent) == 1
