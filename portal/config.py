"""Settings read from the environment; secrets have no default outside development and tests."""

import os
from datetime import timedelta
from urllib.parse import urlsplit

DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"  # noqa: S105
DEV_EVENTS_SECRET = "dev-events-secret"  # noqa: S105
MIN_SECRET_BYTES = 32
# Secrets that were ever published (defaults, examples, old compose files) never run production.
KNOWN_PLACEHOLDERS = {
    DEV_SECRET_KEY,
    DEV_EVENTS_SECRET,
    "test-secret-key",
    "test-events-secret",
    "change-me-to-a-long-random-secret",
    "change-me-events-secret",
}
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "placeholder", "dev-only")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _weak_secret(value: str) -> bool:
    lowered = value.strip().lower()
    return (
        len(value.encode()) < MIN_SECRET_BYTES
        or value in KNOWN_PLACEHOLDERS
        or any(marker in lowered for marker in PLACEHOLDER_MARKERS)
    )


def database_role(url: str) -> str:
    """The role name a SQLAlchemy/libpq URL logs in as."""
    return urlsplit(url.replace("+psycopg", "")).username or ""


class Config:
    """Production settings; every secret must come from the environment."""

    ENV_NAME = "production"
    DEFAULT_SECRET_KEY: str | None = None
    DEFAULT_EVENTS_SECRET: str | None = None
    DEFAULT_COOKIE_SECURE = True
    TESTING = False
    # Statement parameters (customer notes, e-mails) never reach error logs in production.
    # No pool_pre_ping (a round trip on every checkout): portal.db pings idle connections only.
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_size": 10,
        "max_overflow": 10,
        "hide_parameters": True,
    }
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "portal_session"
    WTF_CSRF_TIME_LIMIT = None  # the session timeouts bound the token's life
    WTF_CSRF_HEADERS = ["X-CSRFToken"]
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    RATELIMIT_HEADERS_ENABLED = False
    RATELIMIT_KEY_PREFIX = "portal-limiter"
    BABEL_DEFAULT_LOCALE = "es_PA"
    BABEL_DEFAULT_TIMEZONE = "America/Panama"

    def __init__(self, **overrides):
        env = os.environ.get
        self.SECRET_KEY = env("SECRET_KEY", self.DEFAULT_SECRET_KEY)
        self.EVENTS_SECRET = env("EVENTS_SECRET", self.DEFAULT_EVENTS_SECRET)
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL")
        self.DATABASE_OWNER_URL = env("DATABASE_OWNER_URL")
        self.REDIS_URL = env("REDIS_URL")
        self.SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", self.DEFAULT_COOKIE_SECURE)
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.SESSION_IDLE_TIMEOUT = timedelta(minutes=int(env("SESSION_IDLE_MINUTES", "30")))
        self.SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=int(env("SESSION_ABSOLUTE_HOURS", "12")))
        self.PERMANENT_SESSION_LIFETIME = self.SESSION_ABSOLUTE_TIMEOUT
        self.LOGIN_MAX_FAILURES = int(env("LOGIN_MAX_FAILURES", "5"))
        self.LOGIN_LOCK_MINUTES = int(env("LOGIN_LOCK_MINUTES", "15"))
        self.LOGIN_RATE_LIMIT_PER_ADDRESS = env("LOGIN_RATE_LIMIT_PER_ADDRESS", "30 per 15 minutes")
        self.CUSTOMER_EXPORT_MAX_ROWS = int(env("CUSTOMER_EXPORT_MAX_ROWS", "100000"))
        self.CUSTOMER_EXPORT_RATE_LIMIT = env("CUSTOMER_EXPORT_RATE_LIMIT", "5 per hour")
        self.API_RATE_LIMIT = env("API_RATE_LIMIT", "1200 per minute")
        self.WEBHOOK_TIMEOUT_SECONDS = int(env("WEBHOOK_TIMEOUT_SECONDS", "10"))
        # A claimed delivery is retried after this if its worker died mid-request.
        self.WEBHOOK_LEASE_SECONDS = int(env("WEBHOOK_LEASE_SECONDS", "60"))
        # Development and tests deliver to local receivers; production only to public https.
        self.WEBHOOK_ALLOW_PRIVATE = _env_bool(
            "WEBHOOK_ALLOW_PRIVATE", self.ENV_NAME != "production"
        )
        self.RQ_QUEUE = env("RQ_QUEUE", "portal")
        # Outgoing e-mail (dunning reminders): smtp://[user:password@]host:port or smtps://.
        self.SMTP_URL = env("SMTP_URL")
        self.SMTP_TIMEOUT_SECONDS = int(env("SMTP_TIMEOUT_SECONDS", "30"))
        self.MAIL_FROM = env("MAIL_FROM", "Cobranza <cobranza@portal.localhost>")
        # A claim older than this belongs to a dead worker (portal.mail.services).
        self.EMAIL_LEASE_SECONDS = int(env("EMAIL_LEASE_SECONDS", "300"))
        # Development only: the Maildir the local SMTP sink of `make run` writes (/dev/mail).
        self.DEV_MAIL_DIR = env("DEV_MAIL_DIR")
        self.OVERDUE_SUSPEND_DAYS = int(env("OVERDUE_SUSPEND_DAYS", "30"))
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")
        if _env_bool("DATABASE_TRANSACTION_POOLER", False):
            # pgbouncer in transaction mode (1.18, Debian 12) cannot keep a server-side prepared
            # statement between transactions; psycopg then sends every statement unprepared.
            self.SQLALCHEMY_ENGINE_OPTIONS = self.SQLALCHEMY_ENGINE_OPTIONS | {
                "connect_args": {"prepare_threshold": None}
            }
        for key, value in overrides.items():
            setattr(self, key, value)

    @property
    def APP_DB_ROLE(self) -> str:
        return database_role(self.SQLALCHEMY_DATABASE_URI or "")

    def missing(self) -> list[str]:
        """Names of required settings that are unset."""
        required = ["SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "REDIS_URL"]
        return [name for name in required if not getattr(self, name)]

    def refusals(self) -> list[str]:
        """Why these settings must not serve production (placeholder or short secrets, cookies)."""
        if self.ENV_NAME != "production":
            return []
        problems = [
            f"{name} is a published placeholder or shorter than {MIN_SECRET_BYTES} bytes"
            for name in ("SECRET_KEY", "EVENTS_SECRET")  # EVENTS_SECRET is optional
            if getattr(self, name) and _weak_secret(getattr(self, name))
        ]
        if not self.SESSION_COOKIE_SECURE:
            problems.append("SESSION_COOKIE_SECURE must stay on in production")
        return problems


class DevelopmentConfig(Config):
    """Local development (`make run`): dev secrets allowed, cookies not Secure over plain http."""

    ENV_NAME = "development"
    DEFAULT_SECRET_KEY = DEV_SECRET_KEY
    DEFAULT_EVENTS_SECRET = DEV_EVENTS_SECRET
    DEFAULT_COOKIE_SECURE = False
    SQLALCHEMY_ENGINE_OPTIONS = Config.SQLALCHEMY_ENGINE_OPTIONS | {"hide_parameters": False}


class TestingConfig(DevelopmentConfig):
    """The test suite: development settings, fixed secrets, room for concurrency tests."""

    ENV_NAME = "testing"
    TESTING = True
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 5, "max_overflow": 60}

    def __init__(self, **overrides):
        super().__init__(**overrides)
        self.SECRET_KEY = overrides.get("SECRET_KEY", "test-secret-key")
        self.EVENTS_SECRET = overrides.get("EVENTS_SECRET", "test-events-secret")


CONFIGS = {"production": Config, "development": DevelopmentConfig, "testing": TestingConfig}


def load_config(name: str | None = None) -> Config:
    """Settings for PORTAL_ENV (production unless told otherwise)."""
    name = name or os.environ.get("PORTAL_ENV", "production")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise RuntimeError(f"Unknown PORTAL_ENV {name!r}; use one of {sorted(CONFIGS)}") from None
