from django.urls import path

from config.urls import urlpatterns as real

from .plain import PlainReferralDetail, PlainReferralList

urlpatterns = [
    path("bench/plain/referrals/", PlainReferralList.as_view()),
    path("bench/plain/referrals/<uuid:pk>/", PlainReferralDetail.as_view()),
    *real,
]
