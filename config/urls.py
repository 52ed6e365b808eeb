from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from config import api_reference  # noqa: F401 (registers the reference's schema extensions)
from config.health import healthz
from web.views.api_docs import api_docs

api_v1 = [
    path("", include("matching.api_urls")),
    path("", include("referrals.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("reporting.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from the system's own static files (drf-spectacular-sidecar), for signed-in staff.
    path("docs/", api_docs, name="api-docs"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    # Node-to-node messages (contract §7.4): signed by a pinned peer, or 401; 404 while federation is off.
    path("federation/v1/", include("federation.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("web.urls")),
]
