"""The statistics page and its exports (included by ``web.urls`` under ``supervision/statistics/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.statistics_page, name="statistics"),
    path("export.csv", views.statistics_csv, name="statistics-csv"),
    path("export.xlsx", views.statistics_xlsx, name="statistics-xlsx"),
]
