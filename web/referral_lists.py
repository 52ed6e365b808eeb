"""The referral lists and work queues of the web UI (contract §6.5): filters, order, the team queue.

Querysets only, scoped to the actor through ``referrals.selectors``; the rows' personal data (the person's
name, nationality, age) is added by ``referrals.reads.referral_rows_read``, which records the list read.
"""

from __future__ import annotations

from django import forms
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.actor import Actor
from accounts.models import User
from referrals import policy
from referrals.choices import TERMINAL_STATUSES, Status, Urgency
from referrals.lifecycle import ASSIGNABLE_STATUSES
from referrals.models import Referral
from referrals.selectors import referrals_visible_to

from .selectors import AWAITING_ANSWER

PAGE_SIZE = 25
#: The start page shows this many of each list, then "see all".
START_LIST_SIZE = 10

#: What a list row needs in one query (the person's data is decrypted from ``case__subject``).
ROW_RELATED = ("from_institution", "to_institution", "assignee", "case", "case__subject", "consent")


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
        choices=[("", _("Anyone")), ("me", _("Me")), ("none", _("Nobody (team queue)"))],
    )
    urgency = forms.ChoiceField(
        label=_("Urgency"), required=False, choices=[("", _("Any")), *Urgency.choices]
    )
    overdue = forms.BooleanField(label=_("Only overdue"), required=False)

    def clean_status(self):
        codes = [c.strip() for c in (self.cleaned_data["status"] or "").split(",") if c.strip()]
        unknown = [c for c in codes if c not in Status.values]
        if unknown:
            raise forms.ValidationError(_("Unknown status code."))
        return list(dict.fromkeys(codes))

    def clean_q(self):
        return (self.cleaned_data["q"] or "").strip()


def ordered(referrals: QuerySet[Referral]) -> QuerySet[Referral]:
    """Overdue first, then open before closed, the most urgent first, the nearest deadline first."""
    now = timezone.now()
    return referrals.annotate(
        overdue_rank=Case(
            When(status__in=AWAITING_ANSWER, response_due_at__lt=now, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        open_rank=Case(
            When(status__in=list(TERMINAL_STATUSES), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
        urgency_rank=Case(
            When(urgency=Urgency.EMERGENCY, then=Value(0)),
            When(urgency=Urgency.URGENT, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ),
    ).order_by(
        "overdue_rank",
        "open_rank",
        "urgency_rank",
        F("response_due_at").asc(nulls_last=True),
        "-updated_at",
        "pk",
    )


def filtered(actor: Actor, filters: dict) -> QuerySet[Referral]:
    """The referrals the actor's institution sent or received (as the actor may see them), filtered."""
    direction = filters.get("direction") or None
    referrals = referrals_visible_to(actor, direction=direction)
    if filters.get("status"):
        referrals = referrals.filter(status__in=filters["status"])
    if filters.get("q"):
        referrals = referrals.filter(reference__iexact=filters["q"])
    if filters.get("assignee") == "me":
        referrals = referrals.filter(assignee=actor.user)
    elif filters.get("assignee") == "none":
        referrals = referrals.filter(assignee__isnull=True)
    if filters.get("urgency"):
        referrals = referrals.filter(urgency=filters["urgency"])
    if filters.get("overdue"):
        referrals = referrals.filter(status__in=AWAITING_ANSWER, response_due_at__lt=timezone.now())
    return ordered(referrals).select_related(*ROW_RELATED)


def team_queue(actor: Actor) -> QuerySet[Referral]:
    """Inbound referrals nobody of the institution has taken yet (awaiting an answer or accepted, e.g.
    through the API), the overdue and most urgent first."""
    referrals = referrals_visible_to(actor, direction="inbound").filter(
        assignee__isnull=True, status__in=list(ASSIGNABLE_STATUSES)
    )
    return ordered(referrals).select_related(*ROW_RELATED)


def assignable_caseworkers(actor: Actor) -> list[User]:
    """A supervisor's choices: whom the policy lets be assigned (active caseworkers of the institution)."""
    return list(policy.assignable_users(actor))
