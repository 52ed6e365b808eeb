"""Base settings: everything is read from the environment here (contract §2); overrides stay thin."""

from __future__ import annotations

from datetime import timedelta

from config.env import (
    BASE_DIR,
    VAR_DIR,
    decode_key,
    dev_secrets,
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_node_url,
    env_rate,
    env_str,
)

DJANGO_ENV = env_str("DJANGO_ENV", "development")
IS_PRODUCTION = DJANGO_ENV == "production"

# Development keys come from var/ (generated once); production must set every one of them.
_DEV = {} if IS_PRODUCTION else dev_secrets()

SECRET_KEY = env_str("SECRET_KEY", _DEV.get("SECRET_KEY", ""))
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

FIELD_ENCRYPTION_KEYS = [
    decode_key(k, "FIELD_ENCRYPTION_KEYS")
    for k in env_list("FIELD_ENCRYPTION_KEYS", [_DEV["FIELD_ENCRYPTION_KEYS"]] if _DEV else [])
]
_blind = env_str("BLIND_INDEX_KEY", _DEV.get("BLIND_INDEX_KEY"))
BLIND_INDEX_KEY = decode_key(_blind, "BLIND_INDEX_KEY") if _blind else b""
_audit = env_str("AUDIT_HMAC_KEY", _DEV.get("AUDIT_HMAC_KEY"))
AUDIT_HMAC_KEY = decode_key(_audit, "AUDIT_HMAC_KEY") if _audit else b""
# Ed25519 private key (its 32-byte seed) that signs the audit checkpoints (contract §6.3).
_signing = env_str("AUDIT_SIGNING_KEY", _DEV.get("AUDIT_SIGNING_KEY"))
AUDIT_SIGNING_KEY = decode_key(_signing, "AUDIT_SIGNING_KEY") if _signing else b""
#: True when the signing key is the generated development one (``check --deploy`` refuses it).
AUDIT_SIGNING_KEY_IS_DEVELOPMENT = env_str("AUDIT_SIGNING_KEY") is None

# Federation (contract §7.4, federation/): on when NODE_URL is set. The node's Ed25519 signing key and X25519
# encryption key (32 bytes each); generated into var/ in development, required in production with NODE_URL.
NODE_URL = env_node_url("NODE_URL")
_node_signing = env_str("NODE_SIGNING_KEY", _DEV.get("NODE_SIGNING_KEY"))
NODE_SIGNING_KEY = decode_key(_node_signing, "NODE_SIGNING_KEY") if _node_signing else b""
_node_encryption = env_str("NODE_ENCRYPTION_KEY", _DEV.get("NODE_ENCRYPTION_KEY"))
NODE_ENCRYPTION_KEY = decode_key(_node_encryption, "NODE_ENCRYPTION_KEY") if _node_encryption else b""
#: True when a node key is a generated development one (``check --deploy`` refuses it with NODE_URL set).
NODE_KEYS_ARE_DEVELOPMENT = env_str("NODE_SIGNING_KEY") is None or env_str("NODE_ENCRYPTION_KEY") is None
FEDERATION_ALLOW_PRIVATE_URLS = env_bool("FEDERATION_ALLOW_PRIVATE_URLS", not IS_PRODUCTION)
FEDERATION_TIMEOUT_SECONDS = env_float("FEDERATION_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# The outbox's retries (federation/delivery.py): base·2^(n−1) seconds, capped, × random 0.5–1, never given up.
# The cap keeps a returning peer served within 60 s (a verified message from it resets the wait).
FEDERATION_RETRY_BASE_SECONDS = env_float("FEDERATION_RETRY_BASE_SECONDS", 2.0, minimum=0)
FEDERATION_RETRY_MAX_SECONDS = env_float("FEDERATION_RETRY_MAX_SECONDS", 30.0, minimum=0)
# Messages of different referrals posted to one peer at once (a peer catching up after it was down); a
# referral's own messages always go one after the other.
FEDERATION_DELIVERY_CONCURRENCY = env_int("FEDERATION_DELIVERY_CONCURRENCY", 4, minimum=1)
# Rate limits of the federation door (federation/throttling.py), "count/period" (s, min, h), counted in the
# cache (Redis with REDIS_URL): per pinned peer, its verified messages (high: a peer catching up posts 50+ a
# second); per client IP, the requests refused before a node was recognised (unsigned, unknown node…).
FEDERATION_THROTTLE_NODE = env_rate("FEDERATION_THROTTLE_NODE", "30000/min")
FEDERATION_THROTTLE_UNVERIFIED = env_rate("FEDERATION_THROTTLE_UNVERIFIED", "60/min")
# Messages posted to one peer in one request (``/federation/v1/batch/``, each still signed, answered and kept
# on its own) when several are waiting: a peer catching up. 1: one message per request.
FEDERATION_BATCH_SIZE = env_int("FEDERATION_BATCH_SIZE", 20, minimum=1)

WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", not IS_PRODUCTION)
REDIS_URL = env_str("REDIS_URL")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
#: The audit log's origin in its C2SP checkpoints (contract §7.3); empty: SITE_URL's host[:port] + "/audit".
AUDIT_LOG_ORIGIN = env_str("AUDIT_LOG_ORIGIN", "")

INSTALLED_APPS = [
    "accounts.admin_app.OperatorsAdminConfig",  # django.contrib.admin with the operators' OTP site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc as static files: the API docs work offline
    "guardian",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "plumbing",
    "accounts",
    "audit",
    "referrals",
    "matching",
    "notifications",
    "reporting",
    "federation",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "plumbing.middleware.RequestIdMiddleware",
    "plumbing.middleware.ApiUtcMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Web UI: anonymous → sign-in, second factor before anything else, the user's own language.
    "web.middleware.WebAccessMiddleware",
    # Bodies over 1 MiB: 413 before anything reads them (problem+json under /api/, a page in the web).
    "plumbing.middleware.BodySizeLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "plumbing.middleware.ApiProblemMiddleware",
    "audit.deferred.DeferredAuditMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context_processors.navigation",
            ],
        },
    }
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front: no lock-upgrade deadlocks between writers.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # A 64 MiB page cache per connection: the statistics report joins a year of referrals (4.1 → 2.6 s).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_PREPARED_STATEMENTS", True
):
    # psycopg prepares a statement once it ran 5 times on a connection. Django's own cursors bind on the
    # client and are never prepared: this concerns only what is bound on the server — the audit queue's
    # INSERT of every audited request (audit.sequencer.enqueue). Off behind a pooler in transaction mode that
    # does not keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
#: The second step of sign-in (TOTP) and the first-time enrolment of a device.
OTP_VERIFY_URL = "/accounts/otp/"
OTP_SETUP_URL = "/accounts/otp/setup/"
OTP_TOTP_ISSUER = "Referral case manager"

# Sessions: short idle timeout, renewed on activity.
SESSION_COOKIE_AGE = int(env_str("SESSION_IDLE_SECONDS", "1800"))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Browsers share cookies across the ports of one host: two nodes on one machine (./scripts/run --federation)
# each name their own. Empty by default: the usual names.
_COOKIE_PREFIX = env_str("COOKIE_PREFIX", "")
SESSION_COOKIE_NAME = f"{_COOKIE_PREFIX}sessionid"
CSRF_COOKIE_NAME = f"{_COOKIE_PREFIX}csrftoken"
LANGUAGE_COOKIE_NAME = f"{_COOKIE_PREFIX}django_language"

LANGUAGE_CODE = "es"
# Each language is named in itself (a Spanish reader looking for "English" finds it).
LANGUAGES = [("es", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Panama"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Embedded and development runs serve static files straight from the source folders (no collectstatic).
WHITENOISE_USE_FINDERS = not IS_PRODUCTION

# Guardian: direct foreign-key permission models; no anonymous user row.
GUARDIAN_ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# Axes: lockout after repeated failures.
AXES_FAILURE_LIMIT = int(env_str("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_LOCKOUT_TEMPLATE = "web/auth/locked_out.html"

# Content security policy (django-csp 4): only our own resources.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsActor"],
    "DEFAULT_PARSER_CLASSES": ["plumbing.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "plumbing.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "plumbing.problems.exception_handler",
    # Escape non-ASCII in JSON output: a lone surrogate in input can never break rendering.
    "UNICODE_JSON": False,
    "UNAUTHENTICATED_USER": None,
    # No OPTIONS metadata (it would describe serializers to anyone): OPTIONS is a 405 problem.
    "DEFAULT_METADATA_CLASS": None,
    # Per API client and per user (never by anything personal), counted in the cache below.
    "DEFAULT_THROTTLE_CLASSES": [
        "plumbing.throttling.ApiClientRateThrottle",
        "plumbing.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_client": env_str("THROTTLE_API_CLIENT", "1200/min"),
        "user": env_str("THROTTLE_USER", "600/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Referral case manager — partner API",
    "DESCRIPTION": "Partner API v1 of the IOM ↔ Defensoría del Pueblo referral mechanism.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's scripts and styles come from this system (drf_spectacular_sidecar), never a CDN;
    # no validator badge either (Swagger UI would fetch it from validator.swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_PERMISSIONS": ["accounts.permissions.IsActor"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "referrals.api.schema.problem_responses",
    ],
}

# The cache (throttle counters) shares Redis with Celery's broker but not its keys: its own prefix.
CACHES = (
    {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "rcm-cache",
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    if REDIS_URL
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": "rcm-cache"}}
)

# Celery: with REDIS_URL a real worker and beat; without, the web process relays the outbox itself.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 1}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env_str("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "referrals@localhost")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")

# Notifications: retries (exponential backoff with jitter, then dead), webhooks, the embedded relay's pace.
NOTIFICATIONS_RETRY_BASE_SECONDS = env_float("NOTIFICATIONS_RETRY_BASE_SECONDS", 30.0, minimum=0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env_float("NOTIFICATIONS_RETRY_MAX_SECONDS", 3600.0, minimum=0)
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 15, minimum=1)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
NOTIFICATIONS_RELAY_INTERVAL = env_float("NOTIFICATIONS_RELAY_INTERVAL", 3.0, minimum=0.1)
# The embedded relay (contract §2, §7.1): without REDIS_URL every serving process delivers notifications
# itself — started by the serving entrypoint (config/wsgi.py, config/asgi.py: gunicorn, `manage.py runserver`,
# scripts/run), never by other management commands, workers or tests. On by default without REDIS_URL;
# NOTIFICATIONS_RELAY_THREAD=false switches it off.
NOTIFICATIONS_RELAY_THREAD = env_bool("NOTIFICATIONS_RELAY_THREAD", not REDIS_URL)

# The audit sequencer (audit/sequencer.py, docs/audit.md): requests only queue their audit events; a thread of
# every serving process seals the queue into the hash chain every AUDIT_SEQUENCER_INTERVAL seconds (one at a
# time). AUDIT_SEAL_INLINE (the test settings) seals inside the recording transaction instead.
AUDIT_SEQUENCER_INTERVAL = env_float("AUDIT_SEQUENCER_INTERVAL", 0.2, minimum=0.01)
AUDIT_SEQUENCER_THREAD = env_bool("AUDIT_SEQUENCER_THREAD", True)
AUDIT_SEAL_INLINE = False

# Statistics (contract §6.4): counts from 1 to STATISTICS_MIN_CELL - 1 are suppressed.
STATISTICS_MIN_CELL = env_int("STATISTICS_MIN_CELL", 5, minimum=2)

RETENTION_DAYS = int(env_str("RETENTION_DAYS", str(365 * 5)))
# Federation's retention (federation/retention.py, daily job ``federation-purge``): a delivered outbox row
# (ids, counters; its body went at delivery) is deleted this many days after its delivery, and the evidence of
# a message (federation.models.Message) this many days after it crossed (the audit retention period).
FEDERATION_OUTBOX_DELIVERED_DAYS = env_int("FEDERATION_OUTBOX_DELIVERED_DAYS", 30, minimum=1)
FEDERATION_EVIDENCE_RETENTION_DAYS = env_int(
    "FEDERATION_EVIDENCE_RETENTION_DAYS", max(1, RETENTION_DAYS), minimum=1
)
# Request bodies: 1 MiB at most, web forms (Django's own limit) and API (contract §3) alike; both answer 413
# (plumbing.middleware.BodySizeLimitMiddleware), chunked bodies included (config/wsgi.py: plumbing.wsgi).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
API_MAX_BODY_BYTES = 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
