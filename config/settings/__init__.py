"""Settings entry point: ``DJANGO_ENV`` (``development`` or ``production``) picks the thin override on top of
``base``; any other value stops the start-up with the variable's name."""

from config.env import env_choice

if env_choice("DJANGO_ENV", "development", ("development", "production")) == "production":
    from .production import *  # noqa: F403
else:
    from .base import *  # noqa: F403
