"""grafana/: provisioning and dashboards as Grafana and the ClickHouse plugin read them, wired to compose."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamer.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
CH_TYPE = "grafana-clickhouse-datasource"
# sqlds' formats (the plugin's src/data/utils.ts mapQueryTypeToGrafanaFormat): 0 time series, 1 table.
FORMAT_OF = {"timeseries": 0, "table": 1}
PANEL_QUERY_TYPE = {"timeseries": "timeseries", "table": "table", "stat": "table"}
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(?!__)(\w+)")


def _compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def _datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())
    assert doc["apiVersion"] == 1
    return {ds["uid"]: ds for ds in doc["datasources"]}


def _dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in _compose()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def test_clickhouse_datasource_is_the_plugin_as_the_read_only_user() -> None:
    """The ClickHouse datasource is the official plugin over HTTP to the compose server, as the users.d
    file's read-only user, its password from the environment compose gives Grafana, on the database the
    pipeline writes."""
    ds = _datasources()["streamer-clickhouse"]
    assert ds["type"] == CH_TYPE and ds["isDefault"] is True
    data = ds["jsonData"]
    assert (data["host"], data["port"], data["protocol"]) == ("clickhouse", 8123, "http")
    assert data["defaultDatabase"] == Settings.model_fields["clickhouse_database"].default
    users = ET.parse(GRAFANA / "clickhouse-users.xml").getroot()
    user = users.find(f"users/{data['username']}")
    assert user is not None, "the datasource's user is not in clickhouse-users.xml"
    password_env = user.find("password").attrib["from_env"]  # type: ignore[union-attr]
    assert ds["secureJsonData"]["password"] == f"${password_env}"
    grafana_env, clickhouse_env = (
        _compose()["grafana"]["environment"],
        _compose()["clickhouse"]["environment"],
    )
    assert password_env in grafana_env and password_env in clickhouse_env
    assert grafana_env[password_env] == clickhouse_env[password_env]
    plugins = grafana_env["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert [p.split("@")[0] for p in plugins] == [CH_TYPE]


def test_read_only_user_can_only_select_the_pipeline_database() -> None:
    """The users.d file's user has readonly=1 and grants SELECT on the pipeline's database only, and may
    change max_execution_time (the plugin's driver sends it on every query); compose mounts the file
    into the server's users.d."""
    root = ET.parse(GRAFANA / "clickhouse-users.xml").getroot()
    (user,) = root.findall("users/*")
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None and profile.findtext("readonly") == "1"
    constraint = profile.find("constraints/max_execution_time")
    assert constraint is not None and constraint.find("changeable_in_readonly") is not None
    database = Settings.model_fields["clickhouse_database"].default
    assert [q.text for q in user.findall("grants/query")] == [f"GRANT SELECT ON {database}.*"]
    assert user.findtext("access_management") == "0"
    assert (
        _mounts("clickhouse")["/etc/clickhouse-server/users.d/grafana.xml"]
        == "./grafana/clickhouse-users.xml"
    )


def test_provisioning_is_mounted_where_grafana_reads_it() -> None:
    """Compose mounts the provisioning folder at Grafana's provisioning path and the dashboards where the
    file provider looks; the Prometheus datasource points at the compose Prometheus."""
    mounts = _mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and mounts[provider["options"]["path"]] == "./grafana/dashboards"
    home = _compose()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()
    prometheus = _datasources()["streamer-prometheus"]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == "http://prometheus:9090"
    assert _mounts("prometheus")["/etc/prometheus/prometheus.yml"] == "./grafana/prometheus.yml"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    """Each dashboard: unique uid and panel ids, panels inside the 24-column grid, every datasource
    reference a provisioned uid, ClickHouse targets in the plugin's v4 SQL-editor shape with the
    queryType and format their panel needs, and every variable a query uses defined."""
    board = _dashboard(path)
    datasources = _datasources()
    assert board["uid"].startswith("streamer-") and board["schemaVersion"] >= 39
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    defined = {v["name"] for v in board["templating"]["list"]}
    for variable in board["templating"]["list"]:
        assert variable["type"] == "query" and variable["datasource"]["uid"] in datasources
        assert _used_variables(variable["query"]) <= defined - {variable["name"]}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        if panel["type"] == "text":
            assert panel["options"]["content"], panel["title"]
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            ds = datasources[target["datasource"]["uid"]]
            assert target["datasource"]["type"] == ds["type"] == panel["datasource"]["type"]
            if ds["type"] == CH_TYPE:
                _check_clickhouse_target(panel, target)
                assert _used_variables(target["rawSql"]) <= defined, panel["title"]
            else:
                assert target["expr"].strip() and target["refId"], panel["title"]


def _check_clickhouse_target(panel: dict[str, Any], target: dict[str, Any]) -> None:
    title = panel["title"]
    assert target["editorType"] == "sql" and target["rawSql"].strip() and target["refId"], title
    # pluginVersion >= 4 keeps the plugin's v3 migration from rewriting the query on load.
    installed = _compose()["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].split("@")[1]
    assert target["pluginVersion"] == installed, title
    query_type = PANEL_QUERY_TYPE[panel["type"]]
    assert target["queryType"] == query_type and target["format"] == FORMAT_OF[query_type], title


def _used_variables(sql: str) -> set[str]:
    return {a or b for a, b in VARIABLE_RE.findall(sql)}


def test_site_dashboard_chooses_points_by_tag_from_points_table() -> None:
    """The site dashboard's variables are site, tag (multi) and point (multi), each from `points`, each
    narrowing the next; its samples panel reads raw, 5-minute and hourly tables."""
    board = _dashboard(GRAFANA / "dashboards/site-points.json")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["site", "tag", "point"]
    assert all("FROM points FINAL" in v["query"] for v in variables.values())
    assert variables["tag"]["multi"] and variables["point"]["multi"]
    assert (
        "${tag:singlequote}" in variables["point"]["query"]
        and "${site:singlequote}" in variables["tag"]["query"]
    )
    (samples,) = [p for p in board["panels"] if p["title"] == "Samples"]
    sql = samples["targets"][0]["rawSql"]
    assert all(table in sql for table in ("timeseries_raw FINAL", "rollup_5m_v", "rollup_1h_v"))


def test_health_dashboard_covers_lag_dlq_freshness_sync_runs_and_completeness() -> None:
    """The health dashboard has consumer lag, DLQ, freshness, sync-run and completeness panels."""
    board = _dashboard(GRAFANA / "dashboards/pipeline-health.json")
    text = json.dumps(board)
    for needle in (
        "streamer_consumer_lag",
        "streamer_dlq_records_total",
        "streamer_dlq_depth",
        "streamer_freshness_seconds",
        "sync_runs",
    ):
        assert needle in text
    (completeness,) = [p for p in board["panels"] if p["title"] == "Completeness per site"]
    sql = completeness["targets"][0]["rawSql"]
    assert "completeness_1h" in sql and "point_expected_1h" in sql


def test_prometheus_scrapes_with_the_api_token() -> None:
    """/metrics wants the API token beyond loopback: every scrape job sends it from the file the
    Prometheus container's entrypoint writes from API_TOKEN, and the producer's health check sends it."""
    service = _compose()["prometheus"]
    assert service["environment"]["API_TOKEN"].startswith("${API_TOKEN:?")
    script = service["entrypoint"][2]
    written = script.split("> ", 1)[1].split()[0]
    assert '"$$API_TOKEN"' in script and script.rstrip().endswith('exec /bin/prometheus "$$@"')
    for job in yaml.safe_load((GRAFANA / "prometheus.yml").read_text())["scrape_configs"]:
        assert job["authorization"] == {"type": "Bearer", "credentials_file": written}, job["job_name"]
    producer_check = " ".join(_compose()["producer"]["healthcheck"]["test"])
    assert "'Bearer ' + os.environ['STREAMER_API_TOKEN']" in producer_check
