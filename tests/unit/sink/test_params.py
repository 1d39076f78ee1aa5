"""A StringArray parameter reaches the query as exactly the text clickhouse-connect makes of the list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver import binding
from hypothesis import given
from hypothesis import strategies as st

from streamer.errors import ConfigError
from streamer.sink import params, rollups

ESCAPED = st.sampled_from(["'", "\\", "`", "\t", "\n"])
NAMES = st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | ESCAPED)


@given(NAMES)
def test_a_string_array_binds_as_the_librarys_text_for_the_same_list(values: list[str]) -> None:
    """Any names, escaped characters and empty names included: the same parameter text, byte for byte."""
    assert binding.format_bind_value(params.StringArray(values)) == binding.format_bind_value(values)


def test_a_recompute_binds_as_it_did_with_plain_lists() -> None:
    """The recompute statement the engine receives is the one lists of names gave."""
    keys = frozenset(("s'1", f"p{i}\\{'`' * (i % 3)}", 3600 * (i % 4)) for i in range(50))
    touched = rollups.Touched(keys)
    sql = rollups.recompute_sql("`db`", rollups.keys_filter(touched))
    ours = rollups.recompute_params(touched, version=9)
    lists = {k: list(v.values) if isinstance(v, params.StringArray) else v for k, v in ours.items()}
    assert any(isinstance(v, params.StringArray) for v in ours.values())
    assert binding.bind_query(sql, ours) == binding.bind_query(sql, lists)


@pytest.fixture
def fresh_check() -> Iterator[None]:
    params.check_binding.cache_clear()
    yield
    params.check_binding.cache_clear()


@pytest.mark.usefixtures("fresh_check")
def test_the_start_up_check_refuses_a_library_that_escapes_differently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clickhouse-connect whose formatting changed fails the check with what to install."""
    params.check_binding()  # the installed version passes
    params.check_binding.cache_clear()
    original = binding.format_bind_value

    def escapes_more(value: object, *args: object, **kwargs: object) -> str:
        text = original(value, *args, **kwargs)
        return text.replace("\t", "\\t") if isinstance(value, list) else text

    monkeypatch.setattr(binding, "format_bind_value", escapes_more)
    with pytest.raises(ConfigError, match=r"constraints\.txt"):
        params.check_binding()
