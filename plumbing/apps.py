from django.apps import AppConfig


class PlumbingConfig(AppConfig):
    """HTTP plumbing shared by the doors (problems, pagination, parsers, ETag, idempotency, throttling, CSV).

    An app only so that Celery finds its task (the purge of expired Idempotency-Key claims); no models.
    """

    name = "plumbing"
    verbose_name = "HTTP plumbing"
