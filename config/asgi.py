"""The ASGI serving entrypoint (``config.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from config.serving import start_background_threads  # noqa: E402 — after Django is set up

start_background_threads()
