"""The auditors' API under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit/events/", views.AuditEventList.as_view(), name="audit-event-list"),
    path("audit/events/export/", views.AuditEventExport.as_view(), name="audit-event-export"),
    path("audit/checkpoints/", views.AuditCheckpointList.as_view(), name="audit-checkpoint-list"),
    path("audit/checkpoints/key/", views.AuditCheckpointKey.as_view(), name="audit-checkpoint-key"),
    path("audit/checkpoints/latest/", views.AuditCheckpointLatest.as_view(), name="audit-checkpoint-latest"),
    path(
        "audit/checkpoints/<int:tree_size>/cosignatures/",
        views.AuditCosignatureCreate.as_view(),
        name="audit-checkpoint-cosignatures",
    ),
    path("audit/proofs/inclusion/", views.AuditInclusionProof.as_view(), name="audit-proof-inclusion"),
    path("audit/proofs/consistency/", views.AuditConsistencyProof.as_view(), name="audit-proof-consistency"),
]
