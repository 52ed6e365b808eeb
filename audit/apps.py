from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit"

    def ready(self):
        from celery.signals import task_postrun, task_prerun

        from . import checks, deferred, signals  # noqa: F401 — signals: the sign-in receivers

        checks.register()
        # A task is a unit of work like a request: a refusal noticed in its rolled-back transaction is
        # recorded when it ends (audit.deferred).
        task_prerun.connect(deferred.task_began, weak=False, dispatch_uid="audit-deferred-task-began")
        task_postrun.connect(deferred.task_ended, weak=False, dispatch_uid="audit-deferred-task-ended")
