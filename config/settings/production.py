"""Production: refuse to start with development secrets or without keys; hardened transport."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_str

from .base import *  # noqa: F403
from .base import (
    AUDIT_HMAC_KEY,
    AUDIT_SIGNING_KEY,
    BLIND_INDEX_KEY,
    FIELD_ENCRYPTION_KEYS,
    NODE_ENCRYPTION_KEY,
    NODE_SIGNING_KEY,
    NODE_URL,
    SECRET_KEY,
)

_missing = [
    name
    for name, value in [
        ("SECRET_KEY", SECRET_KEY),
        ("FIELD_ENCRYPTION_KEYS", FIELD_ENCRYPTION_KEYS),
        ("BLIND_INDEX_KEY", BLIND_INDEX_KEY),
        ("AUDIT_HMAC_KEY", AUDIT_HMAC_KEY),
        ("AUDIT_SIGNING_KEY", AUDIT_SIGNING_KEY),
        ("ALLOWED_HOSTS", env_str("ALLOWED_HOSTS")),
        # A federated node (NODE_URL set, contract §7.4) needs its own keys; a single node does not.
        *(
            [("NODE_SIGNING_KEY", NODE_SIGNING_KEY), ("NODE_ENCRYPTION_KEY", NODE_ENCRYPTION_KEY)]
            if NODE_URL
            else []
        ),
    ]
    if not value
]
if _missing:
    raise ImproperlyConfigured("production needs these environment variables: " + ", ".join(_missing))
if SECRET_KEY.startswith(("dev-", "django-insecure")) or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY is a development or weak value: set a long random one")

DEBUG = False
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
