"""Sign-in events from Django's auth signals (login, failed login, logout)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .recorder import record


def _ip(request):
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _rid(request):
    return getattr(request, "request_id", "") if request is not None else ""


def _user_fields(user):
    return {
        "actor_type": "user",
        "actor_id": str(user.pk),
        "actor_label": user.username,
        "actor_institution": user.institution.code if getattr(user, "institution_id", None) else "",
    }


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record(action="auth.login", ip=_ip(request), request_id=_rid(request), **_user_fields(user))


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(action="auth.logout", ip=_ip(request), request_id=_rid(request), **_user_fields(user))


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The attempted username is a staff identifier, not migrant data; the password is never recorded.
    username = str(credentials.get("username", ""))[:150]
    record(
        action="auth.login_failed",
        actor_type="anonymous",
        actor_label=username,
        outcome="denied",
        ip=_ip(request),
        request_id=_rid(request),
    )
