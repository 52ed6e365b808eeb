"""Settings entry point: ``DJANGO_ENV`` picks the thin override on top of ``base``."""

import os

if os.environ.get("DJANGO_ENV", "development") == "production":
    from .production import *  # noqa: F403
else:
    from .base import *  # noqa: F403
