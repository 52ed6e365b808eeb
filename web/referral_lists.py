"""The referral lists of the web UI (contract §6.5): the filter form and the page sizes.

The lists themselves (filters, order, the team queue) are ``referrals.worklists``'s, scoped to the actor;
the rows' personal data (the person's name, nationality, age) is added by
``referrals.reads.referral_rows_read``, which records the list read.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import directory
from accounts.actor import Actor
from referrals import policy, worklists
from referrals.choices import Status, Urgency

PAGE_SIZE = 25
#: The start page shows this many of each list, then "see all".
START_LIST_SIZE = 10


class ReferralFilterForm(forms.Form):
    """``/referrals/`` filters: codes and references only, safe in a URL (no personal data)."""

    direction = forms.ChoiceField(
        label=_("Direction"),
        required=False,
        choices=[("", _("Sent and received")), ("inbound", _("Received")), ("outbound", _("Sent"))],
    )
    status = forms.CharField(label=_("Status"), required=False, max_length=300)
    q = forms.CharField(
        label=_("Reference"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "DP-R-2026-000123", "autocomplete": "off"}),
    )
    assignee = forms.ChoiceField(
        label=_("Assigned to"),
        required=False,
        # Each choice continues its label, "Assigned to: me" ("Asignada a: mí", not "Mí").
        choices=[
            ("", pgettext_lazy("assigned to", "anyone")),
            ("me", pgettext_lazy("assigned to", "me")),
            ("none", pgettext_lazy("assigned to", "nobody (team queue)")),
        ],
    )
    urgency = forms.ChoiceField(
        label=_("Urgency"), required=False, choices=[("", _("Any")), *Urgency.choices]
    )
    overdue = forms.BooleanField(label=_("Only overdue"), required=False)
    office = forms.CharField(label=_("Office"), required=False, max_length=16)

    def __init__(self, *args, institution=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.institution = institution

    def clean_office(self):
        """An office CODE of the reader's institution (its received referrals), ``none`` (its national
        intake), or empty; the value for ``worklists.filtered``."""
        code = (self.cleaned_data["office"] or "").strip()
        if not code:
            return None
        if code == worklists.NATIONAL_INTAKE:
            return code
        office = directory.office_of(self.institution.pk, code) if self.institution is not None else None
        if office is None:
            raise forms.ValidationError(_("Unknown office of your institution."))
        return office

    def clean_status(self):
        codes = [c.strip() for c in (self.cleaned_data["status"] or "").split(",") if c.strip()]
        unknown = [c for c in codes if c not in Status.values]
        if unknown:
            raise forms.ValidationError(_("Unknown status code."))
        return list(dict.fromkeys(codes))

    def clean_q(self):
        return (self.cleaned_data["q"] or "").strip()


def assignable_caseworkers(actor: Actor, referral=None) -> list:
    """A supervisor's choices: whom the policy lets be assigned (active caseworkers of the institution;
    of the referral's office or national, when ``referral`` is given)."""
    return list(policy.assignable_users(actor, referral))
