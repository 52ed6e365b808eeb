"""URL patterns under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.NotificationList.as_view()),
    path("notifications/read-all/", views.NotificationReadAll.as_view()),
    path("notifications/preferences/", views.Preferences.as_view()),
    path("notifications/<str:pk>/read/", views.NotificationRead.as_view()),
    path("webhooks/", views.WebhookList.as_view()),
    path("webhooks/<str:pk>/", views.WebhookDetail.as_view()),
    path("webhooks/<str:pk>/deliveries/", views.WebhookDeliveries.as_view()),
    path("webhooks/<str:pk>/deliveries/<str:delivery_id>/replay/", views.WebhookReplay.as_view()),
]
