"""Building blocks and component schemas of the OpenAPI document (see ``streamer.query.openapi``)."""

from __future__ import annotations

from typing import Any

from streamer.query.params import TIME_HELP

NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_STR = {"type": ["string", "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required if required is not None else list(props),
    }


SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": {"type": "string"}, "status": {"type": "integer"}}),
    "Site": obj(
        {
            "site": {"type": "string"},
            "points": {"type": "integer", "description": "Configured (current) points."},
            "points_with_data": {"type": "integer"},
            "last_sample": {**NULLABLE_INT, "description": "Newest sample time, epoch ms."},
        }
    ),
    "Point": obj(
        {
            "point_name": {"type": "string"},
            "collect_enabled": {"type": "boolean"},
            "collect_interval": {**NULLABLE_INT, "description": "Seconds between samples."},
            "point_type": NULLABLE_STR,
            "unit": NULLABLE_STR,
            "marker_tags": {"type": "array", "items": {"type": "string"}},
            "kv_tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "metadata": {"type": "object"},
        }
    ),
    "Sample": obj(
        {
            "point_name": {"type": "string"},
            "timestamp": {"type": "integer", "description": "Epoch ms (rollups: the bucket's start)."},
            "value": {"type": "number", "description": "The sample (rollups: the bucket's mean)."},
            "min": {"type": "number", "description": "Rollups only."},
            "max": {"type": "number", "description": "Rollups only."},
            "count": {"type": "integer", "description": "Rollups only: samples in the bucket."},
        },
        ["point_name", "timestamp", "value"],
    ),
    "Gap": obj(
        {
            "start": {
                "type": "integer",
                "description": "Last sample before the hole (or the range start), ms.",
            },
            "end": {"type": "integer", "description": "First sample after the hole (or the range end), ms."},
            "missing": {"type": "integer", "description": "Samples the interval promised in between."},
        }
    ),
    "GapSummary": obj(
        {
            "points_judged": {
                "type": "integer",
                "description": "Collected points with a collect_interval (0 when nothing was fetched yet).",
            },
            "complete": {"type": "integer", "description": "Judged points without a gap."},
            "with_gaps": {"type": "integer", "description": "Points with samples and at least one gap."},
            "silent": {"type": "integer", "description": "Points without any sample up to until."},
            "not_judged": {"type": "integer", "description": "Collected points without a collect_interval."},
            "missing_samples": {"type": "integer"},
            "worst": {
                "type": "array",
                "items": obj(
                    {
                        "point_name": {"type": "string"},
                        "gaps": {"type": "integer"},
                        "missing": {"type": "integer"},
                    }
                ),
            },
        }
    ),
    "PartitionLag": obj(
        {
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "committed": NULLABLE_INT,
            "end": {"type": "integer"},
            "lag": {"type": "integer"},
        }
    ),
}
SCHEMAS["Kafka"] = obj(
    {
        "reachable": {"type": "boolean"},
        "error": NULLABLE_STR,
        "group": {"type": "string"},
        "partitions": {"type": "array", "items": ref("PartitionLag")},
        "total_lag": NULLABLE_INT,
        "dlq_depth": NULLABLE_INT,
    }
)
SCHEMAS["ClickHouse"] = obj(
    {
        "reachable": {"type": "boolean"},
        "target": {"type": "string"},
        "schema_version": NULLABLE_INT,
        "error": NULLABLE_STR,
    }
)
SITE_STATUS = obj(
    {
        "site": {"type": "string"},
        "points": {"type": "integer"},
        "last_sample": NULLABLE_INT,
        "rows": {
            "type": "integer",
            "description": "Samples in timeseries_raw, exact (duplicates collapsed: count() FINAL), "
            "counted at rows_counted_at and reused for a minute.",
        },
        "rows_stored": {
            "type": "integer",
            "description": "Rows stored before merges collapse duplicates (count() without FINAL): "
            "at least rows, shrinking towards it as merges run.",
        },
        "rows_counted_at": {**NULLABLE_INT, "description": "When rows was counted, epoch ms."},
        "last_sync_id": NULLABLE_STR,
        "last_sync_at": NULLABLE_INT,
        "last_status": NULLABLE_STR,
        "watermark": {**NULLABLE_INT, "description": "End of the newest successful window, epoch ms."},
        "watermark_age_s": {"type": ["number", "null"]},
        "last_error": NULLABLE_STR,
        "last_error_at": NULLABLE_INT,
        "samples_last_hour": {"type": "integer"},
        "completeness_24h": {
            "type": ["number", "null"],
            "description": "Distinct samples stored in the last 24 whole hours over what the points promise.",
        },
        "repair_windows_24h": {"type": "integer"},
        "repair_api_calls_24h": {"type": "integer"},
        "samples_recovered_24h": {"type": "integer"},
    }
)

SCHEMAS["Health"] = obj(
    {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "clickhouse": ref("ClickHouse"),
        "kafka": obj({"reachable": {"type": "boolean"}, "error": NULLABLE_STR}),
        "consumer_lag": NULLABLE_INT,
        "dlq_depth": NULLABLE_INT,
    },
    ["status"],  # the rest only for a caller that sent the token
)


PARAM_SITE = {"name": "site", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
# The forms parse_time accepts, narrowed to instants inside 1970..2200 whatever the offset or the clock
# (the API answers 400 outside): epoch ms up to 6,999,999,999,999, relative spans of at most ~19 years,
# ISO dates 1971..2198 with real months and days (29..31 only where every year has them). The document
# cannot say that start must precede end.
_YEAR = r"(19[7-9][1-9]|19[89]0|20[0-9]{2}|21[0-8][0-9]|219[0-8])"
_MONTH_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?"
_CLOCK = rf"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{{1,6}})?)?{_OFFSET})?"
TIME_PATTERN = (
    r"^(now|[1-6]?[0-9]{1,12}"
    r"|-([0-9]{1,9}(ms|s)|[0-9]{1,7}m|[0-9]{1,5}h|[0-9]{1,4}d|[0-9]{1,3}w)"
    rf"|{_YEAR}-{_MONTH_DAY}{_CLOCK})$"
)
PARAM_START = {
    "name": "start",
    "in": "query",
    "description": f"Inclusive start: {TIME_HELP}. Default: one day before end.",
    "schema": {"type": "string", "pattern": TIME_PATTERN},
}
PARAM_END = {
    "name": "end",
    "in": "query",
    "description": f"Exclusive end: {TIME_HELP}. Default: now.",
    "schema": {"type": "string", "pattern": TIME_PATTERN},
}
PARAM_FORMAT = {
    "name": "format",
    "in": "query",
    "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
}
COMMON_ERRORS = {
    "401": error("Missing or wrong bearer token (only when the server has one)."),
    "422": error("A query limit (time, memory) was exceeded: the message names it and its setting."),
    "503": error("ClickHouse is unavailable or not migrated; retry later."),
}

HTML_PAGE = {"description": "HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
SAMPLES_OK = {
    "description": "Rows ordered by point then time. JSON, or CSV with format=csv.",
    "content": {
        "application/json": {
            "schema": obj(
                {
                    "site": {"type": "string"},
                    "points": {"type": "array", "items": {"type": "string"}},
                    "start": {"type": "integer"},
                    "end": {"type": "integer"},
                    "requested_resolution": {"type": "string", "enum": ["raw", "5m", "1h", "auto"]},
                    "resolution": {"type": "string", "enum": ["raw", "5m", "1h"]},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "row_count": {"type": "integer"},
                    "rows": {"type": "array", "items": ref("Sample")},
                    "warnings": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Only when start or end looks like epoch seconds (still read as ms).",
                    },
                },
                required=[
                    *("site", "points", "start", "end", "requested_resolution", "resolution"),
                    *("columns", "row_count", "rows"),
                ],
            )
        },
        "text/csv": {"schema": {"type": "string"}},
    },
}
