"""API calls made with a web session: roles that require two-factor count only after the OTP step."""

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def test_supervisor_session_without_otp_is_refused(iom_supervisor):
    client = Client()
    client.force_login(iom_supervisor)
    response = client.get("/api/v1/referrals/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_supervisor_session_after_otp_is_accepted(iom_supervisor):
    device = TOTPDevice.objects.create(user=iom_supervisor, name="phone", confirmed=True)
    client = Client()
    client.force_login(iom_supervisor)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    response = client.get("/api/v1/referrals/")
    assert response.status_code == 200


def test_caseworker_session_needs_no_otp(iom_caseworker):
    client = Client()
    client.force_login(iom_caseworker)
    assert client.get("/api/v1/referrals/").status_code == 200


def test_caseworker_session_needs_otp_when_institution_requires_it(iom, iom_caseworker):
    iom.require_2fa_for_caseworkers = True
    iom.save(update_fields=["require_2fa_for_caseworkers"])
    client = Client()
    client.force_login(iom_caseworker)
    assert client.get("/api/v1/referrals/").status_code == 403
