from django.urls import path

from . import views

urlpatterns = [
    path("institutions/", views.InstitutionList.as_view(), name="institution-list"),
    path("offices/", views.OfficeList.as_view(), name="office-list"),
    path("directory/hsds/", views.DirectoryHsds.as_view(), name="directory-hsds"),
    path("cases/", views.CaseListCreate.as_view(), name="case-list"),
    path("cases/<uuid:pk>/", views.CaseDetail.as_view(), name="case-detail"),
    path("referrals/", views.ReferralListCreate.as_view(), name="referral-list"),
    path("referrals/<uuid:pk>/", views.ReferralDetail.as_view(), name="referral-detail"),
    path("referrals/<uuid:pk>/events/", views.ReferralEvents.as_view(), name="referral-events"),
    path("referrals/<uuid:pk>/notes/", views.ReferralNotes.as_view(), name="referral-notes"),
    path(
        "referrals/<uuid:pk>/consent/withdraw/",
        views.ConsentWithdraw.as_view(),
        name="referral-consent-withdraw",
    ),
    path("referrals/<uuid:pk>/route/", views.ReferralRoute.as_view(), name="referral-route"),
] + [
    path(f"referrals/<uuid:pk>/{action}/", view.as_view(), name=f"referral-{action}")
    for action, view in views.ACTION_VIEWS.items()
]
