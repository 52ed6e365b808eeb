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
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("web.urls")),
]
