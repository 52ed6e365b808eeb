"""Each node witnesses its peers' audit logs (contract §7.3 and §7.4): a C2SP witness run by the node itself.

One pass per peer, over the signed door (``checkpoint.*`` messages, ``federation.handlers``):

1. ``checkpoint.latest`` → the peer's log verifier key and latest checkpoint. The verifier key is pinned in
   the ``Peer`` row on first contact: the card's fields are fixed (§7.4) and carry no audit key, so the key
   is taken from an answer signed by the peer's pinned node key (trust on first use, vouched for by the
   node key); afterwards a different key is a conflict. A peer whose log has this node's own origin is
   refused (§7.4).
2. The checkpoint's note must verify with the pinned key and match its fields.
3. It must be consistent with the last checkpoint this node cosigned of that peer: the same root at the
   same size, a ``checkpoint.consistency`` proof (RFC 9162) for a larger size, never a smaller size.
4. This node cosigns it (C2SP tlog-cosignature; its witness key is its node signing key, as a 0x04 verifier
   key named after ``NODE_URL``'s host and port), sends ``checkpoint.cosign`` (stored at the peer through
   the same rule as the API's cosignature endpoint), and keeps the checkpoint as the new reference.

Any inconsistency: nothing is cosigned, the reference is kept, ``federation.checkpoint_conflict`` is recorded
(the peer's URL, the sizes, a cause — no personal data, no text from the peer) and every supervisor is
alerted in the app and by e-mail — once a day per distinct conflict (same peer, cause and sizes), while every
pass that refuses is recorded. A peer that cannot be reached is simply tried again next pass.

Passes run hourly for every peer (``witness_peers``), on demand (``federation_witness``), and for one peer
when it announces a new checkpoint (``checkpoint.announce`` through its outbox → ``request_pass``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.db import transaction
from django.utils import timezone

from audit import merkle, notes
from audit.recorder import record
from notifications.dispatch import broker_enabled
from notifications.models import Notification
from notifications.services import alert_supervisors

from . import directory, keys, protocol, services
from .models import Peer

logger = logging.getLogger(__name__)

CONFLICT_EVENT = "federation.checkpoint_conflict"
#: One alert per distinct conflict (same peer, cause and sizes) in this period; every one is still recorded.
ALERT_EVERY = timedelta(days=1)
EMAIL_SUBJECT = (
    "Alerta: registro de auditoría de un nodo par inconsistente / A peer node's audit log is inconsistent"
)
EMAIL_BODY = """Este nodo se negó a cofirmar un punto de control del registro de auditoría del nodo {node}:
{cause_es} (tamaño {tree_size}, último cofirmado {previous_tree_size}).
El registro de ese nodo puede haber sido reescrito. Avise al equipo técnico de ambas instituciones.

This node refused to cosign a checkpoint of the audit log of node {node}:
{cause_en} (size {tree_size}, last cosigned {previous_tree_size}).
That node's log may have been rewritten. Alert the technical teams of both institutions.
"""
CAUSES = {
    "key-changed": ("la clave del registro cambió", "the log's key changed"),
    "same-origin": ("el registro tiene el origen de este nodo", "the log has this node's origin"),
    "bad-signature": ("la firma del punto de control no verifica", "the checkpoint's signature fails"),
    "fields-differ": ("los campos difieren de la nota firmada", "its fields differ from its signed note"),
    "shrank": ("el registro se acortó", "the log shrank"),
    "fork": ("no es coherente con el último cofirmado", "not consistent with the last one cosigned"),
}


class WitnessFailed(RuntimeError):
    """The peer could not be witnessed this time (unreachable, or an answer of the wrong shape)."""


class AuditKeyRefused(ValueError):
    """``pin_audit_key`` refused: no such peer, not a log verifier key, or this node's own origin."""


@transaction.atomic
def pin_audit_key(url: str, vkey: str) -> tuple[str, Peer]:
    """An operator pins a peer's new audit log key (``manage.py federation_peer_audit_key``), after that peer
    really rotated ``AUDIT_SIGNING_KEY`` and its operator read the new ``vkey`` out by phone. Returns
    ``("pinned", peer)`` or ``("unchanged", peer)``; AuditKeyRefused otherwise.

    Only the key changes: the last checkpoint this node cosigned stays the reference, so the next pass still
    refuses a log that is not consistent with it (a new key does not excuse a rewritten history). Audited as
    ``federation.peer_audit_key_pinned`` (the node, the previous and the new key: public keys)."""
    peer = Peer.objects.select_for_update().filter(url=url).first()
    if peer is None:
        raise AuditKeyRefused("no peer is pinned at this URL (federation_status lists them)")
    try:
        verifier = notes.parse_vkey(vkey.strip(), notes.ED25519)
    except notes.NoteError as exc:
        raise AuditKeyRefused(f"not an audit log verifier key: {exc}") from None
    if verifier.name == notes.origin():
        raise AuditKeyRefused("this key names this node's own log: a peer's log has its own origin")
    if verifier.text == peer.audit_vkey:
        return "unchanged", peer
    previous, peer.audit_vkey = peer.audit_vkey, verifier.text
    peer.save(update_fields=["audit_vkey"])
    record(
        action="federation.peer_audit_key_pinned",
        actor_type="system",
        actor_label="manage.py federation_peer_audit_key",
        object_type="peer",
        object_id=str(peer.pk),
        institutions=services.local_institution_codes(),
        detail={"node": peer.url, "previous_vkey": previous, "vkey": verifier.text},
    )
    return "pinned", peer


@dataclass(frozen=True)
class Outcome:
    peer: str
    result: str  # "cosigned" | "unchanged" | "no-checkpoint" | "conflict" | "failed"
    tree_size: int | None = None
    previous_tree_size: int | None = None
    cause: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


def witness_name(url: str | None = None) -> str:
    """A node's witness name: its URL's host, with the port when the URL names one."""
    parts = urlsplit(url or keys.node_url())
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port}" if parts.port else host


def own_witness_vkey() -> str:
    public = (
        keys.signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return notes.vkey(witness_name(), notes.COSIGNATURE_V1, public)


def peer_witness_vkey(peer: Peer) -> str:
    """The witness key a peer cosigns with: its pinned signing key, named after its URL."""
    public = protocol.unb64(peer.signing_key, length=32)
    return notes.vkey(witness_name(peer.url), notes.COSIGNATURE_V1, public)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ask(peer: Peer, message_type: str, payload: dict, expected: int = 200) -> dict:
    try:
        reply = services.send(peer, message_type, payload)
    except services.PeerUnavailable as exc:
        raise WitnessFailed(f"{message_type}: {exc.cause}") from None
    if reply.status != expected:
        raise WitnessFailed(f"{message_type}: the peer answered {reply.status}")
    return reply.payload


def _alerted_lately(facts: dict) -> bool:
    """Whether the supervisors were alerted of this very conflict (same peer, cause and sizes) within
    ``ALERT_EVERY``: a peer that keeps presenting the same refused checkpoint is recorded on every pass, but
    alerts once a day, not every hour."""
    return Notification.objects.filter(
        event_type=CONFLICT_EVENT,
        created_at__gte=timezone.now() - ALERT_EVERY,
        data__node=facts["node"],
        data__cause=facts["cause"],
        data__tree_size=facts["tree_size"],
        data__previous_tree_size=facts["previous_tree_size"],
    ).exists()


def record_conflict(peer: Peer, cause: str, tree_size, previous) -> Outcome:
    """Refuse a peer's checkpoint: the audit event and the mark on the peer every time; every supervisor
    alerted, once a day per distinct conflict (``_alerted_lately``)."""
    with transaction.atomic():
        Peer.objects.filter(pk=peer.pk).update(checkpoint_conflict_at=timezone.now())
        facts = {"node": peer.url, "cause": cause, "tree_size": tree_size, "previous_tree_size": previous}
        alerted_lately = _alerted_lately(facts)
        record(
            action=CONFLICT_EVENT,
            actor_type="system",
            outcome="failure",
            object_type="federation.peer",
            object_id=str(peer.pk),
            institutions=services.local_institution_codes(),
            detail=facts,
        )
        if alerted_lately:
            return Outcome(peer.url, "conflict", tree_size, previous, cause)
        es, en = CAUSES[cause]
        alert_supervisors(
            event_type=CONFLICT_EVENT,
            data={"reference": "", "status": "", **facts},
            subject=EMAIL_SUBJECT,
            body=EMAIL_BODY.format(
                node=peer.url, cause_es=es, cause_en=en, tree_size=tree_size, previous_tree_size=previous
            ),
        )
    return Outcome(peer.url, "conflict", tree_size, previous, cause)


def witness_peer(peer: Peer) -> Outcome:
    """One witnessing pass for one peer (see the module's text). Never raises for the peer's answers."""
    previous = peer.witnessed_tree_size
    try:
        latest = _ask(peer, "checkpoint.latest", {})
        vkey, served = latest.get("vkey"), latest.get("checkpoint")
        try:
            verifier = notes.parse_vkey(vkey, notes.ED25519)
        except notes.NoteError:
            raise WitnessFailed("checkpoint.latest: not a verifier key") from None
        if peer.audit_vkey and verifier.text != peer.audit_vkey:
            return record_conflict(peer, "key-changed", None, previous)
        if verifier.name == notes.origin():
            return record_conflict(peer, "same-origin", None, previous)
        if not peer.audit_vkey:  # trust on first use, vouched for by the node key that signed the answer
            Peer.objects.filter(pk=peer.pk, audit_vkey="").update(audit_vkey=verifier.text)
            peer.audit_vkey = verifier.text
        if served is not None and not isinstance(served, dict):
            raise WitnessFailed("checkpoint.latest: not a checkpoint")
        if served is None or not isinstance(served.get("note"), str):  # none yet, or from before the tree
            return Outcome(peer.url, "no-checkpoint", None, previous)
        try:
            checkpoint = notes.open_note(served["note"], verifier)
        except notes.NoteError:
            claimed = served.get("tree_size")  # only an integer reaches the audit detail, never a text
            claimed = claimed if isinstance(claimed, int) and not isinstance(claimed, bool) else None
            return record_conflict(peer, "bad-signature", claimed, previous)
        size = checkpoint.tree_size
        if served.get("tree_size") != size or served.get("root_hash") != _b64(checkpoint.root):
            return record_conflict(peer, "fields-differ", size, previous)
        if previous is not None:
            old_root = base64.b64decode(peer.witnessed_root_hash)
            if size < previous:
                return record_conflict(peer, "shrank", size, previous)
            proof: list[bytes] = []
            if size > previous:
                answer = _ask(peer, "checkpoint.consistency", {"from": previous, "to": size})
                try:
                    proof = [base64.b64decode(h, validate=True) for h in answer["hashes"]]
                except (KeyError, TypeError, binascii.Error, ValueError):
                    raise WitnessFailed("checkpoint.consistency: a malformed proof") from None
            try:
                merkle.consistent(previous, size, old_root, checkpoint.root, proof)
            except merkle.ProofError:
                return record_conflict(peer, "fork", size, previous)
            if size == previous and own_witness_vkey() in {
                c.get("vkey") for c in served.get("cosignatures") or () if isinstance(c, dict)
            }:
                return Outcome(peer.url, "unchanged", size, previous)
        signature = _b64(notes.cosign(checkpoint.body, keys.signing_key()))
        _ask(
            peer,
            "checkpoint.cosign",
            {"tree_size": size, "vkey": own_witness_vkey(), "signature": signature},
            expected=201,
        )
        Peer.objects.filter(pk=peer.pk).update(
            witnessed_tree_size=size,
            witnessed_root_hash=_b64(checkpoint.root),
            witnessed_note=served["note"],
            witnessed_at=timezone.now(),
        )
        return Outcome(peer.url, "cosigned", size, previous)
    except WitnessFailed as exc:
        return Outcome(peer.url, "failed", None, previous, str(exc)[:120])


def witness_peers(url: str | None = None) -> list[dict]:
    """Witness every peer (or the one at ``url``); one outcome per peer. Nothing while federation is off.
    The same pass refreshes each peer's offices (``federation.directory``): no periodic job of its own."""
    if not keys.enabled():
        return []
    peers = Peer.objects.all()
    if url is not None:
        peers = peers.filter(url=url.rstrip("/"))
    outcomes = []
    for peer in peers:
        outcomes.append(witness_peer(peer).as_dict())
        directory.refresh_offices_quietly(peer)
    return outcomes


# --- A pass at a peer's request (``checkpoint.announce``), off the request that brought it ----------------

_lock = threading.Lock()
_again: dict[str, bool] = {}  # peer id → another pass was asked for while one runs (this process)


def request_pass(peer_id: str) -> None:
    """Witness one peer soon, after the commit of its ``checkpoint.announce`` (contract §7.4: within 60 s of
    each checkpoint). With a broker, a worker's task; without one, a daemon thread of this process — at most
    one per peer: an announcement arriving while its pass runs asks for one more pass after it, never a second
    thread. A pass is bounded by its three messages' timeouts (``FEDERATION_TIMEOUT_SECONDS`` each). Never
    raises; a pass that does not happen is made up by the hourly one."""
    if broker_enabled():
        from celery import current_app

        try:
            current_app.tasks["federation.tasks.witness_peer"].apply_async(args=[peer_id], retry=False)
            return
        except Exception as exc:  # noqa: BLE001 — broker down: witness from this process instead
            logger.warning("federation witnessing: not handed to the broker (%s)", type(exc).__name__)
    with _lock:
        if peer_id in _again:
            _again[peer_id] = True
            return
        _again[peer_id] = False
    threading.Thread(target=_passes, args=(peer_id,), name="federation-witness", daemon=True).start()


def _passes(peer_id: str) -> None:
    from django.db import connections

    try:
        while True:
            witness_peer_id(peer_id)
            with _lock:
                if not _again.get(peer_id):
                    _again.pop(peer_id, None)
                    return
                _again[peer_id] = False
    finally:
        connections.close_all()  # this thread's own connections


def witness_peer_id(peer_id: str) -> dict | None:
    """One pass for the peer of that id (gone: nothing); never raises — an error is logged by class only."""
    try:
        peer = Peer.objects.filter(pk=peer_id).first()
        if peer is None or not keys.enabled():
            return None
        outcome = witness_peer(peer)
    except Exception as exc:  # noqa: BLE001 — the hourly pass tries again
        logger.warning("federation witnessing: a requested pass failed (%s)", type(exc).__name__)
        return None
    logger.info("federation witnessing: %s %s", peer.url, outcome.result)
    return outcome.as_dict()
