from django.urls import path

from config.urls import urlpatterns as real

from .plain import PlainReferralDetail, PlainReferralList

urlpatterns = [
    path("api/bench/plain/referrals/", PlainReferralList.as_view()),
    path("api/bench/plain/referrals/<uuid:pk>/", PlainReferralDetail.as_view()),
    *real,
]
