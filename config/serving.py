"""What every serving process starts beside the application (``config/wsgi.py``, ``config/asgi.py``):
the entrypoints gunicorn, uvicorn and ``manage.py runserver`` load — no other command does."""

from audit.sequencer import start_embedded_sequencer
from notifications.apps import start_embedded_relay


def start_background_threads() -> None:
    """Called once Django is set up. Without a broker the serving process relays notifications (and
    federation messages) itself; every serving process runs an audit sequencer thread that seals queued
    audit events into the chain every 200 ms (on PostgreSQL one process at a time seals; the others skip
    their turn)."""
    start_embedded_relay()
    start_embedded_sequencer()
