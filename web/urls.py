"""The web UI's URLs (included at the site root). Paths carry ids and codes only, never personal data."""

from django.urls import include, path

from .views import account, auth, case_links, directory, manage, queues, referrals, supervision

app_name = "web"

urlpatterns = [
    path("accounts/login/", auth.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth.logout_view, name="logout"),
    path("accounts/otp/", auth.otp_verify, name="otp-verify"),
    path("accounts/otp/setup/", auth.otp_setup, name="otp-setup"),
    path("favicon.ico", account.favicon, name="favicon"),
    path("", queues.home, name="home"),
    path("cases/", queues.case_list, name="case-list"),
    path("referrals/", queues.referral_list, name="referral-list"),
    path("cases/new/", referrals.case_create, name="case-create"),
    path("cases/search/", referrals.case_search, name="case-search"),
    path("cases/<uuid:case_id>/", referrals.case_detail, name="case-detail"),
    path("cases/<uuid:case_id>/links/", case_links.case_link, name="case-link"),
    path("cases/<uuid:case_id>/links/<uuid:link_id>/unlink/", case_links.case_unlink, name="case-unlink"),
    path("cases/<uuid:case_id>/refer/", referrals.referral_create, name="referral-create"),
    path("referrals/<uuid:referral_id>/", referrals.referral_detail, name="referral-detail"),
    path("referrals/<uuid:referral_id>/preview/", referrals.referral_preview, name="referral-preview"),
    path(
        "referrals/<uuid:referral_id>/actions/<slug:action>/",
        referrals.referral_action,
        name="referral-action",
    ),
    path("referrals/<uuid:referral_id>/notes/", referrals.note_add, name="referral-note"),
    path("referrals/<uuid:referral_id>/take/", queues.referral_take, name="referral-take"),
    path("referrals/<uuid:referral_id>/assign/", queues.referral_assign, name="referral-assign"),
    path("referrals/<uuid:referral_id>/route/", queues.referral_route, name="referral-route"),
    path("referrals/<uuid:referral_id>/print/", queues.referral_print, name="referral-print"),
    path(
        "referrals/<uuid:referral_id>/consent/withdraw/",
        referrals.consent_withdraw,
        name="referral-withdraw-consent",
    ),
    path("notifications/", account.notification_list, name="notifications"),
    path("notifications/read-all/", account.notification_read_all, name="notifications-read-all"),
    path("notifications/<uuid:notification_id>/open/", account.notification_open, name="notification-open"),
    path("preferences/", account.preferences, name="preferences"),
    path("preferences/language/", account.language_set, name="language-set"),
    path("supervision/workload/", supervision.workload, name="workload"),
    path("supervision/response-times/", supervision.response_times, name="response-times"),
    path("supervision/statistics/", include("reporting.urls")),
    path("audit/", supervision.audit_log, name="audit-log"),
    path("audit/export.csv", supervision.audit_export, name="audit-export"),
    path("manage/users/", manage.user_list, name="manage-users"),
    path("manage/users/new/", manage.user_create, name="manage-user-create"),
    path("manage/users/<uuid:user_id>/", manage.user_edit, name="manage-user-edit"),
    path("manage/users/<uuid:user_id>/active/", manage.user_set_active, name="manage-user-active"),
    path(
        "manage/users/<uuid:user_id>/reset-2fa/",
        manage.user_reset_second_factor,
        name="manage-user-reset-2fa",
    ),
    path("directory/", directory.office_directory, name="directory"),
    path("manage/offices/", manage.office_list, name="manage-offices"),
    path("manage/offices/new/", manage.office_create, name="manage-office-create"),
    path("manage/offices/<str:code>/", manage.office_edit, name="manage-office-edit"),
    path("manage/offices/<str:code>/pause/", manage.office_pause_view, name="manage-office-pause"),
    path("manage/offices/<str:code>/resume/", manage.office_resume_view, name="manage-office-resume"),
    path("manage/api-clients/", manage.api_client_list, name="manage-api-clients"),
    path("manage/api-clients/new/", manage.api_client_new, name="manage-api-client-create"),
    path(
        "manage/api-clients/<uuid:client_id>/revoke/",
        manage.api_client_revoke_view,
        name="manage-api-client-revoke",
    ),
    # The peers of this node (federation, contract §7.4): the federation door's own read-only page.
    path("manage/peers/", include("federation.web_urls")),
    path("manage/webhooks/", manage.webhook_list, name="manage-webhooks"),
    path("manage/webhooks/new/", manage.webhook_new, name="manage-webhook-create"),
    path("manage/webhooks/<uuid:webhook_id>/delete/", manage.webhook_delete, name="manage-webhook-delete"),
]
