"""Demo and development only: print a user's current two-factor code (so a demo needs no phone).

Refuses in production. A user in the middle of enrolment gets the code of the device on the enrolment
page (which that code then confirms); a user without any device gets a confirmed one named "demo".
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User


class Command(BaseCommand):
    help = "Demo only: print the current TOTP code of a user (refused when DJANGO_ENV=production)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        if getattr(settings, "IS_PRODUCTION", False):
            raise CommandError("demo_otp_code is a demo tool and is refused in production.")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError("No such user.")
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
        if device is None:
            # The enrolment page already shows a QR code for an unconfirmed device: its code confirms
            # that device at the first sign-in (one code, one page), as an authenticator app's would.
            device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"{code:0{device.digits}d}")
        # A code signs in once (django-otp accepts each 30-second step's code once): the sign-in page says
        # so too when the same code is typed again.
        self.stderr.write(
            f"Valid for one sign-in within its {device.step}-second window; for another sign-in, run this "
            "again once the window has passed."
        )
