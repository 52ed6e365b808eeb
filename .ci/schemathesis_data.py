"""Prints `export ST_…=id,id,…` lines: the seeded objects a partner institution may reach, for the
schemathesis hooks (.ci/schemathesis_hooks.py). Run after `seed_demo`:
`eval "$(.venv/bin/python .ci/schemathesis_data.py IOM sender)"` (the referrals IOM sent) or
`… DP receiver` (the referrals sent to DP).

Adds what the demo data has not: one webhook subscription of the institution (created directly: its URL
is never called in this run) and its deliveries for the demo's notifications, so that the webhook and
delivery operations have something to find.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from accounts.models import Institution  # noqa: E402
from notifications.models import Delivery, OutboxMessage, WebhookEndpoint  # noqa: E402
from notifications.relay import fan_out  # noqa: E402
from notifications.services import new_secret  # noqa: E402
from referrals.models import Case, Referral  # noqa: E402

code, side = sys.argv[1], sys.argv[2]
institution = Institution.objects.get(code=code)
endpoint = WebhookEndpoint.objects.create(
    institution=institution,
    url="https://hooks.example.org/referrals",
    events=["referral.requested", "referral.status_changed", "referral.note_added"],
    secret=new_secret(),
)
for outbox in OutboxMessage.objects.filter(referral__isnull=False)[:40]:
    fan_out(outbox)

if side == "receiver":
    referrals = Referral.objects.filter(to_institution=institution, sent_at__isnull=False)
else:
    referrals = Referral.objects.filter(from_institution=institution)
cases = Case.objects.filter(institution=institution, erased_at__isnull=True)
pools = {
    "ST_REFERRAL_IDS": referrals.order_by("created_at").values_list("pk", flat=True),
    "ST_CASE_IDS": cases.values_list("pk", flat=True),
    "ST_WEBHOOK_IDS": WebhookEndpoint.objects.filter(institution=institution).values_list("pk", flat=True),
    "ST_DELIVERY_IDS": Delivery.objects.filter(webhook=endpoint).values_list("pk", flat=True),
}
for variable, ids in pools.items():
    values = [str(value) for value in ids[:50]]
    if not values and variable in ("ST_REFERRAL_IDS", "ST_DELIVERY_IDS"):
        sys.exit(f"schemathesis_data: no {variable} for {code} ({side}) in the seeded data")
    print(f"export {variable}={','.join(values)}")  # an empty pool: the generated values only
