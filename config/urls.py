from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config.health import healthz

api_v1 = [
    path("", include("matching.api_urls")),
    path("", include("referrals.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("reporting.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularRedocView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("web.urls")),
]
