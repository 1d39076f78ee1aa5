"""Prometheus metrics of every component, defined once so names never drift between modules."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# -- ACE client
API_REQUEST_SECONDS = Histogram(
    "streamer_ace_request_seconds",
    "ACE API request latency.",
    ["endpoint"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
API_RETRIES = Counter("streamer_ace_retries_total", "ACE API retries.", ["reason"])
API_PAGES = Counter("streamer_ace_pages_total", "Timeseries pages fetched.", ["site"])
API_CLOCK_OFFSET = Gauge(
    "streamer_ace_clock_offset_seconds", "The API's clock (its latest Date header) minus the local clock."
)
API_LIMITS = Counter(
    "streamer_ace_limit_exceeded_total", "ACE answers refused by the client's caps.", ["reason"]
)
API_LIST_MISMATCH = Counter(
    "streamer_ace_list_mismatch_total", "Paged listings that disagreed with themselves.", ["call"]
)
POINTS_REFRESH_FAILURES = Counter(
    "streamer_points_refresh_failures_total",
    "Points refreshes that failed; the previous table was kept.",
    ["site", "reason"],
)

# -- producer
SAMPLES_FETCHED = Counter("streamer_samples_fetched_total", "Samples returned by the API.", ["site"])
RECORDS_PUBLISHED = Counter("streamer_records_published_total", "Records acknowledged by Kafka.", ["topic"])
SAMPLES_MALFORMED = Counter(
    "streamer_samples_malformed_total", "Samples the producer skipped as malformed.", ["site", "reason"]
)
SAMPLES_PUBLISHED = Counter("streamer_samples_published_total", "Samples acknowledged by Kafka.", ["site"])
SAMPLES_UNCHANGED = Counter(
    "streamer_samples_unchanged_total",
    "Samples an incremental window re-read in its overlap as already published, so not published again.",
    ["site"],
)
SITE_FAILURES = Counter("streamer_site_failures_total", "Failed site cycles.", ["site", "error"])
WATERMARK_AGE = Gauge("streamer_watermark_age_seconds", "Now minus the site's watermark.", ["site"])
NEXT_CYCLE_AT = Gauge(
    "streamer_producer_next_cycle_timestamp_seconds",
    "When the next producer cycle starts (epoch s); 0 while one runs.",
)
REPAIR_WINDOWS = Counter("streamer_repair_windows_total", "Windows fetched again (kind repair).", ["site"])
REPAIR_SAMPLES_RECOVERED = Counter(
    "streamer_repair_samples_recovered_total",
    "Samples stored after a repair that were missing before.",
    ["site"],
)
REPAIR_API_REQUESTS = Counter("streamer_repair_api_requests_total", "ACE API requests of repairs.", ["site"])
REPAIR_REVISITS = Counter(
    "streamer_repair_revisits_total",
    "Hours revisited, by outcome: complete, refetched, deferred (budget), never_read, unreadable.",
    ["site", "outcome"],
)
COMPLETENESS_24H = Gauge(
    "streamer_completeness_ratio",
    "Samples stored over promised, of the hours of the last 24 the repair loop read.",
    ["site"],
)

# -- processor
SAMPLES_CONSUMED = Counter("streamer_samples_consumed_total", "Samples in records the processor consumed.")
SAMPLES_DROPPED = Counter("streamer_samples_dropped_total", "Samples not collected.", ["reason"])
SAMPLES_REJECTED = Counter("streamer_samples_rejected_total", "Invalid samples.", ["reason"])
ROWS_INSERTED = Counter("streamer_rows_inserted_total", "Rows inserted into ClickHouse.", ["table"])
BATCH_ROWS = Histogram(
    "streamer_batch_rows",
    "Rows per insert batch.",
    buckets=(10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000),
)
INSERT_SECONDS = Histogram(
    "streamer_insert_seconds",
    "ClickHouse insert latency.",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DLQ_RECORDS = Counter("streamer_dlq_records_total", "Records sent to the DLQ.", ["error_class"])
DLQ_DEPTH = Gauge(
    "streamer_dlq_depth", "Records ace.dlq retains (end minus beginning offsets), read at scrape."
)
CONSUMER_LAG = Gauge(
    "streamer_consumer_lag", "Records behind the end of the partition.", ["topic", "partition"]
)
FRESHNESS_SECONDS = Histogram(
    "streamer_freshness_seconds",
    "Sample time to visible in ClickHouse.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
