"""Pagination rules of the ACE API, as pure functions and one small state machine.

Two schemes: the paged list envelope (``/sites/``, ``configured_points``: pages 1..pages) and the
cursor walk of ``timeseries/paginated``. Body-shape problems raise ``AceTransient`` so the request is
retried like any other broken transfer; walk-level problems raise ``PaginationError`` and fail the
window. A listing whose pages disagree with each other (``listing_problem``) is an incomplete answer,
never a list of removals: the caller retries the whole listing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import orjson

from streamer.ace.retry import AceTransient
from streamer.errors import PaginationError


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of the list envelope. ``total`` comes from ``total`` or ``total_items``."""

    items: list[Any]
    pages: int
    total: int | None
    per_page: int | None = None


# orjson reads an integer past 64 bits as a float: the typed decoding leaves a page with one (or with
# one past int64, which msgspec cannot bound) to orjson.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = str | float | _Int | bool | None
# An empty name or time is a malformed sample: the page goes to orjson, and the grouper counts it, so a
# Sample the decoder made needs no check of its own on the hot path.
_Text = Annotated[str, msgspec.Meta(min_length=1)]


class Sample(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """One sample of a well-formed page, as the API gave it (``value`` a JSON scalar, ``None`` when
    absent; ``name`` and ``time`` not empty). Not tracked by the cyclic GC: it holds only strings and
    numbers. A field beyond the three leaves the page to orjson: msgspec would skip it unread, where
    orjson may refuse the page for it (a number past a double's range)."""

    name: _Text
    time: _Text
    value: _Scalar = None


class _Page(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    point_samples: list[Sample]
    next_cursor: str | None = None
    has_more: _Scalar = True


_PAGE = msgspec.json.Decoder(_Page)


@dataclass(frozen=True, slots=True)
class TimeseriesPage:
    """One timeseries page, handed over as decoded: ``samples`` are the API's samples, untouched (no
    per-sample work on the hot path): ``Sample`` structs when the page is well-formed (every sample an
    object with a string name and time and a scalar value, the envelope of JSON scalars), else the
    page as orjson decodes it, whatever each sample is (``decode_timeseries_page``)."""

    number: int
    samples: list[Any]
    next_cursor: str | None
    page_size: int = 0


def sample_fields(sample: Any) -> tuple[Any, Any, Any] | None:
    """``(name, time, value)`` of one of a page's samples, a ``Sample`` or an orjson dict (a missing
    value reads as None); ``None`` when the sample is not an object at all."""
    if sample.__class__ is Sample:
        return sample.name, sample.time, sample.value
    if isinstance(sample, dict):
        return sample.get("name"), sample.get("time"), sample.get("value")
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def parse_list_page(body: Any) -> ListPage:
    """The paged list envelope. ``pages`` missing: derived from total/per_page, else one page."""
    if not isinstance(body, dict):
        raise AceTransient("invalid_body", f"list envelope is a {type(body).__name__}, not an object")
    items = body.get("items")
    if not isinstance(items, list):
        # An error page answered with 200 must not read as "no points": that would delete them all.
        raise AceTransient("invalid_body", "list envelope has no 'items' list")
    total = _as_int(body.get("total"))
    if total is None:
        total = _as_int(body.get("total_items"))
    pages = _as_int(body.get("pages"))
    per_page = _as_int(body.get("per_page")) or None
    if pages is None:
        pages = math.ceil(total / per_page) if total is not None and per_page else 1
    return ListPage(items=items, pages=max(pages, 1), total=total, per_page=per_page)


def listing_problem(pages: list[ListPage]) -> str | None:
    """Why pages 1..n of one listing disagree with each other (``None``: they agree).

    Checked: the same ``pages`` and ``total`` on every page, no empty page before the last, no page
    before the last shorter than its ``per_page``, as many items as ``total`` says, no name twice.
    """
    first = pages[0]
    for number, page in enumerate(pages, 1):
        if (page.pages, page.total) != (first.pages, first.total):
            return (
                f"page {number} says pages={page.pages} total={page.total}, "
                f"page 1 said pages={first.pages} total={first.total}"
            )
        if number < len(pages) and (not page.items or len(page.items) < (page.per_page or 0)):
            return f"page {number} of {len(pages)} holds {len(page.items)} items of {page.per_page}"
    count = sum(len(page.items) for page in pages)
    if first.total is not None and count != first.total:
        return f"{count} items on {len(pages)} pages, total says {first.total}"
    names = [i["name"] for page in pages for i in page.items if isinstance(i, dict) and "name" in i]
    repeated = len(names) - len(set(map(str, names)))
    if repeated:
        return f"{repeated} items repeated across pages"
    return None


def decode_timeseries_page(content: bytes) -> tuple[list[Any], str | None]:
    """The samples and next cursor of a page's body: one typed decoding into ``Sample`` structs when
    the page is well-formed (~2x cheaper than dicts, and nothing for the cyclic GC to track), else
    orjson's dicts and ``parse_timeseries_page``, which decide as they always did (a malformed sample
    is the grouper's to count, a broken envelope or body is a transient failure)."""
    try:
        page = _PAGE.decode(content)
    except (msgspec.DecodeError, RecursionError):  # ValidationError included
        return parse_timeseries_page(orjson.loads(content))
    return page.point_samples, _next_cursor(page.next_cursor, page.has_more)


def parse_timeseries_page(body: Any) -> tuple[list[Any], str | None]:
    """The samples of one page and the cursor of the next one (``None``: the walk is over).

    The walk ends when ``has_more`` is false or ``next_cursor`` is null/absent/empty, whichever first.
    """
    if not isinstance(body, dict):
        raise AceTransient("invalid_body", f"timeseries page is a {type(body).__name__}, not an object")
    samples = body.get("point_samples")
    if not isinstance(samples, list):
        # A 200 without samples is an error page, not the end of the data: ending here would truncate.
        raise AceTransient("invalid_body", "timeseries page has no 'point_samples' list")
    cursor = body.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        cursor = str(cursor)
    return samples, _next_cursor(cursor, body.get("has_more", True))


def _next_cursor(cursor: str | None, more: Any) -> str | None:
    if isinstance(more, str):
        more = more.strip().lower() not in ("false", "0", "")
    return cursor if more and cursor else None


class CursorWalk:
    """State of one window walk: the cursor to ask for, the page number, and the page size.

    ``advance`` enforces the repeated-cursor guard and the page cap; ``shrink`` halves the page size
    after a failed transfer, and every ``grow_after`` good pages in a row double it again, up to the
    configured size: one bad stretch does not slow the rest of the window.
    """

    def __init__(
        self,
        *,
        max_pages: int,
        page_size: int,
        min_page_size: int,
        grow_after: int = 4,
        label: str = "walk",
    ) -> None:
        self.label = label  # names the call and site in errors
        self.max_pages = max_pages
        self.page_size = self.max_page_size = page_size
        self.min_page_size = min(min_page_size, page_size)
        self.grow_after = max(1, grow_after)
        self.cursor: str | None = None
        self.number = 1
        self.done = False
        self._seen: set[str] = set()
        self._good = 0

    def advance(self, next_cursor: str | None) -> None:
        """Record the page just fetched; raise if following ``next_cursor`` would break a rule."""
        if next_cursor is None:
            self.done = True
            return
        if next_cursor in self._seen:
            raise PaginationError(
                f"{self.label}: cursor repeated after page {self.number}: the API is looping"
            )
        if self.number >= self.max_pages:
            raise PaginationError(
                f"{self.label}: more than {self.max_pages} pages (the page cap); window not complete"
            )
        self._seen.add(next_cursor)
        self.cursor = next_cursor
        self.number += 1

    def shrink(self) -> bool:
        """Halve the page size, not below the minimum; ``True`` if it changed."""
        self._good = 0
        smaller = max(self.min_page_size, self.page_size // 2)
        changed = smaller != self.page_size
        self.page_size = smaller
        return changed

    def succeeded(self) -> bool:
        """Count a page that came through; ``True`` if the page size grew back because of it."""
        if self.page_size >= self.max_page_size:
            return False
        self._good += 1
        if self._good < self.grow_after:
            return False
        self._good = 0
        self.page_size = min(self.max_page_size, self.page_size * 2)
        return True
