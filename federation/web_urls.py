"""The admins' peers page (included by ``web.urls`` under ``manage/peers/``)."""

from django.urls import path

from . import web_views

urlpatterns = [path("", web_views.peer_list, name="manage-peers")]
