"""The auditors' API under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit/events/", views.AuditEventList.as_view(), name="audit-event-list"),
    path("audit/events/export/", views.AuditEventExport.as_view(), name="audit-event-export"),
]
