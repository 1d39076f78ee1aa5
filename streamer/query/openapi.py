"""The OpenAPI 3 document of the query API, written by hand so it says exactly what the code does.

Served at /api/v1/openapi.json; schemathesis runs against it in the integration tests.
"""

from __future__ import annotations

from typing import Any

from streamer import __version__
from streamer.query.openapi_schemas import (
    COMMON_ERRORS,
    HTML_PAGE,
    NULLABLE_INT,
    PARAM_END,
    PARAM_FORMAT,
    PARAM_SITE,
    PARAM_START,
    SAMPLES_OK,
    SCHEMAS,
    SITE_STATUS,
    error,
    json_body,
    obj,
    ref,
)
from streamer.query.params import MAX_POINTS
from streamer.settings import Settings


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
                    "200": json_body(obj({"sites": {"type": "array", "items": ref("Site")}}), "Sites."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/points": {
            "get": {
                "summary": "Current points of a site, filtered by marker tags and key:value tags.",
                "parameters": [
                    PARAM_SITE,
                    {
                        "name": "tag",
                        "in": "query",
                        "description": "Marker tag every point must carry (repeatable).",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": "kv",
                        "in": "query",
                        "description": "key:value tag, e.g. unit:degF (repeatable).",
                        "schema": {
                            "type": "array",
                            "items": {"type": "string", "pattern": "^[^:]*[^:\\s][^:]*:"},
                        },
                        "style": "form",
                        "explode": True,
                    },
                ],
                "responses": {
                    "200": json_body(
                        obj(
                            {
                                "site": {"type": "string"},
                                "count": {"type": "integer"},
                                "points": {"type": "array", "items": ref("Point")},
                            }
                        ),
                        "Points.",
                    ),
                    "400": error("A kv filter is not key:value."),
                    "404": error("Unknown site."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/samples": {
            "get": {
                "summary": "Samples of chosen points over [start, end), raw or rolled up.",
                "description": "resolution=auto picks the finest resolution whose row estimate fits the "
                "row budget. A resolution that cannot fit answers 400 saying what to change. Rollup rows "
                "are whole buckets that overlap [start, end): the first may begin before start, and each "
                "aggregates all of its bucket's samples.",
                "parameters": [
                    PARAM_SITE,
                    {
                        **points_param,
                        "required": True,
                        # at least one name: something besides commas and blanks
                        "schema": {"type": "string", "pattern": "[^,\\s]"},
                    },
                    PARAM_START,
                    PARAM_END,
                    {
                        "name": "resolution",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["raw", "5m", "1h", "auto"], "default": "auto"},
                    },
                    PARAM_FORMAT,
                ],
                "responses": {
                    "200": SAMPLES_OK,
                    "400": error(
                        "Bad time, resolution, format or point list; or too many rows for the budget."
                    ),
                    "404": error("Unknown site or point."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/latest": {
            "get": {
                "summary": "The newest sample of each point (all points of the site when none given).",
                "parameters": [PARAM_SITE, points_param],
                "responses": {
                    "200": json_body(
                        obj(
                            {
                                "site": {"type": "string"},
                                "row_count": {"type": "integer"},
                                "rows": {"type": "array", "items": ref("Sample")},
                            }
                        ),
                        "Latest values.",
                    ),
                    "400": error("Too many points."),
                    "404": error("Unknown site or point."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/gaps": {
            "get": {
                "summary": "Points whose samples miss their collect interval, with the missing spans, "
                "judged from start up to the site's watermark (samples after it were not fetched yet).",
                "parameters": [
                    PARAM_SITE,
                    PARAM_START,
                    PARAM_END,
                    {
                        "name": "tolerance",
                        "in": "query",
                        "description": "Intervals that may pass between two samples before it is a "
                        "gap (1..1000, default 2.5: one rejected sample is no gap, two missing are).",
                        "schema": {"type": "number", "minimum": 1, "maximum": 1000, "default": 2.5},
                    },
                ],
                "responses": {
                    "200": json_body(
                        obj(
                            {
                                "site": {"type": "string"},
                                "start": {"type": "integer"},
                                "end": {"type": "integer"},
                                "until": {
                                    "type": "integer",
                                    "description": "Where judging stopped: end or the watermark.",
                                },
                                "until_source": {
                                    "type": "string",
                                    "enum": ["end", "watermark", "newest sample"],
                                },
                                "tolerance": {"type": "number"},
                                "summary": ref("GapSummary"),
                                "points": {
                                    "type": "array",
                                    "items": obj(
                                        {
                                            "point_name": {"type": "string"},
                                            "collect_interval_s": {"type": "integer"},
                                            "silent": {"type": "boolean"},
                                            "missing": {"type": "integer"},
                                            "gaps": {"type": "array", "items": ref("Gap")},
                                        }
                                    ),
                                },
                            }
                        ),
                        "The summary, and every point with gaps or silent (complete points are left out).",
                    ),
                    "400": error("Bad time or tolerance."),
                    "404": error("Unknown site."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sites/{site}/completeness": {
            "get": {
                "summary": "Per whole hour: distinct samples stored against the points' collect_interval.",
                "parameters": [PARAM_SITE, PARAM_START, PARAM_END],
                "responses": {
                    "200": json_body(
                        obj(
                            {
                                "site": {"type": "string"},
                                "start": {"type": "integer"},
                                "end": {"type": "integer"},
                                "points": {"type": "integer"},
                                "expected_per_hour": {"type": "integer"},
                                "stored": {"type": "integer"},
                                "expected": {"type": "integer"},
                                "completeness": {"type": ["number", "null"]},
                                "read_from": {
                                    "type": ["integer", "null"],
                                    "description": "Start of the site's first synced window, epoch ms.",
                                },
                                "hours": {
                                    "type": "array",
                                    "items": obj(
                                        {
                                            "hour": {"type": "integer"},
                                            "stored": {"type": "integer"},
                                            "samples": {
                                                "type": "integer",
                                                "description": "Distinct samples of every point, uncapped.",
                                            },
                                            "expected": {"type": "integer"},
                                            "completeness": {"type": ["number", "null"]},
                                        }
                                    ),
                                },
                            }
                        ),
                        "Completeness of every whole hour of the range (at most 31 days).",
                    ),
                    "400": error("Bad time range."),
                    "404": error("Unknown site."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/sql": {
            "post": {
                "summary": "One read statement as ClickHouse parses it (readonly=1, row, byte, thread, "
                "time and memory limits; no INTO OUTFILE, FORMAT, SETTINGS or file/network table functions).",
                "parameters": [PARAM_FORMAT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": obj({"sql": {"type": "string"}})}},
                },
                "responses": {
                    "200": {
                        "description": "The result. JSON, or CSV with format=csv.",
                        "content": {
                            "application/json": {
                                "schema": obj(
                                    {
                                        "columns": {
                                            "type": "array",
                                            "items": obj(
                                                {"name": {"type": "string"}, "type": {"type": "string"}}
                                            ),
                                        },
                                        "rows": {"type": "array", "items": {"type": "array"}},
                                        "row_count": {"type": "integer"},
                                        "elapsed_ms": {"type": "number"},
                                    }
                                )
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": error("Not one read statement, or ClickHouse refused it (the message says why)."),
                    "403": error("SQL is switched off (STREAMER_API_SQL_ENABLED=false)."),
                    "413": error(
                        "Body larger than 1 MiB, or the answer beyond max_result_rows or max_result_bytes."
                    ),
                    "415": error("The body is not Content-Type: application/json."),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "summary": "Pipeline status: per site sync state, Kafka lag and DLQ depth, ClickHouse rows.",
                "responses": {
                    "200": json_body(
                        obj(
                            {
                                "generated_at": {"type": "integer"},
                                "sites": {"type": "array", "items": SITE_STATUS},
                                "kafka": ref("Kafka"),
                                "clickhouse": {
                                    "allOf": [ref("ClickHouse")],
                                    "properties": {"rows": NULLABLE_INT, "rows_stored": NULLABLE_INT},
                                },
                            }
                        ),
                        "Status.",
                    ),
                    "401": COMMON_ERRORS["401"],
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document.",
                "security": [],
                "responses": {"200": json_body({"type": "object"}, "OpenAPI 3.1 document.")},
            }
        },
        "/health": {
            "get": {
                "summary": "ok, degraded or down; with the token also Kafka and ClickHouse reachability, "
                "schema version, consumer lag.",
                "security": [],
                "responses": {
                    "200": json_body(
                        ref("Health"), "ClickHouse reachable (Kafka may not be: status degraded)."
                    ),
                    "503": json_body(ref("Health"), "ClickHouse unreachable."),
                },
            }
        },
        "/": {
            "get": {
                "summary": "The status page (when the host application leaves / free; else see /ui/).",
                "security": [],
                "responses": {"200": HTML_PAGE},
            }
        },
        "/ui/": {"get": {"summary": "The status page.", "security": [], "responses": {"200": HTML_PAGE}}},
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of this process.",
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": COMMON_ERRORS["401"],
                },
            }
        },
    }


def openapi_document(settings: Settings) -> dict[str, Any]:
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
        "components": {"schemas": dict(SCHEMAS)},
    }
    if settings.api_auth_required:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
