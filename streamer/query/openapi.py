"""The OpenAPI 3 document of the query API, written by hand so it says exactly what the code does.

Served at /api/v1/openapi.json; schemathesis runs against it in the integration tests.
"""

from __future__ import annotations

from typing import Any

from streamer import __version__
from streamer.query.params import MAX_POINTS, TIME_HELP
from streamer.settings import Settings

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required if required is not None else list(props)}


_SITE = {"name": "site", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_START = {
    "name": "start",
    "in": "query",
    "description": f"Inclusive start: {TIME_HELP}. Default: one day before end.",
    "schema": {"type": "string"},
}
_END = {"name": "end", "in": "query", "description": f"Exclusive end: {TIME_HELP}. Default: now.", "schema": {"type": "string"}}
_FORMAT = {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}
_COMMON_ERRORS = {
    "401": _error("Missing or wrong bearer token (only when the server has one)."),
    "503": _error("ClickHouse is unavailable or not migrated; retry later."),
}

_SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": {"type": "string"}, "status": {"type": "integer"}}),
    "Site": _obj(
        {
            "site": {"type": "string"},
            "points": {"type": "integer", "description": "Configured (current) points."},
            "points_with_data": {"type": "integer"},
            "last_sample": {**_NULLABLE_INT, "description": "Newest sample time, epoch ms."},
        }
    ),
    "Point": _obj(
        {
            "point_name": {"type": "string"},
            "collect_enabled": {"type": "boolean"},
            "collect_interval": {**_NULLABLE_INT, "description": "Seconds between samples."},
            "point_type": _NULLABLE_STR,
            "unit": _NULLABLE_STR,
            "marker_tags": {"type": "array", "items": {"type": "string"}},
            "kv_tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "metadata": {"type": "object"},
        }
    ),
    "Sample": _obj(
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
    "Gap": _obj(
        {
            "start": {"type": "integer", "description": "Last sample before the hole (or the range start), ms."},
            "end": {"type": "integer", "description": "First sample after the hole (or the range end), ms."},
            "missing": {"type": "integer", "description": "Samples the interval promised in between."},
        }
    ),
    "PartitionLag": _obj(
        {
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "committed": _NULLABLE_INT,
            "end": {"type": "integer"},
            "lag": {"type": "integer"},
        }
    ),
}
_SCHEMAS["Kafka"] = _obj(
    {
        "reachable": {"type": "boolean"},
        "error": _NULLABLE_STR,
        "group": {"type": "string"},
        "partitions": {"type": "array", "items": _ref("PartitionLag")},
        "total_lag": _NULLABLE_INT,
        "dlq_depth": _NULLABLE_INT,
    }
)
_SCHEMAS["ClickHouse"] = _obj(
    {
        "reachable": {"type": "boolean"},
        "target": {"type": "string"},
        "schema_version": _NULLABLE_INT,
        "error": _NULLABLE_STR,
    }
)
_SITE_STATUS = _obj(
    {
        "site": {"type": "string"},
        "points": {"type": "integer"},
        "last_sample": _NULLABLE_INT,
        "rows": {"type": "integer", "description": "Rows in timeseries_raw (before duplicate collapse)."},
        "last_sync_id": _NULLABLE_STR,
        "last_sync_at": _NULLABLE_INT,
        "last_status": _NULLABLE_STR,
        "watermark": {**_NULLABLE_INT, "description": "End of the newest successful window, epoch ms."},
        "watermark_age_s": {"type": ["number", "null"]},
        "last_error": _NULLABLE_STR,
        "last_error_at": _NULLABLE_INT,
        "samples_last_hour": {"type": "integer"},
    }
)

_SAMPLES_OK = {
    "description": "Rows ordered by point then time. JSON, or CSV with format=csv.",
    "content": {
        "application/json": {
            "schema": _obj(
                {
                    "site": {"type": "string"},
                    "points": {"type": "array", "items": {"type": "string"}},
                    "start": {"type": "integer"},
                    "end": {"type": "integer"},
                    "requested_resolution": {"type": "string", "enum": ["raw", "5m", "1h", "auto"]},
                    "resolution": {"type": "string", "enum": ["raw", "5m", "1h"]},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "row_count": {"type": "integer"},
                    "rows": {"type": "array", "items": _ref("Sample")},
                }
            )
        },
        "text/csv": {"schema": {"type": "string"}},
    },
}


def _paths() -> dict[str, Any]:
    points_param = {
        "name": "points",
        "in": "query",
        "description": f"Comma-separated point names (repeatable), at most {MAX_POINTS}.",
        "schema": {"type": "string"},
    }
    return {
        "/api/v1/sites": {
            "get": {
                "summary": "Known sites with point counts and the newest sample time.",
                "responses": {
                    "200": _json(_obj({"sites": {"type": "array", "items": _ref("Site")}}), "Sites."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/points": {
            "get": {
                "summary": "Current points of a site, filtered by marker tags and key:value tags.",
                "parameters": [
                    _SITE,
                    {"name": "tag", "in": "query", "description": "Marker tag every point must carry "
                     "(repeatable).", "schema": {"type": "array", "items": {"type": "string"}},
                     "style": "form", "explode": True},
                    {"name": "kv", "in": "query", "description": "key:value tag, e.g. unit:degF (repeatable).",
                     "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True},
                ],
                "responses": {
                    "200": _json(
                        _obj({"site": {"type": "string"}, "count": {"type": "integer"},
                              "points": {"type": "array", "items": _ref("Point")}}),
                        "Points.",
                    ),
                    "400": _error("A kv filter is not key:value."),
                    "404": _error("Unknown site."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/samples": {
            "get": {
                "summary": "Samples of chosen points over [start, end), raw or rolled up.",
                "description": "resolution=auto picks the finest resolution whose row estimate fits the "
                "row budget. A resolution that cannot fit answers 400 saying what to change. Rollup rows "
                "are buckets whose start lies in the range.",
                "parameters": [
                    _SITE,
                    {**points_param, "required": True},
                    _START,
                    _END,
                    {"name": "resolution", "in": "query",
                     "schema": {"type": "string", "enum": ["raw", "5m", "1h", "auto"], "default": "auto"}},
                    _FORMAT,
                ],
                "responses": {
                    "200": _SAMPLES_OK,
                    "400": _error("Bad time, resolution, format or point list; or too many rows for the budget."),
                    "404": _error("Unknown site or point."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/latest": {
            "get": {
                "summary": "The newest sample of each point (all points of the site when none given).",
                "parameters": [_SITE, points_param],
                "responses": {
                    "200": _json(
                        _obj({"site": {"type": "string"}, "row_count": {"type": "integer"},
                              "rows": {"type": "array", "items": _ref("Sample")}}),
                        "Latest values.",
                    ),
                    "400": _error("Too many points."),
                    "404": _error("Unknown site or point."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/gaps": {
            "get": {
                "summary": "Points whose samples miss their collect interval, with the missing spans.",
                "parameters": [
                    _SITE,
                    _START,
                    _END,
                    {"name": "tolerance", "in": "query", "description": "Intervals that may pass between two "
                     "samples before it is a gap (1..1000, default 1.5).", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(
                        _obj({
                            "site": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"},
                            "tolerance": {"type": "number"},
                            "points": {"type": "array", "items": _obj({
                                "point_name": {"type": "string"}, "collect_interval_s": {"type": "integer"},
                                "gaps": {"type": "array", "items": _ref("Gap")}})},
                        }),
                        "Points with gaps (points without gaps are left out).",
                    ),
                    "400": _error("Bad time or tolerance."),
                    "404": _error("Unknown site."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sql": {
            "post": {
                "summary": "One read-only SQL statement (readonly=1, row, time and memory limits).",
                "parameters": [_FORMAT],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _obj({"sql": {"type": "string"}})},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "The result. JSON, or CSV with format=csv.",
                        "content": {
                            "application/json": {"schema": _obj({
                                "columns": {"type": "array", "items": _obj({"name": {"type": "string"},
                                                                          "type": {"type": "string"}})},
                                "rows": {"type": "array", "items": {"type": "array"}},
                                "row_count": {"type": "integer"},
                                "elapsed_ms": {"type": "number"},
                            })},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _error("Not one read statement, or ClickHouse refused it (the message says why)."),
                    "403": _error("SQL is switched off (STREAMER_API_SQL_ENABLED=false)."),
                    "413": _error("Body larger than 1 MiB."),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "summary": "Pipeline status: per site sync state, Kafka lag and DLQ depth, ClickHouse rows.",
                "responses": {
                    "200": _json(
                        _obj({
                            "generated_at": {"type": "integer"},
                            "sites": {"type": "array", "items": _SITE_STATUS},
                            "kafka": _ref("Kafka"),
                            "clickhouse": {"allOf": [_ref("ClickHouse")],
                                           "properties": {"rows": _NULLABLE_INT}},
                        }),
                        "Status.",
                    ),
                    "401": _COMMON_ERRORS["401"],
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This document.", "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")}}
        },
        "/health": {
            "get": {
                "summary": "Kafka and ClickHouse reachability, schema version, consumer lag.",
                "security": [],
                "responses": {
                    "200": _json(_ref("Health"), "ClickHouse reachable (Kafka may not be: status degraded)."),
                    "503": _json(_ref("Health"), "ClickHouse unreachable."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of this process.",
                "responses": {
                    "200": {"description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": _COMMON_ERRORS["401"],
                },
            }
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
    schemas = dict(_SCHEMAS)
    schemas["Health"] = _obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "clickhouse": _ref("ClickHouse"),
            "kafka": _obj({"reachable": {"type": "boolean"}, "error": _NULLABLE_STR}),
            "consumer_lag": _NULLABLE_INT,
            "dlq_depth": _NULLABLE_INT,
        }
    )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "streamer query API",
            "version": __version__,
            "description": "ACE IoT timeseries from ClickHouse. Times are epoch milliseconds (UTC) in "
            "answers; inputs also take ISO 8601. Errors are JSON {error, status}.",
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {"schemas": schemas},
    }
    if settings.api_token is not None:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
