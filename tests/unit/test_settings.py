"""Settings: env files per environment, readable errors, masking, and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vedika.settings import Settings, SettingsError, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("VEDIKA_", "OPENAI_", "ANTHROPIC_", "OLLAMA_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_sqlite() -> None:
    s = load_settings()
    assert s.env == "development" and s.daily_credits == 20
    assert s.effective_database_url == "sqlite+aiosqlite:///var/vedika.db"


def test_defaults_settle_a_dead_instance_within_15_s_and_flush_every_second() -> None:
    # Issue 16: a lone instance loses at most one flush interval of text at a SIGKILL,
    # and with several, a dead instance's answers are settled within 15 s.
    s = load_settings()
    assert s.flush_seconds <= 1.0
    assert s.reaped_within <= 15.0
    assert s.heartbeat_stale_after >= 3 * s.flush_seconds  # not reaped while alive
    slow = Settings(VEDIKA_FLUSH_SECONDS=10, VEDIKA_HEARTBEAT_STALE_SECONDS=5)
    assert slow.heartbeat_stale_after == 30.0 and slow.reaped_within == 33.0


def test_env_file_for_the_environment_wins_over_dot_env(monkeypatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("VEDIKA_DAILY_CREDITS=5\nVEDIKA_FLUSH_SECONDS=2\n")
    (tmp_path / ".env.uat").write_text("VEDIKA_DAILY_CREDITS=7\n")
    monkeypatch.setenv("VEDIKA_ENV", "uat")
    s = load_settings()
    assert (s.env, s.daily_credits, s.flush_seconds) == ("uat", 7, 2.0)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("VEDIKA_ENV", "staging", "must be one of"),
        ("VEDIKA_DAILY_CREDITS", "lots", "VEDIKA_DAILY_CREDITS='lots' is invalid"),
        ("VEDIKA_DAILY_CREDITS", "-1", "VEDIKA_DAILY_CREDITS"),
        ("OPENAI_BASE_URL", "localhost:8000", "must start with http"),
        ("VEDIKA_DATABASE_URL", "mysql://x", "only sqlite"),
        ("VEDIKA_CORS_ORIGINS", "example.com", "not an origin"),
    ],
)
def test_invalid_values_stop_with_a_sentence(monkeypatch, key, value, words) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=re.escape(words)):
        load_settings()


def test_postgres_urls_get_the_async_driver_and_secrets_are_masked(monkeypatch) -> None:
    monkeypatch.setenv("VEDIKA_DATABASE_URL", "postgres://u:hunter2@db/vedika")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-supersecretvalue")
    s = load_settings()
    assert s.effective_database_url == "postgresql+asyncpg://u:hunter2@db/vedika"
    shown = str(s.masked())
    assert "hunter2" not in shown and "supersecretvalue" not in shown


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        key = alias if isinstance(alias, str) else name
        assert f"`{key}`" in text, f"{key} is missing from docs/configuration.md"


def test_cli_config_masks_and_reports_errors(monkeypatch, capsys) -> None:
    from vedika.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijkl")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "sk-abcdefghijkl" not in out and "VEDIKA_DAILY_CREDITS" in out
    monkeypatch.setenv("VEDIKA_DAILY_CREDITS", "many")
    assert main(["config"]) == 2
    assert "VEDIKA_DAILY_CREDITS='many' is invalid" in capsys.readouterr().err
