"""Sites whose ``ace.sync`` record cannot be decoded: failed visibly until an operator resets them.

Restarting such a site at now − ``initial_lookback_s`` would silently skip everything between its lost
watermark and then. So the site fails every cycle instead, with a ``SyncStateError`` naming the way out
(counted in ``streamer_site_failures_total``, logged, and recorded as a failed ``ace.sync_runs`` row
that ``streamer status`` shows as the site's last error); the other sites go on. The operator then
chooses where it resumes: ``streamer producer --reset-site S --from T`` writes a fresh record whose
first window starts exactly at ``T``. The worker that owns the site (every worker without
``producer_group``) re-reads the site's ``ace.sync`` partition before each of its cycles while the site
is failed, so the reset takes effect without a restart; a broken site never publishes a state of its own
meanwhile, so the reset cannot be overwritten.
"""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError, SyncStateError
from streamer.kafka import ensure_topics, reliable_producer, start_client
from streamer.logs import log_event
from streamer.models import BackfillProgress, SyncRun, SyncState
from streamer.producer.context import ProducerContext
from streamer.producer.publisher import topic_partitions
from streamer.producer.shard import sync_partition
from streamer.producer.state import decode_sync, read_compacted
from streamer.settings import Settings

log = logging.getLogger(__name__)


async def read_site_state(
    settings: Settings, partitions: list[int], site: str
) -> tuple[SyncState | None, str | None]:
    """The site's current ``ace.sync`` record: (state, None), (None, why undecodable) or (None, None)."""
    # The site's key lives in one partition: reading that one to its end is the whole truth for it.
    partition = sync_partition(site, partitions)
    view = await read_compacted(settings, settings.topic_sync, [partition])
    broken: dict[str, str] = {}
    states = decode_sync({k: v for k, v in view.items() if k == site.encode()}, broken)
    return states.get(site), broken.get(site)


async def check_site_state(ctx: ProducerContext, site: str) -> None:
    """For a site whose record was undecodable: adopt a reset if one was written, else fail the site."""
    state, error = await read_site_state(ctx.settings, ctx.partitions[ctx.settings.topic_sync], site)
    if error is None:
        ctx.book.state_read(site, state)
        log_event(
            log, logging.INFO, "sync state readable again", site=site, watermark=state and state.watermark_ms
        )
        return
    ctx.book.state_unreadable(site, error)
    failure = SyncStateError(
        f"the ace.sync record of site {site} cannot be decoded ({error}); the site is not synced until "
        f"an operator chooses where it resumes: streamer producer --reset-site {site} --from TIME"
    )
    await _record_failure(ctx, site, failure)
    raise failure


async def _record_failure(ctx: ProducerContext, site: str, exc: SyncStateError) -> None:
    """A failed ``ace.sync_runs`` row, so ``streamer status`` shows the site's error."""
    now = ctx.clock()
    run = SyncRun(
        sync_id=f"{site}:sync-state:{now}",
        site=site,
        window_start_ms=now,
        window_end_ms=now,
        kind="incremental",
        started_at_ms=now,
        duration_ms=0,
        api_calls=0,
        pages=0,
        samples_fetched=0,
        records_published=0,
        samples_published=0,
        errors=1,
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
    )
    try:
        await ctx.send_and_wait(ctx.settings.topic_sync_runs, site.encode(), run.model_dump_json().encode())
    except KafkaTransientError as send_error:
        log_event(log, logging.WARNING, "sync run not recorded", site=site, error=str(send_error))


async def reset_site(
    settings: Settings, site: str, from_ms: int, now_ms: int, *, force: bool = False
) -> SyncState:
    """Write a fresh ``ace.sync`` record for ``site`` whose first window starts at ``from_ms``.

    Refuses (``SyncStateError``) a site whose record is readable unless ``force``: a producer running
    with it would overwrite the reset with its own state at its next window.
    """
    await ensure_topics(settings)
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-reset")
    await start_client(producer, settings)
    try:
        partitions = await topic_partitions(producer, settings.topic_sync)
        current, _ = await read_site_state(settings, partitions, site)
        if current is not None and not force:
            raise SyncStateError(
                f"site {site} has a readable sync state (watermark {current.watermark_ms}); a running "
                "producer would overwrite a reset: stop the producers that sync it, then pass --force"
            )
        # A backfill in progress starts its next window at the watermark, without the overlap.
        state = SyncState(
            site=site,
            watermark_ms=from_ms,
            last_sync_id=f"reset:{now_ms}",
            backfill=BackfillProgress(target_end_ms=max(now_ms, from_ms)),
            updated_at_ms=now_ms,
        )
        try:
            await producer.send_and_wait(
                settings.topic_sync, state.model_dump_json().encode(), key=site.encode()
            )
        except KafkaError as exc:
            raise KafkaTransientError(f"publishing to {settings.topic_sync} failed: {exc}") from exc
    finally:
        await producer.stop()
    log_event(log, logging.WARNING, "sync state reset", site=site, watermark=from_ms, forced=force)
    return state
