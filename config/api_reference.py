"""The partner API's reference: a summary, a description and request and response examples for every
operation of the served schema (``/api/v1/schema/``, issue 22 item 7).

The views keep their behaviour and their own schema annotations (serializers, parameters, status codes);
this module only adds the prose and the examples a partner's developer reads, through drf-spectacular's
supported view extensions (``OpenApiViewExtension``: the schema generator documents a subclass of each
view, the view that serves requests is untouched). Error responses — every one RFC 9457 problem+json,
with an example — are added to every operation by ``referrals.api.schema.problem_responses``.

``tests/api/test_reference.py`` fails on an operation of the served schema without a summary, a
description, or examples, and on a create operation that repeats its list's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view

# --- example values (fictitious people; ids are examples) ---------------------------------------------------

CASE_ID = "5b1f7c1e-2f0a-4d7e-9a43-0d6c2f1e8a10"
REFERRAL_ID = "0c8e4d2a-7b61-4f3e-a1d9-3e5b7a9c2f41"
NOTE_ID = "9f2d6b3c-1a47-4e8b-b5c0-7d3e1f2a6c58"
EVENT_ID = "3a7c9e1f-5b2d-4c8a-9e6f-1b3d5f7a9c20"
WEBHOOK_ID = "7e3a1c5f-9b2d-4e6a-8c1f-3d5b7e9a1c42"
DELIVERY_ID = "2d4f6a8c-1e3b-4d5f-a7c9-e1b3d5f7a9c6"
NOTIFICATION_ID = "6c8e1a3d-5f7b-4c9e-b1d3-f5a7c9e1b3d5"

SUBJECT_IN = {
    "given_name": "Ana",
    "family_name": "Pérez",
    "date_of_birth": "1990-05-01",
    "sex": "female",
    "nationality": "VEN",
    "languages": ["es"],
    "document_type": "passport",
    "document_number": "X1234567",
    "phone": "+507 6000-0000",
    "email": "ana@example.org",
    "current_location": "Lajas Blancas, Darién",
    "protection_needs": "Needs legal guidance.",
    "is_minor": False,
}
SUBJECT_OUT = SUBJECT_IN
CONSENT_IN = {
    "given": True,
    "given_by": "self",
    "method": "verbal",
    "obtained_at": "2026-12-01T14:30:00Z",
    "data_categories": ["identity", "documents"],
}
CONSENT_OUT = {**CONSENT_IN, "withdrawn_at": None}
CASE_OUT = {
    "id": CASE_ID,
    "reference": "IOM-C-2026-000123",
    "institution": "IOM",
    "subject": SUBJECT_OUT,
    "summary": "Family of three arrived in Lajas Blancas.",
    "created_at": "2026-12-01T14:31:07Z",
    "updated_at": "2026-12-01T14:31:07Z",
    "erased": False,
}
REFERRAL_ITEM = {
    "id": REFERRAL_ID,
    "reference": "IOM-2026-000456",
    "case": CASE_ID,
    "from_institution": "IOM",
    "to_institution": "DP",
    "to_office": "DARIEN",
    "from_office": "METETI",
    "province": "PA-5",
    "services": ["legal_assistance"],
    "urgency": "urgent",
    "status": "requested",
    "assignee": None,
    "sent_at": "2026-12-01T14:40:00Z",
    "response_due_at": "2026-12-03T14:40:00Z",
    "created_at": "2026-12-01T14:35:00Z",
    "updated_at": "2026-12-01T14:40:00Z",
}


def referral_out(**changes) -> dict:
    return {
        **REFERRAL_ITEM,
        "reason": "Wants to file a complaint about treatment at the border.",
        "status_reason": None,
        "outcome": None,
        "consent": CONSENT_OUT,
        "subject": SUBJECT_OUT,
        **changes,
    }


def page(*results) -> dict:
    return {
        "next": "https://referrals.example.org/api/v1/…?cursor=cD0yMDI2",
        "previous": None,
        "results": list(results),
    }


#: A checkpoint as served (contract §6.3, §7.3).
CHECKPOINT = {
    "sequence": 41890,
    "hash": "9c0e…",
    "at": "2026-12-02T10:00:00Z",
    "signature": "…",
    "tree_size": 41890,
    "root_hash": "q1w2e3…=",
    "note": "referrals.example.org/audit\n41890\nq1w2e3…=\n\n— referrals.example.org/audit XqW3…\n",
    "cosignatures": [],
}


# --- the reference ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What a reader needs of one operation: a summary, a description, examples of its body and answers."""

    summary: str
    description: str
    request: dict | None = None
    responses: dict[str, object] = field(default_factory=dict)  # status code → example body
    media_type: str = "application/json"  # of the responses

    def examples(self) -> list[OpenApiExample]:
        out = []
        if self.request is not None:
            out.append(OpenApiExample("Request", value=self.request, request_only=True))
        for code, value in self.responses.items():
            out.append(
                OpenApiExample(
                    f"Response {code}",
                    value=value,
                    response_only=True,
                    status_codes=[code],
                    media_type=self.media_type,
                )
            )
        return out


TRANSITIONS = {
    "send": ("Send a draft referral", "The sender sends its draft: the receiver sees it from now on.", None),
    "receive": ("Acknowledge receipt", "The receiver acknowledges the referral (not yet an answer).", None),
    "accept": (
        "Accept a referral",
        "The receiver accepts; through the API no person is assigned.",
        None,
    ),
    "reject": (
        "Reject a referral",
        "The receiver rejects, with a reason; its access to the person's data ends.",
        {"reason": "Outside our mandate."},
    ),
    "start": ("Start the service", "The receiver starts providing the service.", None),
    "hold": (
        "Put on hold",
        "The receiver pauses the service, with a reason.",
        {"reason": "Awaiting documents."},
    ),
    "resume": ("Resume the service", "The receiver resumes a paused service.", None),
    "complete": (
        "Complete a referral",
        "The receiver closes the referral with its outcome.",
        {"outcome": "Complaint filed on 2026-12-05."},
    ),
    "fail": (
        "Record a failure",
        "The receiver could not provide the service, with a reason.",
        {"reason": "Lost contact."},
    ),
    "cancel": (
        "Cancel a referral",
        "The sender withdraws its request, with a reason; the receiver's access ends.",
        {"reason": "The person left the country."},
    ),
    "void": (
        "Void a referral entered in error",
        "A supervisor of the sender marks a referral entered in error; statistics no longer count it.",
        {"reason": "Duplicate of IOM-2026-000455."},
    ),
}
TRANSITION_STATUS = {
    "send": "requested",
    "receive": "received",
    "accept": "accepted",
    "reject": "rejected",
    "start": "in-progress",
    "hold": "on-hold",
    "resume": "in-progress",
    "complete": "completed",
    "fail": "failed",
    "cancel": "cancelled",
    "void": "entered-in-error",
}
LIFECYCLE_TEXT = (
    " Send `If-Match` with the referral's `ETag` to be sure no one answered in between (412 otherwise); a "
    "transition not allowed in the current status is 409 `invalid-transition`; an action of the other side "
    "is 403. Answers the referral as the caller now sees it, with its new `ETag`."
)


def _transition(action: str) -> Operation:
    summary, text, body = TRANSITIONS[action]
    return Operation(
        summary=summary,
        description=text + LIFECYCLE_TEXT,
        request=body if body is not None else {},
        responses={"200": referral_out(status=TRANSITION_STATUS[action])},
    )


REFERENCE: dict[str, dict[str, Operation]] = {
    "referrals.api.views.InstitutionList": {
        "get": Operation(
            "List the institutions",
            "The directory of institutions in the network (codes and names), to address referrals. With "
            "federation (contract §7.4) it lists the institutions hosted by peer nodes too — remote "
            "institutions, addressed exactly like the others —, each with `node`: the URL of the peer node "
            "hosting it; null for the institutions of this node. Any valid token.",
            responses={
                "200": page(
                    {"code": "DP", "name": "Defensoría del Pueblo", "node": "https://dp.node.example"},
                    {"code": "IOM", "name": "OIM", "node": None},
                )
            },
        )
    },
    "referrals.api.views.OfficeList": {
        "get": Operation(
            "List the offices (the service directory)",
            "Every institution's offices (contract §7.2): code, name, province (ISO 3166-2:PA), services, "
            "languages, whether each accepts referrals now and until when it is paused, and `node`: for an "
            "office of a remote institution, the peer node hosting it (its offices as that node serves "
            "them, refreshed hourly; contract §7.4), null for this node's own. Filters: "
            "`institution`, `service`, `province`, `accepting=true|false`. Any valid token.",
            responses={
                "200": page(
                    {
                        "institution": "DP",
                        "code": "DARIEN",
                        "name": "Defensoría del Pueblo — Darién",
                        "province": "PA-5",
                        "services": ["legal_assistance", "human_rights_complaint"],
                        "languages": ["es"],
                        "accepting_referrals": True,
                        "paused_until": None,
                        "node": "https://dp.node.example",
                    }
                )
            },
        )
    },
    "referrals.api.views.DirectoryHsds": {
        "get": Operation(
            "The service directory in Open Referral HSDS 3.0",
            "The offices of every institution as Open Referral HSDS 3.0 JSON (contract §7.2): each "
            "institution an `organization`, each office a `location` (`external_identifier` `DP/DARIEN`), "
            "each service an office offers a `service` at that location (`service_at_location`), with the "
            "office's languages, its province as the `service_area` and the service code as a taxonomy term. "
            "A service of an office that is not accepting referrals now is `temporarily closed`, its `alert` "
            "saying until when. Ids are UUIDv5 of the codes: stable between calls. Any valid token.",
            responses={
                "200": {
                    "organizations": [
                        {
                            "id": "e474bdf4-82c2-56a2-a281-9ae72cc722c0",
                            "name": "Defensoría del Pueblo",
                            "alternate_name": "DP",
                            "description": "Defensoría del Pueblo",
                            "organization_identifiers": [
                                {
                                    "id": "d1fd36fd-c61d-5d2b-9aef-2a713e8fc30e",
                                    "organization_id": "e474bdf4-82c2-56a2-a281-9ae72cc722c0",
                                    "identifier_type": "referral network institution code",
                                    "identifier": "DP",
                                }
                            ],
                        }
                    ],
                    "services": [
                        {
                            "id": "d195312d-3440-52cd-a85d-80d9376f42a4",
                            "organization_id": "e474bdf4-82c2-56a2-a281-9ae72cc722c0",
                            "name": "Legal assistance",
                            "description": "Legal assistance — Defensoría del Pueblo — Darién",
                            "status": "temporarily closed",
                            "alert": "Not accepting referrals until 2027-01-15. No lawyer until January.",
                            "languages": [
                                {
                                    "id": "5a33ba6f-958e-51ec-9878-7da46ada6fd8",
                                    "service_id": "d195312d-3440-52cd-a85d-80d9376f42a4",
                                    "code": "es",
                                }
                            ],
                            "service_areas": [
                                {
                                    "id": "8296f62d-8c64-52ca-8792-626ecfb085d4",
                                    "service_id": "d195312d-3440-52cd-a85d-80d9376f42a4",
                                    "name": "Darién",
                                    "description": "ISO 3166-2:PA-5",
                                }
                            ],
                            "attributes": [
                                {
                                    "id": "b84d30bb-5567-5d11-ae35-50e4673c1990",
                                    "link_id": "d195312d-3440-52cd-a85d-80d9376f42a4",
                                    "link_type": "service_type",
                                    "link_entity": "service",
                                    "taxonomy_term_id": "777e40df-6454-56e7-86a4-74fcff7baaab",
                                    "taxonomy_term": {
                                        "id": "777e40df-6454-56e7-86a4-74fcff7baaab",
                                        "code": "legal_assistance",
                                        "name": "Legal assistance",
                                        "description": "Legal assistance",
                                        "taxonomy": "Referral network services (partner API v1, §4)",
                                    },
                                }
                            ],
                        }
                    ],
                    "locations": [
                        {
                            "id": "290610e8-78cf-53ff-a2af-52c41079e3f4",
                            "location_type": "physical",
                            "organization_id": "e474bdf4-82c2-56a2-a281-9ae72cc722c0",
                            "name": "Defensoría del Pueblo — Darién",
                            "description": "Darién (PA-5)",
                            "external_identifier": "DP/DARIEN",
                            "external_identifier_type": "referral network office",
                            "languages": [
                                {
                                    "id": "6fde14b1-df20-5c3d-b664-aa3964792922",
                                    "location_id": "290610e8-78cf-53ff-a2af-52c41079e3f4",
                                    "code": "es",
                                }
                            ],
                        }
                    ],
                    "service_at_locations": [
                        {
                            "id": "3bccedbd-a9fa-5b36-95e1-fbd5a295db07",
                            "service_id": "d195312d-3440-52cd-a85d-80d9376f42a4",
                            "location_id": "290610e8-78cf-53ff-a2af-52c41079e3f4",
                        }
                    ],
                }
            },
        )
    },
    "referrals.api.views.ReferralRoute": {
        "post": Operation(
            "Route a referral to an office",
            "The receiver moves a referral (any non-terminal status) to another of its offices, or back to "
            "its national intake with `null` (contract §7.2). The new office's staff see it and its "
            "caseworkers are notified in the app; the previous office's staff no longer see it. An unknown "
            "office is 400; a paused one 409 `office-not-accepting`. Send `If-Match` with the referral's "
            "`ETag`. Scope `referrals:write`.",
            request={"to_office": "CHIRIQUI"},
            responses={"200": referral_out(to_office="CHIRIQUI")},
        )
    },
    "referrals.api.views.CaseListCreate": {
        "get": Operation(
            "List cases",
            "Cases of the caller's institution that the caller may see, without personal data (open one for "
            "its subject). `document_number` finds a case by exact document number. Scope "
            "`referrals:read`.",
            responses={
                "200": page(
                    {
                        key: CASE_OUT[key]
                        for key in ("id", "reference", "institution", "created_at", "updated_at")
                    }
                )
            },
        ),
        "post": Operation(
            "Create a case",
            "Opens a case for one person (the subject) in the caller's institution. The subject's data are "
            "encrypted at rest; `possible_duplicates` lists the ids of the institution's cases that may be "
            "the same person (nothing is merged). Send an `Idempotency-Key` to retry safely. Scope "
            "`referrals:write`.",
            request={"subject": SUBJECT_IN, "summary": "Family of three arrived in Lajas Blancas."},
            responses={"201": {**CASE_OUT, "possible_duplicates": []}},
        ),
    },
    "referrals.api.views.CaseDetail": {
        "get": Operation(
            "Get a case",
            "One case with its subject, for the institution that owns it. A case the caller may not see is "
            "404, like one that does not exist. The read is audited. Scope `referrals:read`.",
            responses={"200": CASE_OUT},
        )
    },
    "matching.api.CaseMatch": {
        "post": Operation(
            "Find possible duplicates",
            "Cases of the caller's institution that may be the given person, best first (at most 10), "
            "with a score and the reasons; nothing is stored or merged. Scope `referrals:read`.",
            request={
                "given_name": "Ana",
                "family_name": "Perez",
                "date_of_birth": "1990-05-01",
                "nationality": "VEN",
            },
            responses={
                "200": {
                    "results": [
                        {
                            "case": CASE_ID,
                            "reference": "IOM-C-2026-000123",
                            "score": 0.93,
                            "reasons": ["name_similar", "date_of_birth", "nationality"],
                        }
                    ]
                }
            },
        )
    },
    "referrals.api.views.ReferralListCreate": {
        "get": Operation(
            "List referrals",
            "Referrals the caller's institution sent or received, without personal data, newest first; "
            "filters `direction`, `status`, `updated_since` and `office` (a received referral's office code "
            "of the caller's institution, or `none`: at its national intake); `ordering`; cursor pagination "
            "(`next`, `previous`). Scope `referrals:read`.",
            responses={"200": page(REFERRAL_ITEM)},
        ),
        "post": Operation(
            "Create a referral",
            "A draft referral of one of the caller's cases to another institution, with the person's "
            "consent (the data categories that travel to the receiver). Send it with `POST "
            "/referrals/{id}/send/`. `to_office` (an office code of the receiving institution) and "
            "`province` (where the person needs the service) are optional: without an office, sending "
            "routes it to the receiver's accepting office in that province offering its services, else to "
            "its national intake. Send an `Idempotency-Key` to retry safely. Answers the referral with "
            "its `ETag`. Scope `referrals:write`.",
            request={
                "case": CASE_ID,
                "to_institution": "DP",
                "to_office": "DARIEN",
                "province": "PA-5",
                "services": ["legal_assistance"],
                "urgency": "urgent",
                "reason": "Wants to file a complaint about treatment at the border.",
                "consent": CONSENT_IN,
            },
            responses={"201": referral_out(status="draft", sent_at=None, response_due_at=None)},
        ),
    },
    "referrals.api.views.ReferralDetail": {
        "get": Operation(
            "Get a referral",
            "One referral as the caller may see it: the sender sees the whole subject; the receiver only "
            "the consented categories while it may read the person (`subject: null` otherwise). The `ETag` "
            "header is the version to send in `If-Match`. The read is audited. Scope `referrals:read`.",
            responses={"200": referral_out()},
        )
    },
    "referrals.api.views.ReferralEvents": {
        "get": Operation(
            "List a referral's events",
            "The referral's timeline, oldest first (the receiver sees it from `send` on): who did what and "
            "when, no free text. Scope `referrals:read`.",
            responses={
                "200": page(
                    {
                        "id": EVENT_ID,
                        "at": "2026-12-01T14:40:00Z",
                        "actor_institution": "IOM",
                        "action": "send",
                        "from_status": "draft",
                        "to_status": "requested",
                    }
                )
            },
        )
    },
    "referrals.api.views.ReferralNotes": {
        "get": Operation(
            "List a referral's notes",
            "Notes between the two institutions, oldest first, while the receiver may read the referral. "
            "The read is audited. Scope `referrals:read`.",
            responses={
                "200": page(
                    {
                        "id": NOTE_ID,
                        "at": "2026-12-02T09:00:00Z",
                        "author_institution": "DP",
                        "body": "Appointment on 5 December.",
                    }
                )
            },
        ),
        "post": Operation(
            "Add a note",
            "A note to the other institution on the referral (plain text). Scope `referrals:write`.",
            request={"body": "Appointment on 5 December."},
            responses={
                "201": {
                    "id": NOTE_ID,
                    "at": "2026-12-02T09:00:00Z",
                    "author_institution": "DP",
                    "body": "Appointment on 5 December.",
                }
            },
        ),
    },
    "referrals.api.views.ConsentWithdraw": {
        "post": Operation(
            "Record a withdrawal of consent",
            "The person withdrew consent (sender only): an open referral is cancelled and the receiver's "
            "access to the person's data ends. Send `If-Match` with the referral's `ETag`. Scope "
            "`referrals:write`.",
            request={"reason": "The person asked by phone."},
            responses={
                "200": referral_out(
                    status="cancelled", consent={**CONSENT_OUT, "withdrawn_at": "2026-12-02T10:00:00Z"}
                )
            },
        )
    },
    **{f"referrals.api.views.ACTION_VIEWS:{action}": {"post": _transition(action)} for action in TRANSITIONS},
    "notifications.api.views.NotificationList": {
        "get": Operation(
            "List notifications",
            "The caller's in-app notifications and how many are unread.",
            responses={
                "200": {
                    "results": [
                        {
                            "id": NOTIFICATION_ID,
                            "event_type": "referral.sent",
                            "referral_id": REFERRAL_ID,
                            "reference": "IOM-2026-000456",
                            "status": "requested",
                            "created_at": "2026-12-01T14:40:00Z",
                            "read_at": None,
                        }
                    ],
                    "unread": 1,
                }
            },
        )
    },
    "notifications.api.views.NotificationRead": {
        "post": Operation(
            "Mark a notification read",
            "Marks one of the caller's notifications as read. No body; answers 204.",
            request={},
            responses={"204": None},
        )
    },
    "notifications.api.views.NotificationReadAll": {
        "post": Operation(
            "Mark every notification read",
            "Marks all of the caller's unread notifications as read and says how many.",
            request={},
            responses={"200": {"marked": 3}},
        )
    },
    "notifications.api.views.Preferences": {
        "get": Operation(
            "Get notification preferences",
            "Which events also reach the caller by email.",
            responses={"200": {"email": {"referral.sent": True, "referral.overdue": False}}},
        ),
        "put": Operation(
            "Set notification preferences",
            "Replaces which events also reach the caller by email.",
            request={"email": {"referral.sent": True, "referral.overdue": False}},
            responses={"200": {"email": {"referral.sent": True, "referral.overdue": False}}},
        ),
    },
    "notifications.api.views.WebhookList": {
        "get": Operation(
            "List webhook subscriptions",
            "The institution's webhook subscriptions, oldest first. Scope `webhooks:manage`.",
            responses={
                "200": page(
                    {
                        "id": WEBHOOK_ID,
                        "url": "https://partner.example.org/hooks/referrals",
                        "events": ["referral.sent", "referral.accepted"],
                        "created_at": "2026-12-01T08:00:00Z",
                        "disabled_at": None,
                    }
                )
            },
        ),
        "post": Operation(
            "Subscribe a webhook",
            "Subscribes a URL of the institution to events; the answer carries the signing `secret` once "
            "(verify each delivery's signature with it). Scope `webhooks:manage`.",
            request={"url": "https://partner.example.org/hooks/referrals", "events": ["referral.sent"]},
            responses={
                "201": {
                    "id": WEBHOOK_ID,
                    "url": "https://partner.example.org/hooks/referrals",
                    "events": ["referral.sent"],
                    "secret": "whsec_5Jc0…",
                }
            },
        ),
    },
    "notifications.api.views.WebhookDetail": {
        "get": Operation(
            "Get a webhook subscription",
            "One of the institution's subscriptions. Scope `webhooks:manage`.",
            responses={
                "200": {
                    "id": WEBHOOK_ID,
                    "url": "https://partner.example.org/hooks/referrals",
                    "events": ["referral.sent"],
                    "created_at": "2026-12-01T08:00:00Z",
                    "disabled_at": None,
                }
            },
        ),
        "delete": Operation(
            "Delete a webhook subscription",
            "Ends the subscription. Answers 204. Scope `webhooks:manage`.",
            responses={"204": None},
        ),
    },
    "notifications.api.views.WebhookDeliveries": {
        "get": Operation(
            "List a webhook's deliveries",
            "The subscription's recent deliveries with each attempt (status code, error, duration), to "
            "diagnose a receiving endpoint. Scope `webhooks:manage`.",
            responses={
                "200": {
                    "results": [
                        {
                            "id": DELIVERY_ID,
                            "event_type": "referral.sent",
                            "referral_id": REFERRAL_ID,
                            "state": "delivered",
                            "attempts": [
                                {
                                    "at": "2026-12-01T14:40:01Z",
                                    "succeeded": True,
                                    "status_code": 200,
                                    "error": "",
                                    "duration_ms": 120,
                                }
                            ],
                            "next_attempt_at": None,
                            "delivered_at": "2026-12-01T14:40:01Z",
                        }
                    ]
                }
            },
        )
    },
    "notifications.api.views.WebhookReplay": {
        "post": Operation(
            "Replay a delivery",
            "Queues one delivery again (e.g. after the endpoint was fixed); answers 202 with its state. "
            "Scope `webhooks:manage`.",
            request={},
            responses={"202": {"id": DELIVERY_ID, "state": "pending"}},
        )
    },
    "audit.api.views.AuditEventList": {
        "get": Operation(
            "List audit events",
            "Audit events the caller's institution may read, oldest first (filters by action, object, time; "
            "cursor pagination); each carries its place in the hash chain. Scope `audit:read`.",
            responses={
                "200": page(
                    {
                        "id": "8b1d3f5a-7c9e-4b2d-a6f8-0c2e4a6b8d1f",
                        "sequence": 41230,
                        "at": "2026-12-01T14:40:00Z",
                        "actor": {"type": "api_client", "id": "17", "institution": "IOM"},
                        "action": "referral.sent",
                        "object_type": "referral",
                        "object_id": REFERRAL_ID,
                        "ip": "192.0.2.10",
                        "request_id": "b7e1c9d2",
                        "outcome": "success",
                        "detail": {},
                        "hash": "9c0e…",
                        "prev_hash": "4a1b…",
                    }
                )
            },
        )
    },
    "audit.api.views.AuditEventExport": {
        "get": Operation(
            "Export audit events as CSV",
            "The same events as the list (same filters and visibility) as one CSV file, formulas "
            "neutralised. Scope `audit:read`.",
            responses={"200": "sequence,at,actor_type,actor_id,institution,action,object_type,object_id\n"},
            media_type="text/csv",
        )
    },
    "audit.api.views.AuditCheckpointList": {
        "get": Operation(
            "List audit checkpoints",
            "Every signed checkpoint of the audit chain, oldest first: keep your own copy to prove later "
            "that the log was not rewritten. Scope `audit:read`.",
            responses={"200": page(CHECKPOINT)},
        )
    },
    "audit.api.views.AuditCheckpointLatest": {
        "get": Operation(
            "Get the latest audit checkpoint",
            "The newest signed checkpoint, with its Merkle root, its C2SP signed note and the partners' "
            "cosignatures (contract §7.3): what a witness fetches before checking consistency. 404 while no "
            "checkpoint exists. Scope `audit:read`.",
            responses={"200": CHECKPOINT},
        )
    },
    "audit.api.views.AuditCosignatureCreate": {
        "post": Operation(
            "Cosign a checkpoint (witness)",
            "A partner's C2SP tlog-cosignature over the checkpoint of that `tree_size`, verified before it "
            "is stored: the witness checked that the log only grew since the last checkpoint it saw. 400 "
            "when it does not verify, 404 when no checkpoint has that size. Scope `audit:read`.",
            request={"vkey": "dp.example.org/witness+1a2b3c4d+BAQ…", "signature": "AAAAAGdO…"},
            responses={
                "201": {
                    "vkey": "dp.example.org/witness+1a2b3c4d+BAQ…",
                    "signature": "AAAAAGdO…",
                    "at": "2026-12-02T10:00:05Z",
                }
            },
        )
    },
    "audit.api.views.AuditInclusionProof": {
        "get": Operation(
            "Prove an event is in the log",
            "An RFC 9162 §2.1.3 inclusion proof of an event you may see (404 otherwise) in the tree of "
            "`tree_size` events (at most the latest checkpoint's). Verify it against that checkpoint's "
            "`root_hash`. Scope `audit:read`.",
            responses={
                "200": {
                    "leaf_index": 41001,
                    "tree_size": 41890,
                    "leaf_hash": "q1w…",
                    "hashes": ["c2V…", "ZGE…"],
                }
            },
        )
    },
    "audit.api.views.AuditConsistencyProof": {
        "get": Operation(
            "Prove the log only grew",
            "An RFC 9162 §2.1.4 consistency proof between the trees of `from` and `to` events: hashes only, "
            "no event. `to` beyond the latest checkpoint or `from` > `to` → 400. Scope `audit:read`.",
            responses={"200": {"from": 41230, "to": 41890, "hashes": ["c2V…", "ZGE…"]}},
        )
    },
    "audit.api.views.AuditCheckpointKey": {
        "get": Operation(
            "Get the checkpoints' public key",
            "The Ed25519 public key that verifies the checkpoints' signatures, the log's `origin` and its "
            "verifier key (`vkey`, golang.org/x/mod/sumdb/note format). Scope `audit:read`.",
            responses={
                "200": {
                    "algorithm": "ed25519",
                    "public_key": "MCowBQYDK2VwAyEA…",
                    "origin": "referrals.example.org/audit",
                    "vkey": "referrals.example.org/audit+5e1a9b2c+AQ…",
                }
            },
        )
    },
    "reporting.api.ReferralStatistics": {
        "get": Operation(
            "Statistics of referrals",
            "Counts of the referrals the caller's institution sent or received in a period, by one or two "
            "dimensions, protected by the cell-key method (contract §7.5): each count is adjusted by at "
            "most `max_adjustment` in a fixed way and no count from 1 to `min_cell − 1` is published. "
            "Scope `statistics:read`.",
            responses={
                "200": {
                    "from": "2026-03-01",
                    "to": "2026-03-31",
                    "by": ["service"],
                    "min_cell": 5,
                    "protection": "cell_key",
                    "max_adjustment": 2,
                    "total": 42,
                    "rows": [
                        {
                            "key": {"service": "legal_assistance"},
                            "count": 22,
                            "suppressed": False,
                            "median_hours_to_answer": 18,
                        }
                    ],
                }
            },
        )
    },
}


def _target(path: str):
    """A view's dotted path, or ``module.MAPPING:key`` for the views kept in a mapping (the lifecycle's
    actions, built one per transition), resolved to the class."""
    if ":" not in path:
        return path
    mapping, key = path.split(":")
    return import_string(mapping)[key]


def _documented(target_path: str, operations: dict[str, Operation]) -> type[OpenApiViewExtension]:
    def view_replacement(self):
        view = type(self.target.__name__, (self.target,), {"__module__": self.target.__module__})
        decorators = {
            method: extend_schema(summary=op.summary, description=op.description, examples=op.examples())
            for method, op in operations.items()
        }
        return extend_schema_view(**decorators)(view)

    name = "Reference" + "".join(part.title() for part in target_path.replace(":", ".").split(".")[-2:])
    attributes = {"target_class": _target(target_path), "view_replacement": view_replacement}
    return type(name.replace("_", "").replace("-", ""), (OpenApiViewExtension,), attributes)


EXTENSIONS = [_documented(path, operations) for path, operations in REFERENCE.items()]
