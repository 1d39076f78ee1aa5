"""Settings: defaults, environment overrides, one clear line per bad value, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from streamer.errors import ConfigError
from streamer.settings import Settings, load_settings


def test_defaults_work_for_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no environment at all, the settings point at a local broker and the embedded ClickHouse."""
    for key in list(__import__("os").environ):
        if key.startswith("STREAMER_"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.resolved_clickhouse_url.startswith("chdb://")
    assert settings.is_embedded_clickhouse


def test_environment_overrides_and_splits_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_* variables override defaults; STREAMER_SITES is a comma-separated list."""
    monkeypatch.setenv("STREAMER_SITES", "site_a, site_b")
    monkeypatch.setenv("STREAMER_BATCH_MAX_ROWS", "1234")
    settings = load_settings()
    assert settings.sites == ["site_a", "site_b"]
    assert settings.batch_max_rows == 1234


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value stops start-up with one line naming the environment variable."""
    monkeypatch.setenv("STREAMER_BATCH_MAX_ROWS", "many")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "STREAMER_BATCH_MAX_ROWS" in message
    assert "\n" not in message


def test_bad_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejected secret-bearing setting is named but its value is not repeated in the error."""
    monkeypatch.setenv("STREAMER_CLICKHOUSE_URL", "ftp://user:hunter2@host")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "STREAMER_CLICKHOUSE_URL" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_settings_are_frozen() -> None:
    """The settings object cannot be changed after it is built."""
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.batch_max_rows = 1  # type: ignore[misc]


def test_token_from_file_and_hidden_in_repr(tmp_path: Path) -> None:
    """The ACE token can come from a file; neither repr nor str of the settings shows it."""
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n")
    settings = load_settings(ace_token_file=token_file)
    assert settings.ace_token_value().get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(settings) and "s3cr3t-token" not in str(settings)


def test_missing_token_is_a_config_error() -> None:
    """Asking for the token when none is configured names both ways to set it."""
    settings = Settings(ace_token=None, ace_token_file=None)
    with pytest.raises(ConfigError, match="STREAMER_ACE_TOKEN"):
        settings.ace_token_value()


def test_toml_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOML file supplies settings; the environment still wins over it."""
    config = tmp_path / "streamer.toml"
    config.write_text('batch_max_rows = 777\nsites = ["x"]\nlog_level = "debug"\n')
    monkeypatch.delenv("STREAMER_CONFIG", raising=False)
    monkeypatch.setenv("STREAMER_LOG_LEVEL", "error")
    settings = load_settings(config)
    assert settings.batch_max_rows == 777
    assert settings.sites == ["x"]
    assert settings.log_level == "error"


def test_to_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings exported with to_env() rebuild an equal object in a child process's environment."""
    original = load_settings(
        sites=["a", "b"], batch_max_rows=9, ace_token=SecretStr("t0k"), weather_enabled=False
    )
    for key, value in original.to_env().items():
        monkeypatch.setenv(key, value)
    rebuilt = load_settings()
    assert rebuilt == original


def test_repair_ages_are_a_comma_list_of_bounded_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_REPAIR_REVISIT_S: comma-separated ages, sorted; empty turns the loop off; zero,
    repeats and more than 30 days are refused with the variable named."""
    monkeypatch.setenv("STREAMER_REPAIR_REVISIT_S", "86400, 3600")
    assert load_settings().repair_revisit_s == [3600, 86400]
    monkeypatch.setenv("STREAMER_REPAIR_REVISIT_S", "")
    assert load_settings().repair_revisit_s == []
    for bad in ("0", "60,60", "2592001", "1h"):
        monkeypatch.setenv("STREAMER_REPAIR_REVISIT_S", bad)
        with pytest.raises(ConfigError, match="STREAMER_REPAIR_REVISIT_S"):
            load_settings()


def test_every_secret_setting_is_among_the_values_logs_redact() -> None:
    """Each SecretStr setting (tokens, the ClickHouse password, the proxy URL with its credentials) is
    in ``secret_values``, so no log line, error or page can show it."""
    secret_fields = [
        name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
    ]
    assert {"ace_token", "api_token", "clickhouse_password", "ace_proxy_url"} <= set(secret_fields)
    values = {name: SecretStr(f"s3cret-{name}") for name in secret_fields}
    settings = Settings().model_copy(update=values)
    assert set(settings.secret_values()) == {v.get_secret_value() for v in values.values()}
