from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.door, name="federation-door"),
    re_path(r"^(?P<rest>.*)$", views.door, name="federation-door-path"),
]
