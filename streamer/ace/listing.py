"""Walking a paged list envelope (``/sites/``, ``configured_points``): pages 1..pages, checked whole.

One walk fetches page 1, refuses a ``pages`` above the cap, fetches the rest concurrently and checks
that the pages agree with each other (``pagination.listing_problem``). A walk that fails either check
raises ``AceTransient``, so the caller walks the listing again within its retry policy: a listing that
disagrees with itself is an incomplete answer, never a list of removals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streamer.ace.http import Endpoint, QueryParams
from streamer.ace.pagination import ListPage, listing_problem
from streamer.ace.retry import AceTransient
from streamer.logs import log_event
from streamer.metrics import API_LIMITS, API_LIST_MISMATCH

log = logging.getLogger("streamer.ace")

GetPage = Callable[[QueryParams], Awaitable[ListPage]]
"""One page of the listing, with the client's budget and per-request retries."""


@dataclass(frozen=True, slots=True)
class ListingRules:
    per_page: int
    max_pages: int
    concurrency: int


async def walk_listing(endpoint: Endpoint, get: GetPage, rules: ListingRules) -> list[ListPage]:
    """Pages 1..pages of one listing, once, checked for agreement between them."""
    first = await get({"page": 1, "per_page": rules.per_page})
    if first.pages > rules.max_pages:
        API_LIMITS.labels(reason="too_many_pages").inc()
        raise AceTransient(
            "too_many_pages", f"listing says {first.pages} pages, over the cap of {rules.max_pages}"
        )
    pages = [first, *await _later_pages(get, range(2, first.pages + 1), rules)]
    problem = listing_problem(pages)
    if problem is not None:
        API_LIST_MISMATCH.labels(call=endpoint.label).inc()
        log_event(log, logging.WARNING, "ace list mismatch", call=endpoint.describe(), problem=problem)
        raise AceTransient("list_mismatch", f"listing disagrees with itself: {problem}")
    return pages


async def _later_pages(get: GetPage, numbers: range, rules: ListingRules) -> list[ListPage]:
    results: dict[int, ListPage] = {}
    todo = iter(numbers)

    async def worker() -> None:
        for number in todo:  # shared iterator: each page number is taken by one worker
            results[number] = await get({"page": number, "per_page": rules.per_page})

    workers = [asyncio.create_task(worker()) for _ in range(min(rules.concurrency, len(numbers)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:  # one failed page fails the listing: stop the others
            task.cancel()
    return [results[number] for number in numbers]
