"""Read-only queries of federation (contract §7.4): the peers as ``federation_status`` and the admins' page
show them. No personal data: URLs, fingerprints, institution codes, counters, times."""

from __future__ import annotations

from django.db.models import Count, Min

from accounts.models import Institution

from .models import Outgoing, Peer


def peer_rows() -> list[dict]:
    """One row per peer: its card's facts, last contact, and the outbox — messages waiting (the oldest's
    time and its last error class), messages the peer answered with a problem, consecutive failed sends — and
    the witnessing of its audit log (the last checkpoint cosigned, the last one refused), and the remote
    institutions it hosts here with their number of offices (``federation.directory``). Read only; for
    ``federation_status`` and the admins' peers page."""
    waiting = {
        row["peer_id"]: row
        for row in Outgoing.objects.filter(state=Outgoing.State.WAITING)
        .values("peer_id")
        .annotate(count=Count("id"), oldest=Min("created_at"))
    }
    rejected = dict(
        Outgoing.objects.filter(state=Outgoing.State.DELIVERED, response_status__gte=400)
        .values("peer_id")
        .annotate(count=Count("id"))
        .values_list("peer_id", "count")
    )
    remote: dict[str, list[dict]] = {}
    for institution in (
        Institution.objects.remote()
        .annotate(office_count=Count("offices"))
        .order_by("code")
        .values("code", "name", "node", "office_count")
    ):
        remote.setdefault(institution["node"], []).append(institution)
    rows = []
    for peer in Peer.objects.all():
        queue = waiting.get(peer.pk, {})
        head = (
            Outgoing.objects.filter(peer=peer, state=Outgoing.State.WAITING).order_by("id").first()
            if queue
            else None
        )
        rows.append(
            {
                "url": peer.url,
                "fingerprint": peer.fingerprint,
                "institutions": peer.institutions,
                # Its remote institutions here (code, name, offices): those of its card, and any an older
                # card listed (kept with their referrals).
                "remote_institutions": remote.get(peer.url, []),
                "added_at": peer.added_at,
                "last_contact_at": peer.last_contact_at,
                "waiting": queue.get("count", 0),
                "oldest_waiting_at": queue.get("oldest"),
                "next_attempt_at": head.next_attempt_at if head else None,
                "last_error": head.last_error if head else "",
                "rejected": rejected.get(peer.pk, 0),
                "failures": peer.failures,
                "last_failure_at": peer.last_failure_at,
                "witnessed_tree_size": peer.witnessed_tree_size,
                "witnessed_at": peer.witnessed_at,
                "checkpoint_conflict_at": peer.checkpoint_conflict_at,
            }
        )
    return rows
