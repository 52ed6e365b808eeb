"""Caseworkers' pages: the start page, cases, the document search, referring, and the referral page."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from matching import matcher
from matching import services as matching_services
from matching.presentation import match_rows
from plumbing.problems import ProblemError
from referrals import policy, reads, services, worklists
from referrals.choices import DataCategory, Side, Status, time_left
from referrals.errors import Forbidden, NotVisible
from referrals.lifecycle import TRANSITIONS

from .. import selectors
from ..access import actor_required, caseworker_required, report_problem
from ..forms import ActionForm, CaseSearchForm, NoteForm, ReferralForm, SubjectForm, WithdrawConsentForm
from ..presentation import action_label, subject_rows
from . import queues


@never_cache
@caseworker_required
@require_http_methods(["GET", "POST"])
def case_create(request):
    """The subject form; possible matches of the person (keyed matching, score ≥ 0.5) are shown with
    their reasons and ask for a confirmation before a new case is created."""
    actor = request.actor
    form = SubjectForm(request.POST or None)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        duplicates = reads.possible_duplicates(actor, terms=data, by="duplicate_check")
        if not duplicates or data["confirm_not_duplicate"]:
            try:
                case = services.case_create(actor=actor, subject=form.subject(), summary=data["summary"])
            except ProblemError as exc:
                report_problem(request, exc)
            else:
                messages.success(request, _("Case %(reference)s created.") % {"reference": case.reference})
                return redirect("web:case-detail", case_id=case.pk)
    return render(request, "web/case_form.html", {"form": form, "duplicates": match_rows(duplicates)})


@never_cache
@actor_required()
def case_detail(request, case_id):
    """The case, the person's data, its referrals and who accessed it (an audited read)."""
    actor = request.actor
    try:
        view = reads.case_read(actor=actor, case_id=case_id)
    except NotVisible:
        raise Http404 from None
    case = view.case
    referrals = worklists.case_referrals(actor, case)
    duplicates = []
    if view.subject:
        duplicates = reads.possible_duplicates(
            actor, terms=view.subject, by="possible_duplicates", exclude=case.pk
        )
    links = matching_services.links_of(actor, case)
    linked_ids = {link.other(case.pk).pk for link in links}
    context = {
        "case": case,
        "subject_rows": subject_rows(view.subject) if view.subject else [],
        "summary": view.summary,
        "referrals": referrals,
        "access_log": selectors.case_access_log(actor, case),
        "can_refer": policy.may_refer_case(actor, case),
        "duplicates": [row for row in match_rows(duplicates) if row["case_id"] not in linked_ids],
        "links": [{"link": link, "other": link.other(case.pk)} for link in links],
        "can_link": policy.may_refer(actor),
        "can_unlink": policy.may_unlink_cases(actor),
    }
    return render(request, "web/case_detail.html", context)


@never_cache
@caseworker_required
@require_http_methods(["GET", "POST"])
def case_search(request):
    """Search by document number (exact), or by name and date of birth (possible matches, best first):
    a POST form, so the terms never land in a URL, a log or history."""
    actor = request.actor
    form = CaseSearchForm(request.POST or None)
    results = None
    matches = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if form.by_name:
            found = matcher.search(actor, by="name", terms={name: data.get(name) for name in matcher.TERMS})
            matches = match_rows(found)
            _name_rows(actor, matches)
        else:
            results = reads.cases_by_document_number(actor=actor, document_number=data["document_number"])
    return render(request, "web/case_search.html", {"form": form, "results": results, "matches": matches})


def _name_rows(actor, rows: list[dict]) -> None:
    """Add the person's names to each match the reader may see (the core records each as a read)."""
    names = reads.case_names_read(
        actor=actor, case_ids=[row["case_id"] for row in rows], detail={"page": "search"}
    )
    for row in rows:
        if row["case_id"] in names:
            row["name"] = names[row["case_id"]]


@never_cache
@caseworker_required
@require_http_methods(["GET", "POST"])
def referral_create(request, case_id):
    """Refer a case: creates a draft, then the preview shows exactly what the receiver will see."""
    actor = request.actor
    try:
        case = reads.fetch_case(actor, case_id)
    except NotVisible:
        raise Http404 from None
    if not policy.may_refer_case(actor, case):
        raise Http404  # an erased person is referred no more (the form would only be refused)
    sender_province = actor.user.office.province if actor.user.office_id else ""
    if request.method == "POST" and request.POST.get("show_offices"):
        # "Show the offices" (the page without JavaScript): the same form again, unchecked, with the offices
        # of the institution and services chosen so far.
        form = ReferralForm(
            initial=_form_values(request.POST), institution=actor.institution, sender_province=sender_province
        )
        return render(
            request,
            "web/referral_form.html",
            {"form": form, "case": case, "office_options": form.office_options()},
        )
    form = ReferralForm(request.POST or None, institution=actor.institution, sender_province=sender_province)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            referral = services.referral_create(
                actor=actor,
                case=case,
                to_institution=data["to_institution"],
                services=list(data["services"]),
                urgency=data["urgency"],
                reason=data["reason"],
                consent=form.consent(),
                to_office=data["to_office"],
                province=data["province"] or "",
            )
        except ProblemError as exc:
            report_problem(request, exc)
        else:
            return redirect("web:referral-preview", referral_id=referral.pk)
    context = {"form": form, "case": case, "office_options": form.office_options()}
    return render(request, "web/referral_form.html", context)


def _form_values(post) -> dict:
    """A posted referral form as the initial values of a fresh one (lists stay lists)."""
    values = {}
    for name in post:
        if name in ("csrfmiddlewaretoken", "show_offices"):
            continue
        values[name] = post.getlist(name) if name in ("services", "data_categories") else post.get(name)
    return values


def _fetch_referral_or_404(actor, referral_id):
    try:
        return reads.fetch_referral(actor, referral_id)
    except NotVisible:
        raise Http404 from None


@never_cache
@caseworker_required
def referral_preview(request, referral_id):
    """A draft as the receiver will see it (the core's receiver projection), before it is sent."""
    actor = request.actor
    try:
        preview = reads.referral_preview_read(actor=actor, referral_id=referral_id)
    except NotVisible:
        raise Http404 from None
    except Forbidden:
        return redirect("web:referral-detail", referral_id=referral_id)
    context = {
        "referral": preview.referral,
        "personal": preview.personal,
        "shared_rows": subject_rows(preview.subject) if preview.subject else [],
        "shared_reason": preview.reason,
        "withheld": [DataCategory(c) for c in preview.withheld],
        "withheld_rows": subject_rows(dict.fromkeys(preview.withheld_fields)),
    }
    return render(request, "web/referral_preview.html", context)


def _action_buttons(actor, referral) -> list[dict]:
    """Exactly the actions the core gives this actor now (the lifecycle, the void right, access)."""
    buttons = []
    for action in policy.actions_available(actor=actor, referral=referral):
        transition = TRANSITIONS[action]
        if action == "send" and referral.status == Status.DRAFT:
            continue  # sent from the preview page, after reading what will be shared
        buttons.append(
            {
                "action": action,
                "label": action_label(action),
                "needs": transition.needs,
                "optional_reason": transition.optional_reason,
                "danger": action in ("reject", "cancel", "fail", "void"),
            }
        )
    return buttons


@never_cache
@actor_required()
def referral_detail(request, referral_id):
    """The referral: metadata, the person (as consented), timeline, notes, and the allowed actions."""
    actor = request.actor
    try:
        view = reads.referral_read(
            actor=actor,
            referral_id=referral_id,
            with_timeline=True,
            with_notes=True,
            detail={"page": "detail"},
        )
    except NotVisible:
        raise Http404 from None
    referral, side, personal = view.referral, view.side, view.personal
    now = timezone.now()
    context = {
        "referral": referral,
        "side": side,
        "is_sender": side == Side.SENDER,
        "personal": personal,
        "subject_rows": subject_rows(view.subject) if view.subject else [],
        "texts": view.texts,
        "travels": view.travels,
        "events": view.events,
        "notes": view.notes or [],
        "buttons": _action_buttons(actor, referral),
        "note_form": NoteForm() if personal and policy.may_note(actor, referral) else None,
        "withdraw_form": WithdrawConsentForm() if policy.may_withdraw_consent(actor, referral) else None,
        "time_left": time_left(referral, now),
        "access_log": selectors.case_access_log(actor, referral.case)[:30] if side == Side.SENDER else [],
        **queues.detail_extras(actor, view),
    }
    return render(request, "web/referral_detail.html", context)


@caseworker_required
@require_POST
def referral_action(request, referral_id, action):
    """One lifecycle action from a button; accepting through the UI assigns the accepting caseworker."""
    actor = request.actor
    if action not in TRANSITIONS:
        raise Http404
    referral = _fetch_referral_or_404(actor, referral_id)
    form = ActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, next(iter(form.errors.values()))[0])
        return redirect("web:referral-detail", referral_id=referral.pk)
    try:
        services.referral_transition(
            actor=actor,
            referral_id=referral.pk,
            action=action,
            reason=form.cleaned_data["reason"] or None,
            outcome=form.cleaned_data["outcome"] or None,
            assign_to_actor=action == "accept",
        )
    except ProblemError as exc:
        report_problem(request, exc)
        if action == "send":
            return redirect("web:referral-preview", referral_id=referral.pk)
    else:
        if action == "send":
            messages.success(
                request, _("Referral %(reference)s was sent.") % {"reference": referral.reference}
            )
        else:
            referral.refresh_from_db(fields=["status"])
            messages.success(
                request,
                _("Done. The referral is now: %(status)s.") % {"status": referral.get_status_display()},
            )
    return redirect("web:referral-detail", referral_id=referral.pk)


@caseworker_required
@require_POST
def note_add(request, referral_id):
    actor = request.actor
    referral = _fetch_referral_or_404(actor, referral_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["body"][0])
    else:
        try:
            services.note_create(actor=actor, referral_id=referral.pk, body=form.cleaned_data["body"])
        except ProblemError as exc:
            report_problem(request, exc)
        else:
            messages.success(request, _("Note added."))
    return redirect("web:referral-detail", referral_id=referral.pk)


@caseworker_required
@require_POST
def consent_withdraw(request, referral_id):
    actor = request.actor
    referral = _fetch_referral_or_404(actor, referral_id)
    form = WithdrawConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["reason"][0])
    else:
        try:
            services.consent_withdraw(
                actor=actor, referral_id=referral.pk, reason=form.cleaned_data["reason"]
            )
        except ProblemError as exc:
            report_problem(request, exc)
        else:
            messages.success(
                request, _("Consent withdrawn: the receiving institution no longer sees the data.")
            )
    return redirect("web:referral-detail", referral_id=referral.pk)
