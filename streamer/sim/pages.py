"""Timeseries pages: opaque cursors, page boundaries with repeated samples, optional empty pages.

A cursor pins the window, the order and a position in it, so a walk is stable even when the server's
mode changes mid-walk. Page ``n`` covers positions ``[offset, offset + page_size)`` of the window's
order; the next page starts ``repeat`` positions before this one ended, so the last few samples of
each page come again at the top of the next (downstream must not duplicate them). With
``empty_every`` N, data pages N, 2N, ... are each preceded by an empty page that carries a cursor.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace

import orjson

from streamer.sim.catalog import catalog_of
from streamer.sim.config import ORDERS, Gap, Order, SimConfig
from streamer.sim.model import window_samples, window_total
from streamer.sim.render import timeseries_body


@dataclass(frozen=True)
class Cursor:
    site: str
    start_ms: int
    end_ms: int
    order: Order
    offset: int = 0
    page: int = 1
    empty: bool = False


def encode_cursor(cursor: Cursor) -> str:
    fields = [cursor.site, cursor.start_ms, cursor.end_ms, cursor.order, cursor.offset, cursor.page]
    return base64.urlsafe_b64encode(orjson.dumps([*fields, int(cursor.empty)])).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor ``text`` stands for; ``ValueError`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        site, start, end, order, offset, page, empty = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise ValueError("invalid cursor") from None
    ints = (start, end, offset, page, empty)
    if not isinstance(site, str) or order not in ORDERS or not all(type(v) is int for v in ints):
        raise ValueError("invalid cursor")
    if offset < 0 or page < 1:
        raise ValueError("invalid cursor")
    return Cursor(site, start, end, order, offset, page, bool(empty))


@dataclass(frozen=True)
class PagePlan:
    """Where one page starts and ends in the window's order, and what comes next."""

    offset: int
    end: int
    has_more: bool
    next_cursor: Cursor | None


def plan_page(config: SimConfig, cursor: Cursor, page_size: int, repeat: int, empty_every: int) -> PagePlan:
    """The page ``cursor`` asks for (pure: same inputs, same page)."""
    if cursor.empty:  # an empty page that still carries a cursor: the walk goes on where it was
        following = replace(cursor, empty=False)
        return PagePlan(cursor.offset, cursor.offset, True, following)
    total = window_total(config, catalog_of(config, cursor.site), cursor.start_ms, cursor.end_ms)
    offset = min(cursor.offset, total)
    end = min(offset + page_size, total)
    if end >= total:
        return PagePlan(offset, end, False, None)
    following_page = cursor.page + 1
    following = replace(
        cursor,
        offset=max(offset + 1, end - repeat),
        page=following_page,
        empty=empty_every > 0 and following_page % empty_every == 0,
    )
    return PagePlan(offset, end, True, following)


def page_body(
    config: SimConfig,
    cursor: Cursor,
    page_size: int,
    repeat: int,
    empty_every: int,
    hidden: tuple[Gap, ...] = (),
) -> tuple[bytearray, int]:
    """(JSON body, samples in it) of the page ``cursor`` asks for, without the ``hidden`` spans.

    Sites at odd positions leave ``next_cursor`` out of their last page instead of sending null:
    either must end the walk.
    """
    plan = plan_page(config, cursor, page_size, repeat, empty_every)
    samples = window_samples(
        config,
        cursor.site,
        cursor.start_ms,
        cursor.end_ms,
        cursor.order,
        plan.offset,
        plan.end - plan.offset,
        hidden,
    )
    nxt = encode_cursor(plan.next_cursor) if plan.next_cursor else None
    omit = nxt is None and config.sites.index(cursor.site) % 2 == 1
    cat = catalog_of(config, cursor.site)
    return timeseries_body(cat, samples, nxt, plan.has_more, omit_cursor=omit), len(samples)
