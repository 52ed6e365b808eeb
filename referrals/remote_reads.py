"""Reads of personal data made at a receiver's node, recorded in this node's audit log (contract §7.4,
read receipts).

This node sent the referral; the node hosting the receiving institution holds a copy of its consented
projection and reports every read of personal data made there (``referral.viewed``, ``note.viewed``,
``referral.list_viewed``, ``referral.printed``). Each report becomes an audit event here with the reader as
actor — type and id as at the receiver's node, the label as for every act of a remote institution's user
here (``remote.node_actor``: ``<label> @ <node>``), ``actor_institution`` the receiver's code, the reader's
``request_id`` — and ``detail.node`` the reporting node's URL, so that the sender's auditors see every read of
their beneficiaries' data through ``GET /api/v1/audit/events/`` as they would on one node.

The federation door translates a ``referral.reads`` message into one call of :func:`remote_reads_record`;
what may be recorded is decided here: a read action of the list above, about a referral this node sent
(``from_institution`` hosted here) to an institution of the reporting node (``to_institution.node`` is its
URL), read by that institution. A report that fails is skipped with a cause — the others are recorded —
and the same cause answers an unknown referral and another node's one: a peer learns nothing of referrals
that were not sent to it.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from dataclasses import dataclass, field

from django.db import transaction

from audit import recorder

from . import remote
from .models import Referral
from .selectors import parties

#: The read events of §4 and §6.1 (and the lists' and the printed sheet's) that a receiver's node reports.
READ_ACTIONS = frozenset({"referral.viewed", "note.viewed", "referral.list_viewed", "referral.printed"})
ACTOR_TYPES = frozenset({"user", "api_client", "system"})
#: Why a report is skipped (the answer to the reporting node names it; never a value of the report).
NOT_SENT_TO_NODE = "not-sent-to-node"
ACTOR_INSTITUTION = "not-the-receiving-institution"


@dataclass(frozen=True)
class RemoteRead:
    """One read reported by a receiver's node (already checked for shape by the door)."""

    referral_id: uuid.UUID
    action: str
    actor_type: str
    actor_id: str
    actor_label: str
    actor_institution: str
    request_id: str
    read_at: datetime.datetime
    detail: dict = field(default_factory=dict)


@transaction.atomic
def remote_reads_record(*, node: str, reads: list[RemoteRead]) -> list[tuple[int, str]]:
    """Record each read reported by the node at ``node`` (its URL) as an audit event here, in one append;
    returns the ``(index, cause)`` of the reads skipped (see the module's docstring)."""
    wanted = {read.referral_id for read in reads}
    referrals = {
        referral.pk: referral
        for referral in Referral.objects.filter(pk__in=wanted).select_related(
            "from_institution", "to_institution"
        )
    }
    skipped = []
    base_actors = {}  # the receiving institution acting through its node (remote.node_actor), by institution
    with recorder.batch():
        for index, read in enumerate(reads):
            referral = referrals.get(read.referral_id)
            if (
                referral is None
                or not node
                or referral.from_institution.node
                or referral.sent_at is None
                or referral.to_institution.node != node
            ):
                skipped.append((index, NOT_SENT_TO_NODE))
                continue
            if read.action not in READ_ACTIONS or read.actor_type not in ACTOR_TYPES:
                raise ValueError("not a read of personal data")  # the door checks these first
            if read.actor_institution != referral.to_institution.code:
                skipped.append((index, ACTOR_INSTITUTION))
                continue
            institution = referral.to_institution
            if institution.pk not in base_actors:
                base_actors[institution.pk] = remote.node_actor(institution=institution, node=node)
            reader = dataclasses.replace(
                base_actors[institution.pk],
                remote_kind=read.actor_type,
                remote_id=read.actor_id,
                remote_label=read.actor_label,
                request_id=read.request_id,
            )
            recorder.record(
                actor=reader,
                action=read.action,
                object_type="referral",
                object_id=referral.pk,
                case_id=referral.case_id,
                institutions=parties(referral),
                detail={**read.detail, "node": node, "read_at": read.read_at.isoformat()},
            )
    return skipped
