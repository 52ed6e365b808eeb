"""``GET /healthz`` (contract §4): database and broker status, no auth, no personal data."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:  # noqa: BLE001 - any failure means "down"
        return False


def _broker_state() -> str:
    if not settings.REDIS_URL:
        return "none"
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        return "ok" if client.ping() else "down"
    except Exception:  # noqa: BLE001
        return "down"


@never_cache
@require_GET
def healthz(request):
    database = "ok" if _database_ok() else "down"
    broker = _broker_state()
    healthy = database == "ok" and broker in ("ok", "none")
    return JsonResponse(
        {"status": "ok" if healthy else "down", "database": database, "broker": broker},
        status=200 if healthy else 503,
    )
