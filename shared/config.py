"""Settings for every service, from WF_* environment variables (the README's configuration table).

In development and testing, missing secrets (JWT key, master key) are generated once into the run
directory so that `make up`, the services and `wf token` agree. In production they must be set, and
placeholder values are refused.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = {"", "changeme", "change-me", "changethis", "secret", "placeholder", "xxx"}


class Environment(StrEnum):
    development = "development"
    testing = "testing"
    production = "production"


def run_dir() -> Path:
    return Path(os.environ.get("WF_RUN_DIR", ".run"))


@dataclass(frozen=True, slots=True)
class DispatcherSection:
    port: int
    batch_max: int
    scheduler_interval_s: float
    unpublished_grace_s: float


@dataclass(frozen=True, slots=True)
class ExecutorSection:
    port: int
    concurrency: int
    lease_s: float
    max_backoff_s: float
    actions: ActionSection


@dataclass(frozen=True, slots=True)
class HealthSection:
    port: int
    retention_log_days: int
    retention_run_days: int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WF_",
        env_file=str(run_dir() / "stack.env"),
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a refused setting's error must not print the other settings' secrets
    )

    env: Environment = Environment.development
    database_url: str = ""
    kafka_bootstrap: str = ""
    # Secured clusters (docs/kafka.md): every producer, consumer and admin client, in every service and
    # in `wf`, connects with these. Secrets are SecretStr (never logged); a password may come from a
    # mounted file (a Kubernetes Secret), read once at start.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: str | None = None
    kafka_ssl_ca_file: str | None = None  # unset: the system's trusted CAs (MSK, Confluent Cloud)
    kafka_ssl_cert_file: str | None = None  # client certificate (mutual TLS), PEM
    kafka_ssl_key_file: str | None = None  # its private key, PEM
    kafka_ssl_key_password: SecretStr | None = None
    # Codec of everything the services produce (consumers read every codec whatever this is); zstd:
    # the fewest bytes and, in full batches, the least CPU (bench/README.md, "Producer compression").
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "zstd"

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Side ports serving /healthz and /metrics for the consumer services.
    dispatcher_port: int = 8081
    executor_port: int = 8082
    health_port: int = 8083
    # The API's /livez, /readyz and /metrics, apart from its public port.
    api_metrics_port: int = 8084
    metrics_host: str = "127.0.0.1"

    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    master_key: SecretStr | None = None
    # Comma-separated earlier master keys, kept while `wf credentials rotate-key` re-encrypts.
    master_key_previous: SecretStr | None = None

    egress_allow_cidrs: str = ""
    # "host=ip[:port],..." pins names to addresses (split-horizon DNS, tests). Still egress-checked.
    egress_host_overrides: str = ""

    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None

    kafka_create_topics: bool = True
    # Consumer groups are "<prefix>-dispatcher", "<prefix>-executor", "<prefix>-health".
    consumer_group_prefix: str = "workflows"
    topic_events: str = "workflows.events"
    topic_runs: str = "workflows.runs"
    topic_results: str = "workflows.results"
    topic_dlq: str = "workflows.events.dlq"
    topic_changes: str = "workflows.changes"
    # 12 divides evenly among 1, 2, 3, 4, 6 and 12 replicas of a consumer group.
    partitions_events: int = 12
    partitions_runs: int = 12
    partitions_results: int = 6
    partitions_dlq: int = 3
    partitions_changes: int = 1
    kafka_replication_factor: int = 1
    max_event_bytes: int = 1024 * 1024

    db_pool_size: int = 10
    db_max_overflow: int = 10
    # false behind PgBouncer in transaction mode, which cannot keep server-side prepared statements.
    db_prepared_statements: bool = True

    dispatcher_batch_max: int = 2000
    scheduler_interval_s: float = 0.5
    # A due run committed unpublished (retries, expired leases; the dispatcher's runs are covered by their
    # events' uncommitted offsets instead) whose message was not produced (crash between commit and
    # produce), and a final run whose outcome was not acknowledged (broker down, crash), are published by
    # the scheduler after this many seconds.
    unpublished_grace_s: float = 10.0

    executor_concurrency: int = 64
    executor_lease_s: float = 60.0
    executor_max_backoff_s: float = 3600.0

    http_timeout_s: float = 30.0
    smtp_timeout_s: float = 30.0
    upload_timeout_s: float = 120.0
    twilio_base_url: str = "https://api.twilio.com"
    box_api_base_url: str = "https://api.box.com"
    box_upload_base_url: str = "https://upload.box.com"
    dropbox_api_base_url: str = "https://api.dropboxapi.com"
    dropbox_content_base_url: str = "https://content.dropboxapi.com"

    test_wait_s: float = 30.0
    retention_log_days: int = 30
    retention_run_days: int = 90

    shutdown_grace_s: float = 25.0
    extra: dict[str, Any] = Field(default_factory=dict)
    _kafka_file_password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _kafka_login(self) -> Settings:
        if self.kafka_sasl_password_file:
            if self.kafka_sasl_password is not None:
                raise ValueError("set WF_KAFKA_SASL_PASSWORD or WF_KAFKA_SASL_PASSWORD_FILE, not both")
            try:
                text = Path(self.kafka_sasl_password_file).read_text()
            except OSError as exc:
                raise ValueError(f"WF_KAFKA_SASL_PASSWORD_FILE cannot be read: {exc.strerror}") from None
            self._kafka_file_password = SecretStr(text.rstrip("\r\n"))
        if self.kafka_security_protocol.startswith("SASL_") and (
            not self.kafka_sasl_username or self.kafka_sasl_secret() is None
        ):
            raise ValueError(
                f"WF_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs WF_KAFKA_SASL_USERNAME and "
                "WF_KAFKA_SASL_PASSWORD (or WF_KAFKA_SASL_PASSWORD_FILE)"
            )
        return self

    def kafka_sasl_secret(self) -> SecretStr | None:
        """The SASL password, from WF_KAFKA_SASL_PASSWORD or the file WF_KAFKA_SASL_PASSWORD_FILE names."""
        return self.kafka_sasl_password or self._kafka_file_password

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env is not Environment.production:
            return self
        missing = []
        if self.jwt_jwks_url is None and (
            self.jwt_secret is None or self.jwt_secret.get_secret_value().lower() in PLACEHOLDERS
        ):
            missing.append("WF_JWT_SECRET (or WF_JWT_JWKS_URL)")
        if self.master_key is None or self.master_key.get_secret_value().lower() in PLACEHOLDERS:
            missing.append("WF_MASTER_KEY")
        if missing:
            raise ValueError(f"production needs real values for: {', '.join(missing)}")
        return self

    @property
    def allow_cidrs(self) -> list[str]:
        return [c.strip() for c in self.egress_allow_cidrs.split(",") if c.strip()]

    @property
    def host_overrides(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.egress_host_overrides.split(",") if "=" in item)
        return {host.strip().lower(): target.strip() for host, target in pairs}

    # Per-service sections: read-only views of the flat fields above, which stay the contract (one
    # WF_* variable each, so as_environment() still round-trips). No defaults are written twice: a
    # section has none of its own (ActionSection reads them from here). Built on each access (start-up only, never on a hot path).
    @property
    def dispatcher(self) -> DispatcherSection:
        return DispatcherSection(
            port=self.dispatcher_port,
            batch_max=self.dispatcher_batch_max,
            scheduler_interval_s=self.scheduler_interval_s,
            unpublished_grace_s=self.unpublished_grace_s,
        )

    @property
    def actions(self) -> ActionSection:
        names = (f.name for f in fields(ActionSection) if f.name in type(self).model_fields)
        return ActionSection(**{name: getattr(self, name) for name in names})

    @property
    def executor(self) -> ExecutorSection:
        return ExecutorSection(
            port=self.executor_port,
            concurrency=self.executor_concurrency,
            lease_s=self.executor_lease_s,
            max_backoff_s=self.executor_max_backoff_s,
            actions=self.actions,
        )

    @property
    def health(self) -> HealthSection:
        return HealthSection(
            port=self.health_port,
            retention_log_days=self.retention_log_days,
            retention_run_days=self.retention_run_days,
        )

    def as_environment(self) -> dict[str, str]:
        """These settings as the WF_ variables that make a child process (a service started by the tests
        or the benchmarks) read the very same settings, secrets included."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None or name == "extra":
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            env[f"WF_{name.upper()}"] = str(value.value if hasattr(value, "value") else value)
        return env

    def require_infrastructure(self) -> None:
        if not self.database_url:
            raise RuntimeError("WF_DATABASE_URL is not set (make up / make run start a local database)")
        if not self.kafka_bootstrap:
            raise RuntimeError("WF_KAFKA_BOOTSTRAP is not set (make up / make run start a local broker)")


def _development_secrets(directory: Path) -> dict[str, str]:
    """Generate once, then reuse, the development JWT key and master key."""
    path = directory / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    values = {
        "jwt_secret": secrets.token_urlsafe(48),
        "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values))
    tmp.chmod(0o600)
    tmp.replace(path)
    return values


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class ActionSection:
    """What the executor's actions read (``ActionHost.settings`` in shared/actions/spec.py): timeouts and
    provider base URLs. Its defaults are read from ``Settings``, so each is written once and
    ``ActionSection()`` (tests, tools) has the WF_* defaults."""

    http_timeout_s: float = _default("http_timeout_s")
    smtp_timeout_s: float = _default("smtp_timeout_s")
    upload_timeout_s: float = _default("upload_timeout_s")
    twilio_base_url: str = _default("twilio_base_url")
    box_api_base_url: str = _default("box_api_base_url")
    box_upload_base_url: str = _default("box_upload_base_url")
    dropbox_api_base_url: str = _default("dropbox_api_base_url")
    dropbox_content_base_url: str = _default("dropbox_content_base_url")
    # The actions' own bound, not a WF_ variable: the longest Retry-After a provider's answer may ask for.
    max_retry_after_s: float = 600.0


def load_settings(**overrides: Any) -> Settings:
    settings = Settings(**overrides)
    if settings.env is Environment.production:
        return settings
    fill: dict[str, Any] = {}
    if settings.jwt_secret is None and settings.jwt_jwks_url is None:
        fill["jwt_secret"] = _development_secrets(run_dir())["jwt_secret"]
    if settings.master_key is None:
        fill["master_key"] = _development_secrets(run_dir())["master_key"]
    return settings.model_copy(update={k: SecretStr(v) for k, v in fill.items()}) if fill else settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
