"""The one settings object, built once at the entry point and passed down.

Sources, highest first: keyword arguments, environment (``STREAMER_*``), a TOML file (``--config`` or
``STREAMER_CONFIG``), defaults. Every default works with ``streamer dev``. No other module reads the
environment.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from streamer.errors import ConfigError

ENV_PREFIX = "STREAMER_"
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\]")
_ORIGIN = re.compile(r"https?://[a-z0-9_.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")
DAY_MS = 86_400_000


class Settings(BaseSettings):
    """Every knob of streamer. Field ``x`` is environment variable ``STREAMER_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # -- general
    data_dir: Path = Field(Path(".streamer"), description="Local state: embedded ClickHouse, faust tables.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level: debug, info, warning, error."
    )
    log_format: Literal["console", "json"] = Field(
        "console", description="console (human) or json (one object per line)."
    )

    # -- ACE API
    ace_base_url: str = Field(
        "https://flightdeck.aceiot.cloud/api",
        description="Base URL of the ACE API (the simulator: http://127.0.0.1:8765/api).",
    )
    ace_token: SecretStr | None = Field(None, description="Bearer token (or use ace_token_file).")
    ace_token_file: Path | None = Field(None, description="File holding the bearer token.")
    ace_page_size: int = Field(50_000, ge=1, description="Samples per timeseries page (shrinks on failure).")
    ace_min_page_size: int = Field(
        1_000, ge=1, description="Smallest page the client shrinks to after failed transfers."
    )
    ace_points_page_size: int = Field(
        500, ge=1, description="Items per page of the configured-points and sites lists."
    )
    ace_max_pages: int = Field(200, ge=1, description="Page cap of one window walk.")
    ace_page_grow_after: int = Field(
        4, ge=1, description="Good pages at a shrunk page size before it doubles again (up to ace_page_size)."
    )
    ace_max_response_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Cap of one response body, decoded (a 50,000-sample page is about 4 MB).",
    )
    ace_max_list_pages: int = Field(
        1_000, ge=1, description="Cap of `pages` in a configured-points or sites listing."
    )
    # The margin only keeps windows out of the API's future: the Date header has a 1 s resolution and
    # a response is a fraction of a second old when read, so 2 s covers both. A sample the API stores
    # late is read again by the next windows' overlap whatever the margin, while every second of it is
    # a second of freshness: at 10 s, a 60 s poll had a p99 of 72 s (bench/portfolio.py), over its
    # 70 s target.
    ace_clock_margin_s: float = Field(
        2.0, ge=0, description="Windows end this far before the API's clock (its Date header)."
    )
    ace_timeout_s: float = Field(60.0, gt=0, description="Timeout of one HTTP request, body included.")
    ace_proxy_url: SecretStr | None = Field(
        None,
        description="HTTP proxy for the ACE API (http://[user:pass@]host:port); HTTPS_PROXY is not read.",
    )
    ace_max_attempts: int = Field(3, ge=1, description="Attempts per request for transient errors.")
    ace_backoff_base_s: float = Field(
        2.0, ge=0, description="First retry delay; doubles per attempt, with full jitter."
    )
    ace_backoff_max_s: float = Field(30.0, ge=0, description="Longest retry delay.")
    ace_max_concurrency: int = Field(4, ge=1, description="Requests in flight per site.")
    ace_requests_per_s: float = Field(20.0, gt=0, description="Request-rate budget per site.")

    # -- Kafka
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka brokers, host:port[,host:port]."
    )
    kafka_client_id: str = Field("streamer", description="Client id prefix of every Kafka client.")
    topic_samples: str = Field("ace.samples", description="Raw samples, grouped by point (delete policy).")
    topic_points: str = Field(
        "ace.points", description="Configured points (compacted; tombstone when removed or disabled)."
    )
    topic_sync: str = Field("ace.sync", description="Per-site watermark (compacted).")
    topic_sync_runs: str = Field(
        "ace.sync_runs", description="One record per producer window (delete policy)."
    )
    topic_dlq: str = Field("ace.dlq", description="Dead-letter queue of records that could not be stored.")
    topic_dlq_state: str = Field(
        "ace.dlq_state",
        description="What became of each dead letter: replayed, failed again, acked (compacted).",
    )
    samples_partitions: int = Field(8, ge=1, description="Also the partition count of ace.points.")
    sync_partitions: int = Field(4, ge=1, description="Partitions of ace.sync and ace.sync_runs.")
    dlq_partitions: int = Field(1, ge=1, description="Partitions of ace.dlq.")
    replication_factor: int | None = Field(
        None,
        ge=1,
        description="Replication factor of created topics; unset: 3 on a cluster of 3+ brokers, else 1.",
    )
    samples_retention_ms: int = Field(7 * DAY_MS, ge=-1, description="Retention of ace.samples (7 days).")
    dlq_retention_ms: int = Field(30 * DAY_MS, ge=-1, description="Retention of ace.dlq (30 days).")
    sync_runs_retention_ms: int = Field(
        30 * DAY_MS, ge=-1, description="Retention of ace.sync_runs (30 days)."
    )

    # -- producer
    sites: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Sites to sync, comma-separated; empty: GET /sites/."
    )
    poll_interval_s: float = Field(300.0, gt=0, description="Seconds between producer cycles.")
    overlap_s: int = Field(600, ge=0, description="Incremental windows start this far before the watermark.")
    overlap_skip_unchanged: bool = Field(
        True, description="An incremental window publishes only the overlap's new or changed samples."
    )
    max_window_s: int = Field(3600, ge=1, description="Longest window; backfill is split into these.")
    initial_lookback_s: int = Field(3600, ge=1, description="Where a site with no sync state starts.")
    points_refresh_s: float = Field(
        3600.0, gt=0, description="Seconds between configured-points refreshes of a site."
    )
    record_max_samples: int = Field(2_000, ge=1, description="Samples of one point per Kafka record.")
    gather_max_samples: int = Field(500_000, ge=1, description="Samples held while grouping by point.")
    record_max_bytes: int = Field(
        1_000_000,
        ge=4_096,
        le=8_000_000,
        description="Bytes of one ace.samples record at most (lowered to the topic's max.message.bytes).",
    )
    weather_enabled: bool = Field(
        True, description="Fetch weather as weather.* points each incremental cycle."
    )
    # zstd by default: lz4 1 halves the compression CPU (~0.1 CPU-s per million samples) for ~1.8x the
    # bytes on the broker's disk and network (README, Operations), a poor trade at live rates.
    producer_compression: Literal["zstd", "lz4", "snappy", "gzip", "none"] = Field(
        "zstd",
        description="Codec of the producer's Kafka record batches (ace.samples, ace.points, ace.sync).",
    )
    producer_compression_level: int | None = Field(
        None,
        description="Level of producer_compression (zstd -7..22, lz4 0..16, gzip 1..9); "
        "unset: zstd 3, lz4 1, gzip 6. Lower: less producer CPU, more bytes on the broker.",
    )
    # A cycle must fit in the poll interval, and the sites wait on the API, not on the CPU: the headroom
    # is for an API slower than the simulator. On an idle machine a worker of 500 sites of 200 points
    # kept up at 4 and at 8 alike (a site's windows every p99 63.1 and 64.9 s at a 60 s poll,
    # bench/portfolio.py); on a loaded one, at 4, its cycles took 2-3 minutes.
    producer_site_concurrency: int = Field(8, ge=1, description="Sites synced at the same time.")
    producer_metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics; 0: off.")
    producer_metrics_host: str = Field(
        "127.0.0.1", description="Address of the producer's /metrics; beyond loopback it requires api_token."
    )
    producer_group: str = Field(
        "",
        description="Consumer group on ace.sync through which producer workers share the sites "
        "(by the partition a site's key hashes to); empty: this worker syncs every site.",
    )
    repair_revisit_s: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [3600, 21600, 86400, 259200],
        description="Ages (seconds after an hour ends) at which the repair loop revisits it, "
        "comma-separated; empty: no repair loop.",
    )
    repair_min_completeness: float = Field(
        0.999, gt=0, le=1, description="A revisited hour below this completeness is fetched again."
    )
    repair_budget_per_hour: int = Field(
        60, ge=1, description="Repair API requests per site per hour at most."
    )

    # -- ClickHouse
    clickhouse_url: str = Field("", description="chdb:///path or http(s)://host:port; empty: embedded.")
    clickhouse_user: str = Field("default", description="ClickHouse user (server only).")
    clickhouse_password: SecretStr = Field(SecretStr(""), description="ClickHouse password (server only).")
    clickhouse_database: str = Field("streamer", description="ClickHouse database.")
    clickhouse_cluster: str = Field(
        "", description="Cluster name: migrations use ON CLUSTER and Replicated engines; empty: one node."
    )

    # -- processor
    processor_app_id: str = Field(
        "streamer-processor", description="Faust app id = Kafka consumer group of the processor workers."
    )
    batch_max_rows: int = Field(100_000, ge=1, description="Rows per ClickHouse insert at most.")
    batch_max_s: float = Field(1.0, gt=0, description="Seconds a batch waits to fill before it is inserted.")
    rollup_flush_rows: int = Field(
        1_200_000, ge=1, description="Inserted rows whose acks wait for one rollup recompute at most."
    )
    # Only batches that came full (a backlog: a backfill, a catch-up) are held for a shared recompute;
    # live, each batch is flushed after its insert, so the commit does not wait. 400k rows / 1 s held
    # recomputed 15 times for 24 h of a 4,583-point site (4.9 CPU-s, 22 M rows read); 1.2 M / 3 s,
    # 5 times (2.9 CPU-s, 12 M rows); 2.4 M / 6 s gained nothing more (bench/processor.py, query_log).
    rollup_flush_s: float = Field(
        3.0, gt=0, description="Seconds an inserted batch's acks wait for their rollup recompute at most."
    )
    max_future_s: int = Field(
        86_400, ge=0, description="Samples later than now plus this are rejected (counted, to the DLQ)."
    )
    sink_retry_max_backoff_s: float = Field(
        30.0, gt=0, description="Longest wait between retries while ClickHouse is unavailable."
    )
    processor_web_port: int = Field(
        6066,
        ge=1,
        le=65535,
        description="Processor web server: /health, /metrics and, embedded, the query API.",
    )
    processor_web_host: str = Field(
        "127.0.0.1", description="Address of the processor web server; beyond loopback it requires api_token."
    )
    processor_session_timeout_s: float = Field(
        30.0, ge=6, le=300, description="Kafka group session timeout: how soon a dead worker's work moves."
    )
    # Memory of a worker (bench/processor.py's peak RSS): what the consumer decodes ahead of the batches,
    # what glibc keeps of what it freed. A poll decodes every record fetched at once. With the engine's
    # library paged out, 512 KiB peaked at 484-485 MB against 529-531 for 1 MiB, for the same CPU
    # (18.9-19.4 against 18.6-19.1 CPU-s; 392-397k against 442-462k samples/s): the rollup recomputes
    # read a little more when batches hold fewer hours of each partition. 256 KiB: 476-495 MB, 201-218k/s.
    processor_fetch_partition_bytes: int = Field(
        524_288,
        ge=1024,
        description="Bytes of a partition one consumer fetch asks for (at least one record batch comes).",
    )
    processor_malloc_mmap_threshold: int = Field(
        131_072,
        ge=0,
        description="glibc: blocks of this many bytes or more are mapped apart and unmapped when freed; "
        "0: glibc's sliding threshold.",
    )
    processor_malloc_arena_max: int = Field(
        2, ge=0, description="glibc: most malloc arenas (each keeps its own free memory); 0: glibc's default."
    )
    # chdb's jemalloc reads JE_MALLOC_CONF (its prefixed MALLOC_CONF) once, when the library loads. Its
    # build runs an arena per CPU, each keeping what it freed for 5 s: one arena and 1 s hold 33-50 MB
    # less at the peak for the same CPU (bench/processor.py); dirty_decay_ms:0 holds less still but
    # costs ~30 % more CPU (every free goes back to the kernel at once).
    processor_engine_malloc_conf: str = Field(
        "narenas:1,percpu_arena:disabled,dirty_decay_ms:1000",
        pattern=r"^([a-z_]+:[A-Za-z0-9_.]+(,[a-z_]+:[A-Za-z0-9_.]+)*)?$",
        description="The embedded engine's jemalloc options (name:value,...); empty: its build's own.",
    )
    # Loading chdb makes 173 MB of its library resident, mostly start-up code, and the engine touches
    # more as it first inserts, merges and reads. Paged out once the schema is checked and again every
    # interval, the library holds only what the engine ran since (bench/processor.py's peak: 483-534 MB
    # against 562-563 paged out at start-up only, and 683 never).
    processor_engine_pageout_interval_s: float = Field(
        5.0,
        ge=0,
        description="Page out the embedded engine's library at start-up and then every this many seconds "
        "(it faults back what it runs); 0: never.",
    )
    processor_fault_hooks: bool = Field(
        False, description="Test only: serve POST /_faults/{detach,reject,clear} on the processor web port."
    )

    # -- query API
    api_host: str = Field(
        "127.0.0.1", description="Address of the query API; beyond loopback it requires api_token."
    )
    api_port: int = Field(
        8080, ge=1, le=65535, description="Port of the stand-alone query API (streamer api)."
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token of every listener (query API, processor web, producer /metrics)."
    )
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the listeners answer besides loopback ones, comma-separated (any port).",
    )
    api_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port]) allowed besides the listener's own, "
        "comma-separated.",
    )
    api_sql_enabled: bool = Field(True, description="Serve POST /api/v1/sql (read-only).")
    api_row_budget: int = Field(
        200_000, ge=1, description="Most rows one samples answer may hold; auto resolution stays under it."
    )
    api_url: str = Field(
        "", description="Query API the CLI calls (embedded mode); empty: the processor's, then api_port."
    )
    api_sql_max_rows: int = Field(100_000, ge=1, description="max_result_rows of POST /api/v1/sql.")
    api_sql_max_execution_s: float = Field(30.0, gt=0, description="max_execution_time of POST /api/v1/sql.")
    api_sql_max_memory_bytes: int = Field(1_000_000_000, ge=1, description="max_memory_usage of /sql.")
    api_sql_max_result_bytes: int = Field(
        10_000_000, ge=1000, description="Most bytes of one /sql answer (max_result_bytes, and its JSON)."
    )
    api_sql_max_threads: int = Field(
        2, ge=1, le=64, description="max_threads of /sql and of the API's own queries."
    )
    api_query_max_execution_s: float = Field(
        60.0, gt=0, description="max_execution_time of the API's own queries (samples, gaps, status)."
    )
    api_query_max_memory_bytes: int = Field(
        2_000_000_000, ge=1, description="max_memory_usage of the API's own queries."
    )
    api_gaps_max_span_s: int = Field(
        31 * 86_400, ge=60, description="Longest start..end range of one gaps request (31 days)."
    )
    api_status_cache_s: float = Field(
        5.0, ge=0, description="Seconds the status summary is reused before ClickHouse is asked again."
    )

    # -- simulator
    sim_host: str = Field(
        "127.0.0.1", description="Address of the simulator (streamer sim serve, streamer dev)."
    )
    sim_port: int = Field(8765, ge=1, le=65535, description="Port of the simulator.")

    @field_validator("sites", mode="before")
    @classmethod
    def _split_sites(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            hosts = [str(h).strip().lower().rstrip(".") for h in value if str(h).strip()]
            for host in hosts:
                if not _HOST_NAME.fullmatch(host):
                    raise ValueError(f"{host!r} is not a host name or IP address (no scheme, port or path)")
            return hosts
        return value

    @field_validator("api_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            origins = [str(o).strip().lower().rstrip("/") for o in value if str(o).strip()]
            for origin in origins:
                if not _ORIGIN.fullmatch(origin):
                    raise ValueError(f"{origin!r} is not an origin like https://grafana.example:3000")
            return origins
        return value

    @field_validator("api_token")
    @classmethod
    def _check_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty: set a token, or unset it (then listeners stay on loopback)")
        return value

    @field_validator("repair_revisit_s", mode="before")
    @classmethod
    def _split_ages(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("repair_revisit_s")
    @classmethod
    def _check_ages(cls, value: list[int]) -> list[int]:
        if any(not 0 < age <= 30 * 86_400 for age in value) or len(set(value)) != len(value):
            raise ValueError("ages must be distinct seconds, each more than 0 and at most 30 days")
        return sorted(value)

    @field_validator("clickhouse_url")
    @classmethod
    def _check_clickhouse_url(cls, value: str) -> str:
        if value and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.ace_min_page_size > self.ace_page_size:
            raise ValueError("STREAMER_ACE_MIN_PAGE_SIZE must not exceed STREAMER_ACE_PAGE_SIZE")
        self._check_compression_level()
        return self

    def _check_compression_level(self) -> None:
        level, codec = self.producer_compression_level, self.producer_compression
        if level is None:
            return
        bounds = {"zstd": (-7, 22), "lz4": (0, 16), "gzip": (1, 9)}.get(codec)
        if bounds is None:
            raise ValueError(f"STREAMER_PRODUCER_COMPRESSION_LEVEL: {codec} has no levels")
        if not bounds[0] <= level <= bounds[1]:
            low, high = bounds
            raise ValueError(f"STREAMER_PRODUCER_COMPRESSION_LEVEL: {codec} takes {low}..{high}, not {level}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file or os.environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    # -- derived values
    @property
    def resolved_clickhouse_url(self) -> str:
        """The ClickHouse target: the configured URL, or the embedded engine under ``data_dir``."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def is_embedded_clickhouse(self) -> bool:
        return self.resolved_clickhouse_url.startswith("chdb://")

    def to_env(self) -> dict[str, str]:
        """These settings as ``STREAMER_*`` variables, so a child process rebuilds the same object."""
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                text = value.get_secret_value()
            elif isinstance(value, list):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env

    @property
    def api_auth_required(self) -> bool:
        """The one rule of every listener: a token is configured, so callers must present it (and a
        listener may bind beyond loopback). An empty token is refused when settings are built; it is
        treated as none here too, for objects made with ``model_copy``, which skips validation."""
        return self.api_token is not None and bool(self.api_token.get_secret_value().strip())

    def secret_values(self) -> list[str]:
        """Every secret these settings hold (the ACE token file's content too): what logs redact."""
        values = [self.clickhouse_password.get_secret_value()]
        for token in (self.ace_token, self.api_token, self.ace_proxy_url):
            if token is not None:
                values.append(token.get_secret_value())
        if self.ace_token_file is not None:
            # unreadable: ace_token_value() reports it when the token is needed
            with contextlib.suppress(OSError):
                values.append(self.ace_token_file.read_text().strip())
        return [v for v in values if v]

    def ace_token_value(self) -> SecretStr:
        """The ACE token from ``ace_token`` or ``ace_token_file``; a clear error when neither is set."""
        if self.ace_token is not None:
            return self.ace_token
        if self.ace_token_file is not None:
            try:
                return SecretStr(self.ace_token_file.read_text().strip())
            except OSError as exc:
                raise ConfigError(f"STREAMER_ACE_TOKEN_FILE: cannot read {self.ace_token_file}") from exc
        raise ConfigError("STREAMER_ACE_TOKEN (or STREAMER_ACE_TOKEN_FILE) is not set")


_config_file: Path | None = None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; a bad value raises ``ConfigError`` whose message names the setting."""
    global _config_file
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config: no such file {config_file}")
    _config_file = config_file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid settings: {exc}") from None
    finally:
        _config_file = None


_NEVER_ECHOED = ("TOKEN", "PASSWORD", "SECRET", "KEY", "CREDENTIAL", "AUTH", "URL")


def _describe(exc: ValidationError) -> str:
    """One line naming the setting. The offending value is echoed only for a known setting that cannot
    hold a secret: never for an unknown key (a misspelled ``clickhouse_pasword`` holds one)."""
    err = exc.errors()[0]
    loc = [str(part) for part in err.get("loc", ())]
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if not loc:
        return f"invalid settings: {message}"
    key = loc[0]
    if key not in Settings.model_fields:
        close = difflib.get_close_matches(key.lower(), list(Settings.model_fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown setting {key!r}{hint}: its value is not shown"
    name = f"{ENV_PREFIX}{key.upper()}"
    value = err.get("input")
    secret = any(w in name for w in _NEVER_ECHOED) or _holds_secret(key)
    shown = "" if secret or not isinstance(value, str | int | float) else f" (got {value!r})"
    return f"invalid setting {name}: {message}{shown}"


def _holds_secret(field: str) -> bool:
    return "SecretStr" in str(Settings.model_fields[field].annotation)
