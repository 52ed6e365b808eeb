"""The serving entrypoint: gunicorn (``config.wsgi:application``) and ``manage.py runserver`` (through
``WSGI_APPLICATION``) load it; no other command does."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.serving import start_background_threads  # noqa: E402 — after Django is set up
from plumbing.wsgi import ChunkedBodyLimit  # noqa: E402

# Chunked request bodies reach Django with their length; at most 1 MiB + 1 byte is read (plumbing/wsgi.py).
application = ChunkedBodyLimit(django_application)
start_background_threads()
