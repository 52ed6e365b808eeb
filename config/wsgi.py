import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from notifications.apps import start_embedded_relay  # noqa: E402 — after Django is set up

# The serving process (and only it) relays notifications itself when there is no broker.
start_embedded_relay()
