import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.choices import Role


@pytest.mark.django_db
def test_probe(iom, make_user):
    u = make_user(iom, Role.ADMIN, username="iom.admin")
    c = Client()
    r = c.post("/accounts/login/", {"username": "iom.admin", "password": "correct-horse-battery"})
    print(r.status_code, r["Location"])
    r = c.get(r["Location"])
    print(r.status_code)
    d = TOTPDevice.objects.get(user=u)
    code = f"{totp(d.bin_key, d.step, d.t0, d.digits):06d}"
    r = c.post("/accounts/otp/setup/?next=/", {"otp_token": code})
    print(r.status_code, r.get("Location"))
    for _ in range(4):
        if r.status_code != 302:
            break
        r = c.get(r["Location"])
        print(r.status_code, r.get("Location"), re.findall(r"<h1[^>]*>(.*?)</h1>", r.content.decode()))
