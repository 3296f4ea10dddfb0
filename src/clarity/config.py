"""The one settings object. Every knob is an environment variable prefixed ``CLARITY_``.

Defaults are embedded and need no server (SQLite file, in-process cache and events) so that
a fresh clone runs with one command. ``CLARITY_ENVIRONMENT=production`` turns on checks
that refuse unsafe defaults before anything starts.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "clarity-development-secret-key-change-me"  # noqa: S105 - refused in production
MIN_SECRET_KEY_LENGTH = 32
# Development-only keys for encryption at rest (refused in production, like the secret key).
DEFAULT_ENCRYPTION_KEYS = "dev1:pGFEPP8yJcDIx0pFoSNcCMJgJqAJjv2FtSH4NTlHOnE="
DEFAULT_BLIND_INDEX_KEYS = "devi1:tzKHNYPuKRCKaKrWjDTavNp1A2dcyPGFLqg6auLBRbo="
DEFAULT_RESEARCH_KEY = "clarity-development-research-key-change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class UnsafeConfiguration(RuntimeError):
    """Raised at start-up when production settings would be unsafe; the message is one line."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLARITY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Environment.development
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    # Encryption at rest: "kid:base64key,kid:base64key", newest first (`clarity keys new`).
    encryption_keys: SecretStr = SecretStr(DEFAULT_ENCRYPTION_KEYS)
    blind_index_keys: SecretStr = SecretStr(DEFAULT_BLIND_INDEX_KEYS)
    # Keys research pseudonyms and date shifts: changing it changes every pseudonym.
    research_key: SecretStr = SecretStr(DEFAULT_RESEARCH_KEY)

    # Storage, cache and broker: embedded unless a URL is given.
    database_url: str = "sqlite+aiosqlite:///./clarity.db"
    database_pool_size: int = 10
    database_echo: bool = False
    redis_url: str | None = None
    cache_prefix: str = "clarity:"
    cache_retry_seconds: float = 1.0
    broker_url: str | None = None
    # Events on a broker: one ordered queue per partition, chosen by a hash of the patient.
    # Every server and worker must use the same count; change it only with empty queues.
    event_partitions: int = Field(default=16, ge=1, le=1024)
    # Names the exchange (<prefix>.events) and queues (<prefix>.events.p<k>), so that
    # several deployments (or test runs) can share one broker.
    broker_prefix: str = Field(default="clarity", pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    # `clarity worker`: a worker holds each partition under a lease it renews every
    # heartbeat; a worker silent for a lease is taken as dead and its partitions move.
    worker_lease_seconds: float = Field(default=15.0, gt=0)
    worker_heartbeat_seconds: float = Field(default=3.0, gt=0)
    # Failed deliveries of one event to one handler before it is set aside as a dead letter
    # (``clarity events dead`` / ``retry``) so that its partition's later events go on.
    worker_max_attempts: int = Field(default=10, ge=1)
    # Extra event handlers and periodic jobs for `clarity worker`: "module:function" paths,
    # each called with (registry, runtime) at start (see clarity.worker.registry).
    worker_handlers: CsvList = Field(default_factory=list)
    ready_requires: CsvList = Field(default_factory=lambda: ["database"])

    # Tokens.
    jwt_issuer: str = "clarity"
    jwt_audience: str = "clarity-api"
    access_token_minutes: int = 15
    refresh_token_days: int = 14

    # Identity.
    default_organization: str = "Default clinic"
    self_registration: bool = False
    mfa_required_for_admins: bool = False
    lockout_threshold: int = 5
    lockout_window_seconds: int = 900
    password_min_length: int = 12
    break_glass_minutes: int = 60

    # HTTP hygiene.
    cors_origins: CsvList = Field(default_factory=list)
    max_body_bytes: int = 1_048_576
    # Biometric uploads (paths ending in /biometrics) may be larger: 100,000 samples and up.
    max_ingest_bytes: int = 67_108_864
    # File imports (POST .../imports, whose path ends in /imports): the whole file is the body,
    # streamed to disk under import_dir (default: an "imports" folder beside the SQLite file,
    # else ./imports), mode 0600, deleted when the job ends.
    max_import_bytes: int = 4 * 1024**3
    import_dir: Path | None = None
    # A running import whose worker has not reported for this long is taken as dead: the
    # app resumes it (uploads) and `clarity import` may take it over (its own files).
    import_stale_seconds: float = 60.0
    # Promoted models are unpacked here from the registry, once per version, and reused
    # (verified against their SHA-256). Default: a "model-cache" folder beside the SQLite
    # file, else ./model-cache.
    model_cache_dir: Path = Path("model-cache")
    rate_limit_per_ip: int = 600
    rate_limit_per_user: int = 600
    rate_limit_login: int = 10
    rate_limit_window_seconds: int = 60
    trust_forwarded_for: bool = False
    hsts_seconds: int = 31_536_000

    # Alert delivery (docs/webhooks.md): SSE heartbeat, how often each process looks for new
    # alert events and due webhooks, webhook attempts before a delivery is dead, and whether
    # webhook URLs may reach private/loopback addresses (unset: blocked in production only).
    sse_heartbeat_seconds: float = 15.0
    alert_poll_seconds: float = Field(default=0.25, gt=0)
    # How long an open alert may wait for acknowledgement, per severity, before each
    # escalation level (``severity=duration`` pairs; clarity.alerts.escalation).
    alert_escalation: str = "critical=15m,high=1h"
    webhook_max_attempts: int = 7
    webhook_timeout_seconds: float = 5.0
    webhook_block_private: bool | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("alert_escalation")
    @classmethod
    def _escalation_policy(cls, value: str) -> str:
        from clarity.alerts.escalation import EscalationPolicy  # pure; avoids an import cycle

        EscalationPolicy.parse(value)  # ValueError names the faulty part
        return value

    _split_lists = field_validator(
        "ready_requires", "cors_origins", "worker_handlers", mode="before"
    )(_split_csv)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or ":memory:" in self.database_url:
            return None
        return Path(self.database_url.split("///", 1)[1])

    @property
    def import_path(self) -> Path:
        """Where uploaded files wait for their import job."""
        if self.import_dir is not None:
            return self.import_dir
        if self.sqlite_path is not None:
            return self.sqlite_path.parent / "imports"
        return Path("imports")

    @model_validator(mode="after")
    def _model_cache_beside_data(self) -> Settings:
        if "model_cache_dir" in self.model_fields_set or "///" not in self.database_url:
            return self
        if self.sqlite_path is not None:
            self.model_cache_dir = self.sqlite_path.parent / "model-cache"
        return self

    @property
    def webhook_blocks_private(self) -> bool:
        if self.webhook_block_private is not None:
            return self.webhook_block_private
        return self.environment is Environment.production

    def unsafe_reasons(self) -> list[str]:
        """Why these settings must not run in production (empty when they may)."""
        reasons: list[str] = []
        key = self.secret_key.get_secret_value()
        if key == DEFAULT_SECRET_KEY:
            reasons.append("CLARITY_SECRET_KEY is the development default; set a random key")
        elif len(key) < MIN_SECRET_KEY_LENGTH:
            reasons.append(f"CLARITY_SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters")
        if self.encryption_keys.get_secret_value() == DEFAULT_ENCRYPTION_KEYS:
            reasons.append("CLARITY_ENCRYPTION_KEYS is the development default; make keys")
        if self.blind_index_keys.get_secret_value() == DEFAULT_BLIND_INDEX_KEYS:
            reasons.append("CLARITY_BLIND_INDEX_KEYS is the development default; make keys")
        if self.research_key.get_secret_value() == DEFAULT_RESEARCH_KEY:
            reasons.append("CLARITY_RESEARCH_KEY is the development default; set a random key")
        if self.is_sqlite:
            reasons.append("CLARITY_DATABASE_URL is SQLite; production needs PostgreSQL")
        if "*" in self.cors_origins:
            reasons.append("CLARITY_CORS_ORIGINS contains '*'; list the front-end origins")
        return reasons

    def check_production(self) -> None:
        """Refuse to start in production on unsafe settings, with a one-line reason."""
        if self.environment is Environment.production:
            reasons = self.unsafe_reasons()
            if reasons:
                raise UnsafeConfiguration("refusing to start in production: " + "; ".join(reasons))


@lru_cache
def get_settings() -> Settings:
    return Settings()
