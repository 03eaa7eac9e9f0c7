"""Typed settings, read from the environment and `.env` files.

`VEDIKA_ENV` picks `.env.<env>` on top of `.env` (the later file wins). Reading
settings has no side effects: nothing is created, migrated or fetched here.
Invalid values stop the start with a sentence saying what is wrong
(`SettingsError`), never a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vedika.netpolicy import check_allow_entry

Environment = Literal["development", "uat", "preprod", "production"]
ENVIRONMENTS: tuple[str, ...] = ("development", "uat", "preprod", "production")


class SettingsError(Exception):
    """A setting is invalid; the message says which one and why."""


def _env(name: str, *more: str) -> Any:
    return Field(validation_alias=AliasChoices(name, *more))


class Settings(BaseSettings):
    """Every setting Vedika reads. Each one is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, populate_by_name=True)

    env: Environment = Field("development", validation_alias="VEDIKA_ENV")
    data_dir: Path = Field(Path("var"), validation_alias="VEDIKA_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="VEDIKA_DATABASE_URL")
    # PostgreSQL connections per instance: this many kept, up to `db_max_overflow` more
    # opened under load and closed after use, and 4 of the point reads' own. Every
    # instance's sum should stay under the server's max_connections (100 by default);
    # beyond it requests wait for their instance's own (vedika.store.slots).
    db_pool_size: int = Field(10, ge=1, le=1000, validation_alias="VEDIKA_DB_POOL_SIZE")
    db_max_overflow: int = Field(20, ge=0, le=1000, validation_alias="VEDIKA_DB_MAX_OVERFLOW")
    daily_credits: int = Field(20, ge=0, le=1_000_000, validation_alias="VEDIKA_DAILY_CREDITS")
    account_daily_credits: int = Field(
        100, ge=0, le=1_000_000, validation_alias="VEDIKA_ACCOUNT_DAILY_CREDITS"
    )
    models_file: Path | None = Field(None, validation_alias="VEDIKA_MODELS_FILE")
    default_model: str = Field("best", validation_alias="VEDIKA_DEFAULT_MODEL")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_CORS_ORIGINS"
    )
    session_ttl_days: int = Field(30, ge=1, le=3650, validation_alias="VEDIKA_SESSION_TTL_DAYS")
    max_message_chars: int = Field(
        32_000, ge=1, le=1_000_000, validation_alias="VEDIKA_MAX_MESSAGE_CHARS"
    )
    max_body_bytes: int = Field(2_000_000, ge=1024, validation_alias="VEDIKA_MAX_BODY_BYTES")
    flush_seconds: float = Field(1.0, gt=0, le=3600, validation_alias="VEDIKA_FLUSH_SECONDS")
    stream_retention_seconds: float = Field(
        120.0, ge=0, validation_alias="VEDIKA_STREAM_RETENTION_SECONDS"
    )
    upstream_connect_timeout: float = Field(
        10.0, gt=0, validation_alias="VEDIKA_UPSTREAM_CONNECT_TIMEOUT"
    )
    upstream_idle_timeout: float = Field(
        60.0, gt=0, validation_alias="VEDIKA_UPSTREAM_IDLE_TIMEOUT"
    )
    reaper_interval: float = Field(3.0, gt=0, validation_alias="VEDIKA_REAPER_INTERVAL")
    heartbeat_stale_seconds: float = Field(
        10.0, gt=0, validation_alias="VEDIKA_HEARTBEAT_STALE_SECONDS"
    )
    drain_seconds: float = Field(20.0, ge=0, validation_alias="VEDIKA_DRAIN_SECONDS")
    coalesce_ms: float = Field(20.0, ge=0, le=1000, validation_alias="VEDIKA_COALESCE_MS")
    coalesce_min_streams: int = Field(64, ge=1, validation_alias="VEDIKA_COALESCE_MIN_STREAMS")
    coalesce_lag_ms: float = Field(5.0, ge=0, le=1000, validation_alias="VEDIKA_COALESCE_LAG_MS")
    offline_delay_ms: float = Field(8.0, ge=0, validation_alias="VEDIKA_OFFLINE_DELAY_MS")
    early_start: bool = Field(True, validation_alias="VEDIKA_EARLY_START")
    redis_url: str | None = Field(None, validation_alias="VEDIKA_REDIS_URL")
    # The least time between two batches of the Redis hub's writer (scale/redis_hub.py).
    redis_batch_ms: float = Field(2.0, ge=0, le=50, validation_alias="VEDIKA_REDIS_BATCH_MS")
    rate_sessions_per_minute: int = Field(
        30, ge=0, validation_alias="VEDIKA_RATE_SESSIONS_PER_MINUTE"
    )
    rate_logins_per_minute: int = Field(10, ge=0, validation_alias="VEDIKA_RATE_LOGINS_PER_MINUTE")
    rate_logins_per_account_hour: int = Field(
        20, ge=0, validation_alias="VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR"
    )
    rate_messages_per_minute: int = Field(
        30, ge=0, validation_alias="VEDIKA_RATE_MESSAGES_PER_MINUTE"
    )
    rate_socket_messages_per_10s: int = Field(
        60, ge=0, validation_alias="VEDIKA_RATE_SOCKET_MESSAGES_PER_10S"
    )
    max_concurrent_answers: int = Field(4, ge=0, validation_alias="VEDIKA_MAX_CONCURRENT_ANSWERS")
    # Off: a device id alone never re-binds an existing device (vedika.identity.devices).
    trust_device_ids: bool = Field(False, validation_alias="VEDIKA_TRUST_DEVICE_IDS")
    log_level: str = Field("info", validation_alias="VEDIKA_LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="VEDIKA_LOG_JSON")
    # Addresses (IPs or CIDRs) of reverse proxies whose X-Forwarded-For/-Proto to believe;
    # empty: nobody's, the client address is the TCP peer (docs/deployment.md).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_TRUSTED_PROXIES"
    )
    # /docs and /openapi.json; unset: on in development only.
    expose_docs: bool | None = Field(None, validation_alias="VEDIKA_EXPOSE_DOCS")
    # Set: /metrics needs `Authorization: Bearer <token>`. Unset: open in development,
    # 404 elsewhere.
    metrics_token: SecretStr | None = Field(None, validation_alias="VEDIKA_METRICS_TOKEN")

    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        "https://api.anthropic.com", validation_alias="ANTHROPIC_BASE_URL"
    )
    ollama_host: str | None = Field(None, validation_alias="OLLAMA_HOST")
    ollama_autodetect: bool = Field(True, validation_alias="VEDIKA_OLLAMA_AUTODETECT")

    # Sources: attached files, web search, safe URL fetching (docs/sources.md).
    max_file_bytes: int = Field(25_000_000, ge=1, validation_alias="VEDIKA_MAX_FILE_BYTES")
    max_files_per_message: int = Field(
        10, ge=1, le=100, validation_alias="VEDIKA_MAX_FILES_PER_MESSAGE"
    )
    max_device_files: int = Field(100, ge=1, validation_alias="VEDIKA_MAX_DEVICE_FILES")
    max_device_file_bytes: int = Field(
        250_000_000, ge=1, validation_alias="VEDIKA_MAX_DEVICE_FILE_BYTES"
    )
    parse_timeout: float = Field(60.0, gt=0, validation_alias="VEDIKA_PARSE_TIMEOUT")
    parse_memory_mb: int = Field(1024, ge=64, validation_alias="VEDIKA_PARSE_MEMORY_MB")
    parse_workers: int = Field(2, ge=1, le=64, validation_alias="VEDIKA_PARSE_WORKERS")
    rate_uploads_per_minute: int = Field(
        20, ge=0, validation_alias="VEDIKA_RATE_UPLOADS_PER_MINUTE"
    )
    chunk_chars: int = Field(1000, ge=200, le=20_000, validation_alias="VEDIKA_CHUNK_CHARS")
    chunk_overlap: int = Field(150, ge=0, le=5_000, validation_alias="VEDIKA_CHUNK_OVERLAP")
    source_passages: int = Field(8, ge=1, le=50, validation_alias="VEDIKA_SOURCE_PASSAGES")
    default_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_DEFAULT_SOURCES"
    )
    search_provider: str = Field("auto", validation_alias="VEDIKA_SEARCH_PROVIDER")
    searxng_url: str | None = Field(None, validation_alias="VEDIKA_SEARXNG_URL")
    brave_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_BRAVE_API_KEY")
    tavily_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_TAVILY_API_KEY")
    search_results: int = Field(5, ge=1, le=20, validation_alias="VEDIKA_SEARCH_RESULTS")
    search_cache_seconds: float = Field(600.0, ge=0, validation_alias="VEDIKA_SEARCH_CACHE_SECONDS")
    search_timeout: float = Field(10.0, gt=0, validation_alias="VEDIKA_SEARCH_TIMEOUT")
    duckduckgo_url: str = Field(
        "https://html.duckduckgo.com/html/", validation_alias="VEDIKA_DUCKDUCKGO_URL"
    )
    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_FETCH_ALLOW"
    )
    fetch_max_bytes: int = Field(3_000_000, ge=1024, validation_alias="VEDIKA_FETCH_MAX_BYTES")
    fetch_timeout: float = Field(8.0, gt=0, validation_alias="VEDIKA_FETCH_TIMEOUT")
    fetch_max_redirects: int = Field(5, ge=0, le=20, validation_alias="VEDIKA_FETCH_MAX_REDIRECTS")
    embeddings_url: str | None = Field(None, validation_alias="VEDIKA_EMBEDDINGS_URL")
    embeddings_model: str = Field(
        "text-embedding-3-small", validation_alias="VEDIKA_EMBEDDINGS_MODEL"
    )
    embeddings_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_EMBEDDINGS_API_KEY")

    # Modes: Research and Agents (docs/modes.md).
    research_max_searches: int = Field(
        4, ge=1, le=12, validation_alias="VEDIKA_RESEARCH_MAX_SEARCHES"
    )
    research_max_pages: int = Field(12, ge=1, le=60, validation_alias="VEDIKA_RESEARCH_MAX_PAGES")
    research_max_sources: int = Field(
        12, ge=1, le=50, validation_alias="VEDIKA_RESEARCH_MAX_SOURCES"
    )
    research_timeout: float = Field(90.0, gt=0, validation_alias="VEDIKA_RESEARCH_TIMEOUT")
    agent_max_steps: int = Field(8, ge=1, le=50, validation_alias="VEDIKA_AGENT_MAX_STEPS")
    agent_timeout: float = Field(120.0, gt=0, validation_alias="VEDIKA_AGENT_TIMEOUT")
    agent_tool_timeout: float = Field(20.0, gt=0, validation_alias="VEDIKA_AGENT_TOOL_TIMEOUT")
    agent_tool_output_chars: int = Field(
        4000, ge=200, le=100_000, validation_alias="VEDIKA_AGENT_TOOL_OUTPUT_CHARS"
    )
    agent_tools: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_AGENT_TOOLS"
    )
    agent_tool_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_AGENT_TOOL_MODULES"
    )

    # Voice: transcription and speech through OpenAI-compatible audio endpoints.
    transcribe_url: str | None = Field(None, validation_alias="VEDIKA_TRANSCRIBE_URL")
    transcribe_model: str = Field("whisper-1", validation_alias="VEDIKA_TRANSCRIBE_MODEL")
    transcribe_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_TRANSCRIBE_API_KEY")
    transcribe_max_bytes: int = Field(
        25_000_000, ge=1024, validation_alias="VEDIKA_TRANSCRIBE_MAX_BYTES"
    )
    speech_url: str | None = Field(None, validation_alias="VEDIKA_SPEECH_URL")
    speech_model: str = Field("tts-1", validation_alias="VEDIKA_SPEECH_MODEL")
    speech_voice: str = Field("alloy", validation_alias="VEDIKA_SPEECH_VOICE")
    speech_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_SPEECH_API_KEY")
    speech_max_chars: int = Field(
        4096, ge=1, le=100_000, validation_alias="VEDIKA_SPEECH_MAX_CHARS"
    )
    voice_timeout: float = Field(60.0, gt=0, validation_alias="VEDIKA_VOICE_TIMEOUT")
    rate_voice_per_minute: int = Field(20, ge=0, validation_alias="VEDIKA_RATE_VOICE_PER_MINUTE")
    # Dictation for clients that stream to Deepgram themselves (vedika.voice.deepgram).
    deepgram_api_key: SecretStr | None = Field(None, validation_alias="VEDIKA_DEEPGRAM_API_KEY")
    deepgram_project_id: str | None = Field(None, validation_alias="VEDIKA_DEEPGRAM_PROJECT_ID")
    deepgram_url: str = Field("https://api.deepgram.com", validation_alias="VEDIKA_DEEPGRAM_URL")
    deepgram_key_ttl: int = Field(30, ge=1, le=3600, validation_alias="VEDIKA_DEEPGRAM_KEY_TTL")
    rate_deepgram_per_minute: int = Field(
        10, ge=0, validation_alias="VEDIKA_RATE_DEEPGRAM_PER_MINUTE"
    )
    # API keys and the OpenAI-compatible endpoints (issue 19; vedika.identity.apikeys).
    api_keys_per_account: int = Field(
        20, ge=0, le=1000, validation_alias="VEDIKA_API_KEYS_PER_ACCOUNT"
    )
    api_key_max_days: int = Field(365, ge=1, le=3650, validation_alias="VEDIKA_API_KEY_MAX_DAYS")

    # --- OpenID Connect sign-on (issue 17; vedika.identity.oidc, docs/accounts.md) -----
    # The identity providers people may sign in with: a JSON list of
    # {id, name, issuer, client_id, client_secret, scopes?} (OidcProviderSetting).
    oidc_providers: list[OidcProviderSetting] = Field(
        default_factory=list, validation_alias="VEDIKA_OIDC_PROVIDERS"
    )
    # The redirect URI is `{public_url}/auth/oidc/{id}/callback` (`public_url`, with the
    # mail settings below; unset: the request's own address).
    oidc_flow_seconds: int = Field(600, ge=30, le=3600, validation_alias="VEDIKA_OIDC_FLOW_SECONDS")
    oidc_discovery_seconds: int = Field(
        3600, ge=0, validation_alias="VEDIKA_OIDC_DISCOVERY_SECONDS"
    )
    oidc_timeout: float = Field(10.0, gt=0, validation_alias="VEDIKA_OIDC_TIMEOUT")

    @field_validator("oidc_providers")
    @classmethod
    def _check_oidc_providers(cls, value: list[OidcProviderSetting]) -> list[OidcProviderSetting]:
        ids = [p.id for p in value]
        if len(set(ids)) != len(ids):
            raise ValueError("two providers have the same id")
        return value

    # ---- Share links, export and import (issue 18; api/share.py, docs/protocol.md)
    import_max_messages: int = Field(
        500, ge=1, le=10_000, validation_alias="VEDIKA_IMPORT_MAX_MESSAGES"
    )
    import_max_chars: int = Field(
        1_000_000, ge=1_000, le=50_000_000, validation_alias="VEDIKA_IMPORT_MAX_CHARS"
    )
    rate_imports_per_minute: int = Field(
        10, ge=0, validation_alias="VEDIKA_RATE_IMPORTS_PER_MINUTE"
    )

    @field_validator("agent_tools", "agent_tool_modules", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("transcribe_url", "speech_url")
    @classmethod
    def _check_voice_url(cls, value: str | None) -> str | None:
        """`http://host:port` -> `http://host:port/v1` (like OPENAI_BASE_URL)."""
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        value = value.rstrip("/")
        return value if "/" in value.split("://", 1)[1] else value + "/v1"

    @field_validator("default_sources", "fetch_allow", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("default_sources")
    @classmethod
    def _check_sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if source not in ("web", "files"):
                raise ValueError(f"{source!r} is not a source; use web and/or files")
        return value

    @field_validator("fetch_allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        return [check_allow_entry(entry) for entry in value]

    @field_validator("search_provider")
    @classmethod
    def _check_search(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "none", "searxng", "brave", "tavily", "duckduckgo"):
            raise ValueError("must be auto, none, searxng, brave, tavily or duckduckgo")
        return value

    @field_validator("searxng_url", "embeddings_url")
    @classmethod
    def _check_source_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://host:port/db URL")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(
                "only sqlite+aiosqlite:// and postgresql+asyncpg:// URLs are supported"
            )
        return value

    @field_validator("openai_base_url", "anthropic_base_url", "ollama_host")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        """The database URL with drivers filled in; SQLite under data_dir by default."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'vedika.db'}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://") :]
        if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
            url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def heartbeat_stale_after(self) -> float:
        """How old an answer's heartbeat may be before it is presumed dead. A live
        generation refreshes it every flush; one that missed three flushes and at least
        VEDIKA_HEARTBEAT_STALE_SECONDS died (too short a limit would reap the answers of
        an instance that is merely busy)."""
        return max(3 * self.flush_seconds, self.heartbeat_stale_seconds)

    @property
    def reaped_within(self) -> float:
        """The longest time from an instance's death to its answers being settled: the
        heartbeat goes stale, then the next reaper round finds it."""
        return self.heartbeat_stale_after + self.reaper_interval

    def masked(self) -> dict[str, Any]:
        """Effective settings for `vedika config`, every credential masked."""
        from vedika.redact import masked_settings  # redact imports nothing of ours

        return masked_settings(self)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _check_proxies(cls, value: Any) -> Any:
        """`10.0.0.5, 10.1.0.0/16` -> a list of checked entries (`*` trusts everyone)."""
        entries = value.split(",") if isinstance(value, str) else value
        out = []
        for entry in (str(e).strip() for e in entries or []):
            if not entry:
                continue
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
            out.append(entry)
        return out

    # Admin role and mail (issue 17: docs/accounts.md "The admin role", "Email").
    admin_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="VEDIKA_ADMIN_EMAILS"
    )
    public_url: str | None = Field(None, validation_alias="VEDIKA_PUBLIC_URL")
    smtp_host: str | None = Field(None, validation_alias="VEDIKA_SMTP_HOST")
    smtp_port: int | None = Field(None, ge=1, le=65535, validation_alias="VEDIKA_SMTP_PORT")
    smtp_user: str | None = Field(None, validation_alias="VEDIKA_SMTP_USER")
    smtp_password: SecretStr | None = Field(None, validation_alias="VEDIKA_SMTP_PASSWORD")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", validation_alias="VEDIKA_SMTP_TLS"
    )
    smtp_from: str = Field("Vedika <vedika@localhost>", validation_alias="VEDIKA_SMTP_FROM")
    smtp_timeout: float = Field(10.0, gt=0, le=300, validation_alias="VEDIKA_SMTP_TIMEOUT")
    password_reset_minutes: int = Field(
        30, ge=1, le=7 * 24 * 60, validation_alias="VEDIKA_PASSWORD_RESET_MINUTES"
    )
    rate_password_resets_per_hour: int = Field(
        3, ge=0, validation_alias="VEDIKA_RATE_PASSWORD_RESETS_PER_HOUR"
    )

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        """Compared with accounts' emails as sign-in compares them: trimmed, NFKC,
        lower case."""
        entries = value.split(",") if isinstance(value, str) else value or []
        return [
            unicodedata.normalize("NFKC", str(e)).strip().lower() for e in entries if str(e).strip()
        ]

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("smtp_host", "smtp_user")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None

    @property
    def mail_enabled(self) -> bool:
        """Mail is sent (password reset, sign-in notices) only with an SMTP host."""
        return self.smtp_host is not None


def load_settings(**overrides: Any) -> Settings:
    """Read settings for the environment named by VEDIKA_ENV.

    Raises SettingsError with one readable sentence per invalid value.
    """
    env = (overrides.get("env") or os.environ.get("VEDIKA_ENV") or "development").strip()
    if env not in ENVIRONMENTS:
        raise SettingsError(f"VEDIKA_ENV is {env!r}; it must be one of: {', '.join(ENVIRONMENTS)}.")
    try:
        return Settings(_env_file=(".env", f".env.{env}"), **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    fields = Settings.model_fields
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        alias = fields[name].validation_alias if name in fields else name
        label = alias if isinstance(alias, str) else name
        value = err.get("input")
        lines.append(f"{label}={value!r} is invalid: {err['msg']}.")
    return " ".join(lines)


# --- OpenID Connect sign-on (issue 17) -------------------------------------------------


class OidcProviderSetting(BaseModel):
    """One identity provider of VEDIKA_OIDC_PROVIDERS (docs/accounts.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")  # in the redirect URI
    name: str = Field(..., min_length=1, max_length=60)  # on the sign-in button
    issuer: str
    client_id: str = Field(..., min_length=1)
    client_secret: SecretStr = SecretStr("")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"issuer {value!r} must start with https:// (or http://)")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        return value if "openid" in value else ["openid", *value]


Settings.model_rebuild()
