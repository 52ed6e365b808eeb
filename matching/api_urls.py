from django.urls import path

from .api import CaseMatch

urlpatterns = [
    path("cases/match/", CaseMatch.as_view(), name="case-match"),
]
