from django.apps import AppConfig


class FlushSupportConfig(AppConfig):
    name = "tests.flush_support"
    label = "flush_support"
    verbose_name = "Test support: flush on SQLite"
