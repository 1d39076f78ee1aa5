"""SitePoints answers exactly as a dict of name → enabled, through compactions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.processor.site_points import SitePoints

NAMES = [f"ahu_{i}/sat" for i in range(150)] + ["", "/", "é", "a\udc80b", "zz", "ahu_1", "ahu_1/sa"]


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(["on", "off", "remove"])), min_size=0, max_size=900
    )
)
def test_matches_a_dict_through_compactions(ops: list[tuple[str, str]]) -> None:
    """Every get and the size equal a plain dict's after any sequence of sets and removals."""
    table, want = SitePoints(), dict[str, bool]()
    for name, op in ops:
        if op == "remove":
            assert table.remove(name) == (want.pop(name, None) is not None)
        else:
            table.set(name, op == "on")
            want[name] = op == "on"
        assert table.get(name) == want.get(name)
        assert len(table) == len(want)
    for name in [*NAMES, "missing", "ahu_1/sat/x"]:
        assert table.get(name) == want.get(name), name


def test_a_large_site_settles_into_the_compact_part() -> None:
    """50,000 points: every one found with its flag after compactions; removals and re-adds too."""
    table = SitePoints()
    for i in range(50_000):
        table.set(f"bldg/ahu_{i:05d}/sat", i % 3 != 0)
    assert len(table) == 50_000
    assert all(table.get(f"bldg/ahu_{i:05d}/sat") == (i % 3 != 0) for i in range(0, 50_000, 7))
    assert table.get("bldg/ahu_50000/sat") is None
    for i in range(0, 50_000, 2):
        assert table.remove(f"bldg/ahu_{i:05d}/sat")
    assert not table.remove("bldg/ahu_00000/sat")
    table.set("bldg/ahu_00000/sat", True)
    assert len(table) == 25_001
    assert table.get("bldg/ahu_00000/sat") is True
    assert table.get("bldg/ahu_00002/sat") is None
    assert table.get("bldg/ahu_00003/sat") is False
