"""The one TOTP helper of the test suites: what the person's authenticator app would show."""

from __future__ import annotations

import time

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def confirmed_device(user) -> TOTPDevice:
    """The user's confirmed TOTP device (created on first use)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)


def otp_code(device: TOTPDevice, offset: int = 0, *, fresh: bool = False) -> str:
    """The code the app shows now (``offset`` steps later or earlier). ``fresh``: django-otp refuses a
    code of a time step already used, so wait for the next step when needed (browser sign-ins)."""
    device.refresh_from_db()
    while fresh:
        step_now = int((time.time() - device.t0) // device.step)
        if device.last_t is None or step_now > device.last_t:
            break
        time.sleep(0.5)
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset)
    return f"{code:0{device.digits}d}"


def totp_code(user, *, confirmed: bool = True) -> str:
    """The current, not yet used code of the user's (confirmed, or enrolling) device."""
    return otp_code(TOTPDevice.objects.get(user=user, confirmed=confirmed), fresh=True)
