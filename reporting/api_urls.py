"""The statistics' API routes (included under ``/api/v1/``)."""

from django.urls import path

from .api import ReferralStatistics

urlpatterns = [
    path("statistics/referrals/", ReferralStatistics.as_view(), name="statistics-referrals"),
]
