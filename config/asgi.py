import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from audit.sequencer import start_embedded_sequencer  # noqa: E402 — after Django is set up
from notifications.apps import start_embedded_relay  # noqa: E402 — after Django is set up

# The serving process (and only it) relays notifications itself when there is no broker.
start_embedded_relay()
# Every serving process runs an audit sequencer thread: it seals queued audit events into the chain
# every 200 ms (on PostgreSQL one process at a time seals; the others skip their turn).
start_embedded_sequencer()
