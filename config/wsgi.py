"""The serving entrypoint: gunicorn (``config.wsgi:application``) and ``manage.py runserver`` (through
``WSGI_APPLICATION``) load it; no other command does."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from audit.sequencer import start_embedded_sequencer  # noqa: E402 — after Django is set up
from notifications.apps import start_embedded_relay  # noqa: E402 — after Django is set up
from plumbing.wsgi import ChunkedBodyLimit  # noqa: E402

# Chunked request bodies reach Django with their length; at most 1 MiB + 1 byte is read (plumbing/wsgi.py).
application = ChunkedBodyLimit(django_application)

# The serving process (and only it) relays notifications itself when there is no broker.
start_embedded_relay()
# Every serving process runs an audit sequencer thread: it seals queued audit events into the chain
# every 200 ms (on PostgreSQL one process at a time seals; the others skip their turn).
start_embedded_sequencer()
