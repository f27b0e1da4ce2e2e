"""Every setting the application reads, in one typed object.

Configuration flows one way: the environment (and an optional ``.env`` file) →
:class:`Settings` → the Flask app → the extensions. This is the only module that
reads ``os.environ``; everything else receives a :class:`Settings` instance or
reads ``app.settings``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from app.core.settings_accounts import AccountSettings, PositiveFloat, PositiveInt, check_limit

AppEnv = Literal["development", "testing", "production"]
LogFormat = Literal["text", "json"]

#: The value shipped in ``.env.example``. Fine on a laptop, refused in production.
DEFAULT_SECRET_KEY = "dev-insecure-change-me-not-for-production"  # noqa: S105 - a known placeholder, refused in production


class SettingsError(SystemExit):
    """Start-up was refused because a setting is missing or invalid.

    It subclasses :class:`SystemExit` so that every entry point (``flask``,
    ``gunicorn``, ``celery``) stops with this one message instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Settings(AccountSettings, BaseSettings):
    """The application's settings. Each field is read from the environment
    variable of the same name in upper case (``APP_ENV``, ``DATABASE_URL``, ...).

    ``.env.example`` documents every one of them.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        # `LOG_FORMAT=` in .env means "use the default", as .env.example shows.
        env_ignore_empty=True,
        frozen=True,
    )

    # -- application --------------------------------------------------------
    app_env: AppEnv = "development"
    debug: bool = False
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    #: Largest accepted request body in bytes; larger bodies get a 413 envelope.
    max_content_length: PositiveInt = 1024 * 1024
    #: How many proxies (nginx, a load balancer) sit in front and set X-Forwarded-*.
    proxy_fix_hops: Annotated[int, Field(ge=0)] = 0
    #: Where the embedded SQLite file and other local state live.
    instance_path: Path = Path("instance")

    # -- database -----------------------------------------------------------
    #: SQLAlchemy URL. Empty means the embedded SQLite file ``<instance_path>/app.db``.
    database_url: str = ""
    database_pool_size: PositiveInt = 5
    database_max_overflow: Annotated[int, Field(ge=0)] = 10
    database_pool_timeout: PositiveFloat = 10.0
    database_pool_recycle: PositiveInt = 1800
    #: Seconds a new connection to MySQL may take: a database that is gone
    #: answers 503 within about this, not the driver's 10 s.
    database_connect_timeout: PositiveFloat = 1.0
    #: Seconds a query may wait for MySQL to answer, or to take what it is sent,
    #: before the request fails with a 503: below GUNICORN_TIMEOUT, so a hung
    #: database cannot hold a worker's threads past it.
    database_read_timeout: PositiveFloat = 10.0
    database_write_timeout: PositiveFloat = 10.0
    database_echo: bool = False

    # -- redis --------------------------------------------------------------
    #: ``redis://host:port/db``. Empty means no Redis: the cache keeps its local tier only.
    redis_url: str = ""
    redis_socket_timeout: PositiveFloat = 1.0

    # -- auth ---------------------------------------------------------------
    #: Seconds an access token (JWT) is valid.
    access_token_ttl: Annotated[int, Field(ge=60, le=86_400)] = 900
    #: Seconds a refresh token is valid (each use replaces it).
    refresh_token_ttl: Annotated[int, Field(ge=3600)] = 30 * 86_400
    #: Argon2id time cost (iterations). Raising it rehashes passwords at their next login.
    password_time_cost: Annotated[int, Field(ge=1, le=20)] = 3
    #: Argon2id memory cost in KiB.
    password_memory_cost: Annotated[int, Field(ge=8192)] = 65_536
    #: Failed logins allowed per account (email), in Flask-Limiter's notation.
    login_limit_per_account: Annotated[str, Field(min_length=1)] = "5 per minute"
    #: Failed logins allowed per client address.
    login_limit_per_address: Annotated[str, Field(min_length=1)] = "20 per minute"
    #: Where the rate limiter counts: empty means REDIS_URL (or memory without Redis).
    ratelimit_storage_url: str = ""

    # -- celery -------------------------------------------------------------
    #: Broker for background tasks (``redis://...``). Empty: tasks run inline, in
    #: the process that sends them (the embedded default; no worker needed).
    celery_broker_url: str = ""
    #: Where task results are kept; empty keeps none (no task's result is read today).
    celery_result_backend: str = ""
    #: Seconds a task may stay unacknowledged before Redis hands it to another
    #: worker (its worker died). Longer than the slowest task.
    celery_visibility_timeout: PositiveInt = 3600
    #: ``user:password`` for Flower's basic auth. Flower refuses to start without it.
    flower_basic_auth: SecretStr = SecretStr("")

    # -- search -------------------------------------------------------------
    #: Meilisearch, e.g. ``http://meilisearch:7700``. Empty: search is served
    #: from the database.
    meili_url: str = ""
    #: The Meilisearch key (the master key, or an admin API key).
    meili_master_key: SecretStr = SecretStr("")
    #: The index articles go in.
    meili_index: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")] = "articles"
    #: Seconds one HTTP call to Meilisearch may take.
    meili_timeout: Annotated[int, Field(ge=1, le=60)] = 2
    #: Seconds to wait for a Meilisearch task (settings, indexing) to finish.
    meili_task_timeout: PositiveFloat = 10.0
    #: Apply the index settings when the app starts (also: ``flask search init``).
    meili_init_on_start: bool = False
    #: Articles per batch, for ``flask search reindex`` and the outbox sweep.
    search_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    #: Seconds an outbox row is left to the task sent after its commit before
    #: the sweep takes it over; also the lease of a row being delivered.
    search_outbox_grace: Annotated[int, Field(ge=1, le=3600)] = 30
    #: Seconds between two sweeps of the outbox (beat).
    search_sweep_interval: Annotated[int, Field(ge=5, le=86_400)] = 60
    #: When beat runs the nightly full reindex, ``HH:MM`` in UTC.
    search_reindex_at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "03:00"

    # -- realtime (docs/api.md#the-stream) ---------------------------------
    #: ``host:port`` the notification stream's process (``python -m app.realtime``) listens on.
    realtime_bind: str = "0.0.0.0:8001"
    #: Streams one account may hold open at once, per stream process; one more closes with 4429.
    realtime_max_streams_per_account: Annotated[int, Field(ge=1, le=100)] = 5
    #: Seconds between the server's pings; a client that does not answer within as long is dropped.
    realtime_ping_interval: Annotated[float, Field(gt=0, le=300)] = 20.0
    #: Notifications waiting to be sent to one connection before it counts as a slow reader (1013).
    realtime_send_queue: Annotated[int, Field(ge=1, le=10_000)] = 100
    #: Largest frame a client may send, in bytes; a larger one closes the connection with 1009.
    realtime_max_client_frame: Annotated[int, Field(ge=125, le=1_048_576)] = 4096

    # -- http ---------------------------------------------------------------
    #: Origins allowed to call the API from a browser, comma-separated (``*`` for any).
    #: Empty allows none: same-origin only.
    cors_origins: str = ""
    #: Seconds a browser may cache a CORS preflight answer.
    cors_max_age: Annotated[int, Field(ge=0)] = 600
    #: ``Strict-Transport-Security`` max-age in seconds; 0 leaves the header out.
    #: Empty means one year in production and 0 elsewhere.
    hsts_max_age: Annotated[int, Field(ge=0)] | None = None

    # -- cache --------------------------------------------------------------
    #: Entries the in-process tier keeps per process before evicting the least recently used.
    cache_local_max_size: PositiveInt = 10_000
    #: Pages (of a list) the in-process tier of pages keeps per process; each may hold 100 items.
    cache_pages_max_size: PositiveInt = 256
    #: Default seconds a value lives in the in-process tier (a node may set its own).
    cache_local_ttl: PositiveFloat = 30.0
    #: Default seconds a value lives in Redis (a node may set its own).
    cache_redis_ttl: PositiveFloat = 600.0
    #: First segment of every cache key and pub/sub channel; change it to share one Redis between apps.
    cache_prefix: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "cache"
    #: Seconds a load lock lives if its holder dies before releasing it.
    cache_lock_timeout: PositiveFloat = 10.0
    #: Seconds a caller waits for another process's load before loading itself.
    cache_lock_wait: PositiveFloat = 5.0

    # -- health -------------------------------------------------------------
    #: Seconds each readiness check may take before it counts as down (at most 2).
    health_check_timeout: Annotated[float, Field(gt=0, le=2)] = 1.0

    # -- logging ------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``text`` for people, ``json`` (one object per line) for log shippers.
    #: Empty means ``json`` in production and ``text`` elsewhere.
    log_format: LogFormat | None = None

    # -- gunicorn -----------------------------------------------------------
    gunicorn_bind: str = "0.0.0.0:8000"
    gunicorn_workers: PositiveInt = 2
    gunicorn_threads: PositiveInt = 4
    gunicorn_timeout: PositiveInt = 30

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, value: str) -> str:
        if value:
            try:
                make_url(value)
            except ArgumentError:
                raise ValueError(
                    "not a SQLAlchemy URL (e.g. mysql+pymysql://user:pw@host:3306/db)"
                ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _database_answers_before_gunicorn_gives_up(self) -> Settings:
        for name in ("database_connect_timeout", "database_read_timeout", "database_write_timeout"):
            if getattr(self, name) >= self.gunicorn_timeout:
                raise ValueError(
                    f"{name.upper()} must be below GUNICORN_TIMEOUT ({self.gunicorn_timeout}s)"
                )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.app_env == "production":
            if self.secret_key.get_secret_value() in ("", DEFAULT_SECRET_KEY):
                raise ValueError("SECRET_KEY must be set to a private random value in production")
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("SECRET_KEY must be at least 32 characters in production")
            if self.debug:
                raise ValueError("DEBUG must be off in production")
            self._refuse_unsafe_production_accounts()
        return self

    def _refuse_unsafe_production_accounts(self) -> None:
        if self.smtp_username and self.smtp_security == "none":
            raise ValueError(
                "SMTP_SECURITY=none would send SMTP_PASSWORD in clear: use starttls or tls"
            )
        if self.email_enabled and not self.smtp_host:
            raise ValueError(
                "EMAIL_ENABLED needs SMTP_HOST in production (or leave EMAIL_ENABLED empty)"
            )
        if self.sms_sender == "console":
            raise ValueError("SMS_SENDER=console writes codes to the log: not in production")

    @model_validator(mode="after")
    def _tencent_needs_its_settings(self) -> Settings:
        if self.sms_sender == "tencent":
            missing = [
                name.upper()
                for name in (
                    "tencent_sms_secret_id",
                    "tencent_sms_app_id",
                    "tencent_sms_sign_name",
                    "tencent_sms_template_id",
                )
                if not getattr(self, name)
            ]
            if not self.tencent_sms_secret_key.get_secret_value():
                missing.append("TENCENT_SMS_SECRET_KEY")
            if missing:
                raise ValueError(f"SMS_SENDER=tencent needs {', '.join(missing)}")
        return self

    @field_validator("celery_broker_url", "celery_result_backend")
    @classmethod
    def _celery_url_is_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("meili_url")
    @classmethod
    def _meili_url_is_http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("ratelimit_storage_url")
    @classmethod
    def _ratelimit_storage_is_supported(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "memory://")):
            raise ValueError("must start with redis://, rediss:// or memory://")
        return value

    @field_validator("login_limit_per_account", "login_limit_per_address")
    @classmethod
    def _limit_parses(cls, value: str) -> str:
        return check_limit(value)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def resolved_hsts_max_age(self) -> int:
        if self.hsts_max_age is not None:
            return self.hsts_max_age
        return 31_536_000 if self.is_production else 0

    @property
    def resolved_email_enabled(self) -> bool:
        if self.email_enabled is not None:
            return self.email_enabled
        return bool(self.smtp_host) or not self.is_production

    @property
    def resolved_sms_sender(self) -> Literal["tencent", "console"] | None:
        if self.sms_sender is not None:
            return self.sms_sender
        return None if self.is_production else "console"

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @cached_property
    def resolved_database_url(self) -> str:
        """``database_url``, or the embedded SQLite file under the instance folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.instance_path / 'app.db').resolve()}"

    @property
    def resolved_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "text"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or stop start-up with one line that names the culprit."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


_SENSITIVE_SUFFIXES = ("_KEY", "_URL", "_PASSWORD", "_SECRET")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every bad setting. Values of secret-looking settings are not echoed."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        name = "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            problems.append(f"missing setting {name}")
        elif name.endswith(_SENSITIVE_SUFFIXES):
            problems.append(f"invalid setting {name}: {message}")
        elif name:
            problems.append(f"invalid setting {name}: {message} (got {error['input']!r})")
        else:
            problems.append(f"invalid settings: {message}")
    return "Refusing to start: " + "; ".join(problems)
