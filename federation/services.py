"""Federation's services: pinning peers, receiving and sending signed messages, keeping the evidence.

The door (``federation.views``) and the commands call these; every refusal and every change of a peer is
audited here (``audit.recorder``), with URLs, causes and fingerprints only — never a body.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import requests
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Institution
from audit.recorder import record
from notifications.apps import wake_relay
from notifications.dispatch import broker_enabled
from plumbing.problems import PROBLEM_CONTENT_TYPE, ProblemError, problem_body

from . import handlers, keys, protocol, selectors, throttling, transport
from .cards import Card, CardError, parse_card, raw_public
from .models import Direction, Message, Outgoing, Peer

logger = logging.getLogger(__name__)
ENVELOPE_FIELDS = {"type", "referral", "payload", "sealed"}
JSON = "application/json"


class PeerRefused(ValueError):
    """A card that cannot be pinned (the message says why; it never echoes the card)."""


class SealedBodyRefused(ProblemError):
    """A signed message whose sealed body does not open with this node's key (a signed 400, audited)."""

    def __init__(self):
        super().__init__("validation-error", 400, "The sealed body does not open with this node's key.")


class PeerUnavailable(RuntimeError):
    """The peer could not be reached, or its answer did not verify (nothing was learnt from it).

    ``cause`` is a class of error for counters and logs (``ConnectionError``, ``answer-bad-signature``…):
    never a text from the peer."""

    def __init__(self, message: str, *, cause: str = "unavailable", retry_after: float = 0):
        super().__init__(message)
        self.cause = cause
        self.retry_after = retry_after  # seconds the peer asked to wait (a 429's Retry-After), else 0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A peer's verified answer to a message this node sent."""

    status: int
    payload: dict  # the opened payload, or the problem body
    message_id: str
    sealed: bool


def local_institution_codes() -> list[str]:
    """The institutions this node hosts (not the remote ones its peers host)."""
    return sorted(Institution.objects.local().values_list("code", flat=True))


def _sync_remote_institutions(peer: Peer) -> None:
    """The peer's institutions become remote institutions here (contract §7.4): rows with ``node`` = the
    peer's URL, created on first pinning, kept (with their referrals) when a later card drops a code."""
    for code in peer.institutions:
        institution, created = Institution.objects.get_or_create(
            code=code, defaults={"name": code, "node": peer.url}
        )
        if not created and institution.node != peer.url:
            institution.node = peer.url
            institution.save(update_fields=["node"])


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- Peers -------------------------------------------------------------------------------------------


def own_card() -> Card:
    return keys.own_card(local_institution_codes())


@transaction.atomic
def pin_peer(text: str, *, replace: bool = False) -> tuple[str, Peer]:
    """Pin a peer from its card (contract §7.4). Returns ``(outcome, peer)`` with outcome ``added``,
    ``unchanged``, ``updated`` (other institutions) or ``replaced`` (other keys, with ``replace``);
    PeerRefused otherwise (a bad self-signature, other keys without ``replace``, this node's own card, an
    institution code this node or another peer hosts)."""
    try:
        card = parse_card(text.strip())
    except CardError as exc:
        raise PeerRefused(f"not a valid card: {exc}") from None
    own_url = getattr(settings, "NODE_URL", "")
    if card.url == own_url or (
        len(getattr(settings, "NODE_SIGNING_KEY", b"")) == 32
        and card.signing_key == raw_public(keys.signing_key())
    ):
        raise PeerRefused("this is this node's own card: a node is not its own peer")
    local = set(local_institution_codes()) & set(card.institutions)
    if local:
        raise PeerRefused("institutions hosted by this node: " + ", ".join(sorted(local)))
    for other in Peer.objects.exclude(url=card.url).select_for_update():
        clash = set(other.institutions) & set(card.institutions)
        if clash:
            raise PeerRefused(
                f"institutions already hosted by the peer {other.url}: " + ", ".join(sorted(clash))
            )
    peer = Peer.objects.select_for_update().filter(url=card.url).first()
    fields = {
        "signing_key": protocol.b64(card.signing_key),
        "encryption_key": protocol.b64(card.encryption_key),
        "institutions": sorted(card.institutions),
        "fingerprint": card.fingerprint,
        "card": card.line(),
    }
    now = timezone.now()
    if peer is None:
        peer = Peer.objects.create(url=card.url, added_at=now, updated_at=now, **fields)
        outcome = "added"
    elif (peer.signing_key, peer.encryption_key) != (fields["signing_key"], fields["encryption_key"]):
        if not replace:
            raise PeerRefused(
                "this URL is pinned with other keys: compare the fingerprints with the peer's operator, "
                "then use --replace"
            )
        peer.previous_cards = [*peer.previous_cards, peer.card]
        outcome = "replaced"
    elif peer.institutions != fields["institutions"]:
        outcome = "updated"
    else:
        return "unchanged", peer
    if outcome != "added":
        for name, value in fields.items():
            setattr(peer, name, value)
        peer.updated_at = now
        peer.save()
    _sync_remote_institutions(peer)
    record(
        action=f"federation.peer_{outcome}",
        actor_type="system",
        actor_label="manage.py federation_peer_add",
        object_type="peer",
        object_id=str(peer.pk),
        institutions=local_institution_codes(),
        detail={"node": peer.url, "fingerprint": peer.fingerprint, "remote_institutions": peer.institutions},
    )
    return outcome, peer


#: The peer whose message this node is answering (read at its verification), while its handler runs.
_answering: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("federation_answering", default=None)


def peer_for_url(url: str) -> Peer | None:
    """The peer pinned for ``url``, or None: while answering that peer's message, the row its verification
    read (no second look-up within the message); else from the database."""
    if not url:
        return None
    answering = _answering.get()
    if answering is not None and answering.url == url:
        return answering
    return Peer.objects.filter(url=url).first()


class _PinnedKeys:
    """``key_for`` of the verification: the pinned signing key of a URL; keeps the peer it read."""

    def __init__(self):
        self.peers: dict[str, Peer] = {}

    def __call__(self, url: str) -> bytes | None:
        peer = Peer.objects.filter(url=url).first()
        if peer is None:
            return None
        self.peers[url] = peer
        return protocol.unb64(peer.signing_key, length=32)


# --- Receiving (the door) ------------------------------------------------------------------------------


def _problem(status: int, slug: str, detail: str, errors: dict | None = None) -> tuple[int, dict, bytes]:
    return (
        status,
        {"content-type": PROBLEM_CONTENT_TYPE},
        _canonical(problem_body(slug, status, detail, errors)),
    )


def record_refused(*, cause: str, path: str, claimed_node: str = "", ip=None, request_id: str = "") -> None:
    """``federation.refused``: the cause and the path, and the node the message claimed to come from."""
    detail = {"cause": cause, "path": path[:200]}
    if claimed_node:
        detail["claimed_node"] = claimed_node[:200]
    record(
        action="federation.refused",
        actor_type="anonymous",
        outcome="denied",
        object_type="federation_message",
        institutions=local_institution_codes(),
        detail=detail,
        ip=ip,
        request_id=request_id,
    )


def _claimed_node(headers: dict[str, str]) -> str:
    value = headers.get("signature-input", "")
    start = value.find('keyid="')
    if start < 0:
        return ""
    end = value.find('"', start + 7)
    claimed = value[start + 7 : end if end > 0 else None]
    return claimed if claimed.isascii() and claimed.isprintable() else ""


def receive(*, method: str, path: str, headers: dict, body: bytes, ip=None, request_id: str = "") -> Answer:
    """Verify, then answer a message from a peer: refused (401, unsigned answer, audited), a replay (its
    first answer), or a new message dispatched to its handler (a signed answer, stored with the message)."""
    own = keys.node_url()
    headers = {name.lower(): value for name, value in headers.items()}
    pinned = _PinnedKeys()
    try:
        verified = protocol.verify_request(
            method=method,
            path=path,
            headers=headers,
            body=body,
            key_for=pinned,
            recipient=own,
            now=int(time.time()),
        )
    except protocol.Refused as exc:
        # Always 401 (contract §7.4: any path without a valid node signature); past the address's limit the
        # refusal is no longer recorded one by one — a flood must not multiply audit events.
        window = throttling.refused_request(ip)
        if window is not None and not window.allowed:
            if window.first_refused:  # one event per window for the rest
                record_refused(cause="rate-limited", path=path, ip=ip, request_id=request_id)
        else:
            record_refused(
                cause=exc.cause, path=path, claimed_node=_claimed_node(headers), ip=ip, request_id=request_id
            )
        status, answer_headers, answer_body = _problem(
            401, "not-authenticated", "A message to this node must be signed by a pinned peer."
        )
        return Answer(status, answer_headers, answer_body)
    peer = pinned.peers[verified.signer]
    request = protocol.RequestParts(method, path, headers)
    batch = None
    if path == keys.batch_path(own) and method == "POST":
        batch = _batch_items(body)
        if batch is None:
            return _signed(request, peer, *_problem(400, "validation-error", "Not a batch of messages."))
    window = throttling.verified_message(peer, len(batch) if batch else 1)
    if window is not None and not window.allowed:
        if window.first_refused:
            record_refused(
                cause="rate-limited", path=path, claimed_node=peer.url, ip=ip, request_id=request_id
            )
        throttled = _throttled(window)
        return _signed(request, peer, throttled.status, throttled.headers, throttled.body)
    if batch is not None:
        return _receive_batch(peer, request, batch, ip=ip, request_id=request_id)
    if path != keys.messages_path(own) or method != "POST":
        return _signed(request, peer, *_problem(404, "not-found", "Not found."))
    return _receive_one(peer, verified, request, body, ip=ip, request_id=request_id)


def _receive_one(
    peer: Peer, verified, request, body: bytes, *, ip, request_id, contact=True, known: dict | None = None
) -> Answer:
    """A verified message: its first answer when it was received before, else stored and dispatched.
    ``known``: the messages already received among a batch's, by id (read once for the batch)."""
    method, path, headers = request.method, request.path, request.headers
    # A message alone: a message id seen before is rare (a retry whose first answer was lost), and the row's
    # unique key finds it (IntegrityError below) rather than a look-up before every message. In a batch, the
    # batch's known messages were read at once.
    row = known.get(verified.message_id) if known is not None else None
    stored = _stored_answer(peer, verified.message_id, headers, row=row) if row is not None else None
    if stored is not None:
        if contact:
            _contact(peer)
        return stored
    try:
        with transaction.atomic():
            if contact:
                _contact(peer)  # in the message's transaction: one write lock, one commit
            row = Message.objects.create(
                direction=Direction.RECEIVED,
                peer=peer,
                message_id=verified.message_id,
                type="?",
                peer_signing_key=peer.signing_key,
                request_method=method,
                request_path=path,
                request_headers=_signed_headers(headers),
                request_body=body,
            )
            answer = _dispatch(row, peer, request, body, ip=ip, request_id=request_id)
    except IntegrityError:
        # A message id this node has (a replay), or the same message arriving twice at once (the first
        # committed its answer meanwhile): the first answer.
        stored = _stored_answer(peer, verified.message_id, headers)
        if stored is None:
            raise
        if contact:
            _contact(peer)
        return stored
    return answer


def _throttled(window) -> Answer:
    """429 ``throttled`` with ``Retry-After``: nothing of the message was read or kept (send it later)."""
    status, headers, body = _problem(
        429, "throttled", "Too many messages: send them again after Retry-After."
    )
    return Answer(status, {**headers, "retry-after": str(window.retry_after)}, body)


#: The most messages one batch may carry (``/federation/v1/batch/``); its body stays under the door's 1 MiB.
BATCH_MAX_MESSAGES = 100
#: What a batch's messages' bodies may add up to, so that the batch (base64, headers) stays under 1 MiB.
BATCH_MAX_BODY_BYTES = 600 * 1024


def _batch_items(body: bytes) -> list[tuple[dict[str, str], bytes]] | None:
    """``{"messages": [{"headers": {…}, "body": base64}, …]}`` → ``[(headers, body)]``; None: malformed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or set(data) != {"messages"} or not isinstance(data["messages"], list):
        return None
    if not 1 <= len(data["messages"]) <= BATCH_MAX_MESSAGES:
        return None
    items = []
    for item in data["messages"]:
        if not isinstance(item, dict) or set(item) != {"headers", "body"}:
            return None
        headers, inner = item["headers"], item["body"]
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            return None
        try:
            raw = protocol.unb64(inner) if isinstance(inner, str) else None
        except ValueError:
            raw = None
        if raw is None:
            return None
        items.append(({k.lower(): v for k, v in headers.items()}, raw))
    return items


def _answer_item(answer: Answer) -> dict:
    return {"status": answer.status, "headers": answer.headers, "body": protocol.b64(answer.body)}


def _receive_batch(peer: Peer, request, items: list[tuple[dict, bytes]], *, ip, request_id) -> Answer:
    """A batch (``/federation/v1/batch/``): each message in it is exactly the request it would be alone —
    signed by this same peer for ``/federation/v1/messages/`` — and gets exactly the answer it would get
    alone (its own signed answer, its first answer when replayed; a refused one its unsigned 401 and
    ``federation.refused``), in the batch's order. One transaction for the batch, a savepoint per message: a
    message that fails unexpectedly is answered 500, unsigned (its sender tries it again), and loses nothing
    of the others."""
    own = keys.node_url()
    path = keys.messages_path(own)
    now = int(time.time())
    pinned = protocol.unb64(peer.signing_key, length=32)
    checked: list[protocol.Verified | Answer] = []
    for headers, inner in items:
        try:
            checked.append(
                protocol.verify_request(
                    method="POST",
                    path=path,
                    headers=headers,
                    body=inner,
                    key_for=lambda url: pinned if url == peer.url else None,  # its sender's messages only
                    recipient=own,
                    now=now,
                )
            )
        except protocol.Refused as exc:
            record_refused(
                cause=exc.cause, path=path, claimed_node=_claimed_node(headers), ip=ip, request_id=request_id
            )
            checked.append(
                Answer(
                    *_problem(
                        401, "not-authenticated", "A message to this node must be signed by a pinned peer."
                    )
                )
            )
    ids = [verified.message_id for verified in checked if isinstance(verified, protocol.Verified)]
    answers = []
    _contact(peer)  # before the batch's transaction: concurrent batches do not queue on the peer's row
    with transaction.atomic():
        received = Message.objects.filter(direction=Direction.RECEIVED, peer=peer, message_id__in=ids)
        known = {str(row.message_id): row for row in received}
        for (headers, inner), verified in zip(items, checked, strict=True):
            if isinstance(verified, Answer):
                answers.append(verified)
                continue
            one = protocol.RequestParts("POST", path, headers)
            try:
                with transaction.atomic():
                    answer = _receive_one(
                        peer, verified, one, inner, ip=ip, request_id=request_id, contact=False, known=known
                    )
            except Exception as exc:  # noqa: BLE001 — this message only: unanswered, its sender retries it
                logger.warning(
                    "federation batch: message %s failed (%s)", verified.message_id, type(exc).__name__
                )
                answer = Answer(
                    *_problem(500, "server-error", "This message could not be processed; send it again.")
                )
            answers.append(answer)
    payload = _canonical({"answers": [_answer_item(answer) for answer in answers]})
    return _signed(request, peer, 200, {"content-type": JSON}, payload)


def _signed_headers(headers: dict[str, str]) -> dict[str, str]:
    names = ("content-digest", protocol.MESSAGE_ID, protocol.RECIPIENT, "signature-input", "signature")
    return {name: headers[name] for name in names if name in headers}


def _stored_answer(peer: Peer, message_id: str, headers: dict[str, str], *, row=None) -> Answer | None:
    if row is None:
        row = Message.objects.filter(direction=Direction.RECEIVED, peer=peer, message_id=message_id).first()
    if row is None:
        return None
    if row.request_headers.get("content-digest") != headers["content-digest"]:
        request = protocol.RequestParts("POST", row.request_path, headers)
        return _signed(
            request, peer, *_problem(409, "message-id-reused", "This message id came with another body.")
        )
    body = bytes(row.response_body) if row.response_body is not None else b""
    return Answer(row.response_status, dict(row.response_headers), body)


def _open_envelope(row: Message, peer: Peer, body: bytes) -> handlers.Incoming:
    own = keys.node_url()
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        raise ProblemError("validation-error", 400, "The body is not JSON.") from None
    if not isinstance(envelope, dict) or not set(envelope) <= ENVELOPE_FIELDS:
        raise ProblemError("validation-error", 400, "Unknown fields in the envelope.")
    kind = envelope.get("type")
    referral = envelope.get("referral")
    if isinstance(kind, str) and len(kind) <= 64:
        row.type = kind
    if not isinstance(kind, str) or kind not in handlers.REGISTRY:
        raise ProblemError(
            "validation-error", 400, "Unknown message type.", {"type": ["Unknown message type."]}
        )
    try:
        referral = str(uuid.UUID(referral)) if referral is not None else None
    except (ValueError, TypeError, AttributeError):
        raise ProblemError(
            "validation-error", 400, "Invalid referral id.", {"referral": ["Not a UUID."]}
        ) from None
    row.referral_id = referral
    if ("payload" in envelope) == ("sealed" in envelope):
        raise ProblemError("validation-error", 400, "An envelope carries either payload or sealed.")
    sealed = "sealed" in envelope
    if sealed:
        try:
            ciphertext = protocol.unb64(envelope["sealed"]) if isinstance(envelope["sealed"], str) else None
        except ValueError:
            ciphertext = None
        try:
            if ciphertext is None:
                raise protocol.Refused("undecryptable")
            info = protocol.request_info(peer.url, own, str(row.message_id))
            payload = json.loads(protocol.open_sealed(ciphertext, keys.encryption_key(), info=info))
        except (protocol.Refused, ValueError, RecursionError):
            raise SealedBodyRefused() from None
    else:
        payload = envelope["payload"]
    if not isinstance(payload, dict):
        raise ProblemError("validation-error", 400, "The payload is not a JSON object.")
    return handlers.Incoming(peer, str(row.message_id), kind, referral, payload, sealed)


def _dispatch(row: Message, peer: Peer, request, body: bytes, *, ip, request_id) -> Answer:
    answering = _answering.set(peer)
    try:
        with transaction.atomic():
            incoming = _open_envelope(row, peer, body)
            outcome = handlers.REGISTRY[incoming.type](incoming)
    except ProblemError as exc:
        if isinstance(exc, SealedBodyRefused):
            record_refused(
                cause="undecryptable", path=request.path, claimed_node=peer.url, ip=ip, request_id=request_id
            )
        status, headers, answer_body = _problem(exc.status_code, exc.slug, exc.detail, exc.errors)
    else:
        status, headers = outcome.status, {"content-type": JSON}
        if outcome.sealed:
            info = protocol.response_info(keys.node_url(), peer.url, str(row.message_id))
            sealed = protocol.seal(
                _canonical(outcome.payload), protocol.unb64(peer.encryption_key), info=info
            )
            answer_body = _canonical({"sealed": protocol.b64(sealed)})
        else:
            answer_body = _canonical({"payload": outcome.payload})
    finally:
        _answering.reset(answering)
    answer = _signed(request, peer, status, headers, answer_body)
    row.response_status = answer.status
    row.response_headers = answer.headers
    row.response_body = answer.body
    row.answered_at = timezone.now()
    row.save(
        update_fields=[
            "type",
            "referral_id",
            "response_status",
            "response_headers",
            "response_body",
            "answered_at",
        ]
    )
    return answer


def _signed(request, peer: Peer, status: int, headers: dict, body: bytes) -> Answer:
    signed = protocol.sign_response(
        key=keys.signing_key(),
        responder=keys.node_url(),
        request=request,
        status=status,
        body=body,
        created=int(time.time()),
    )
    return Answer(status, {**headers, **signed}, body)


# --- Sending -------------------------------------------------------------------------------------------


def send(
    peer: Peer,
    message_type: str,
    payload: dict,
    *,
    referral_id: str | None = None,
    sealed: bool = False,
    message_id: str | None = None,
) -> Reply:
    """Sign (and, ``sealed``, encrypt) one message, POST it now, verify the answer, keep both as evidence.

    PeerUnavailable when the peer cannot be reached, refuses the message unsigned, or answers with a
    signature that does not verify (the peer's failures counter goes up; nothing of the answer is used).
    For a message that must arrive even when the peer is down, use :func:`enqueue` (the outbox).
    """
    fresh = message_id is None
    message_id = message_id or protocol.new_message_id()
    body = envelope_body(
        peer, message_type, payload, referral_id=referral_id, sealed=sealed, message_id=message_id
    )
    row = post_message(
        peer,
        message_id=message_id,
        message_type=message_type,
        referral_id=referral_id,
        body=body,
        new=fresh,
    )
    return open_reply(peer, row, bytes(row.response_body))


def envelope_body(
    peer: Peer, message_type: str, payload: dict, *, referral_id: str | None, sealed: bool, message_id: str
) -> bytes:
    """The envelope as it is signed: the payload in clear, or sealed to the peer (HPKE bound to the sender,
    the recipient and the message id)."""
    envelope: dict = {"type": message_type, "referral": referral_id}
    if sealed:
        info = protocol.request_info(keys.node_url(), peer.url, message_id)
        envelope["sealed"] = protocol.b64(
            protocol.seal(_canonical(payload), protocol.unb64(peer.encryption_key), info=info)
        )
    else:
        envelope["payload"] = payload
    return _canonical(envelope)


#: What a sent message's evidence gains when its answer is verified (one message, or a batch's in bulk).
ANSWERED_FIELDS = [
    "request_headers",
    "peer_signing_key",
    "response_status",
    "response_headers",
    "response_body",
    "answered_at",
]


def post_message(
    peer: Peer,
    *,
    message_id: str,
    message_type: str,
    referral_id: str | None,
    body: bytes,
    new: bool = False,
) -> Message:
    """Sign ``body`` now (a fresh ``created``), POST it, verify the answer, keep both as evidence; returns
    the evidence row, answered. PeerUnavailable as for :func:`send`.

    The same message id and body may be posted again (the outbox's retries): the peer answers a copy with
    its first answer, and the evidence keeps the signed headers of the attempt that was answered. ``new``:
    the message id was made for this call (no row can hold it yet): the evidence row is written once, after
    the answer (or unanswered, when there is none), instead of before the POST and again after it.
    """
    own = keys.node_url()
    path = keys.messages_path(peer.url)
    headers = protocol.sign_request(
        key=keys.signing_key(),
        sender=own,
        recipient=peer.url,
        method="POST",
        path=path,
        body=body,
        message_id=message_id,
        created=int(time.time()),
    )
    fields = {
        "type": message_type,
        "referral_id": referral_id,
        "peer_signing_key": peer.signing_key,
        "request_method": "POST",
        "request_path": path,
        "request_headers": headers,
        "request_body": body,
    }
    if new:
        row = Message(direction=Direction.SENT, peer=peer, message_id=message_id, **fields)
    else:
        row, _created = Message.objects.get_or_create(
            direction=Direction.SENT, peer=peer, message_id=message_id, defaults=fields
        )
    try:
        response = _post(peer, body, {**headers, "content-type": JSON})
        if response.status_code == 429:
            raise _throttled_by_peer(response)
        response_headers = _verified_answer(peer, protocol.RequestParts("POST", path, headers), response)
    except PeerUnavailable:
        if new:
            row.save(force_insert=True)  # the attempt is kept, unanswered, as every message sent
        raise
    kept = {
        name: response_headers[name]
        for name in ("content-type", "content-digest", "signature-input", "signature")
        if name in response_headers
    }
    now = timezone.now()
    row.request_headers = headers  # the attempt that was answered (an earlier one may never have arrived)
    row.peer_signing_key = peer.signing_key
    row.response_status = response.status_code
    row.response_headers = kept
    row.response_body = response.content
    row.answered_at = now
    if new:
        row.save(force_insert=True)
    else:
        row.save(update_fields=ANSWERED_FIELDS)
    _contact(peer, answered=True)
    return row


class BatchUnsupported(PeerUnavailable):
    """The peer answered a batch with a verified 404: a node without ``/federation/v1/batch/``. Nothing in
    the batch ran; its messages go one by one."""

    def __init__(self):
        super().__init__("the peer takes no batches", cause="batch-unsupported")


@dataclass(frozen=True)
class Posting:
    """One message of a batch (:func:`post_batch`), as :func:`post_message` takes it."""

    message_id: str
    message_type: str
    referral_id: str | None
    body: bytes


def _verified_answer(peer: Peer, request, response, public_key: bytes | None = None) -> dict[str, str]:
    """The peer's answer to ``request``, its signature and binding verified → its headers (lower-cased);
    an answer that does not verify counts as a failure of the peer (PeerUnavailable)."""
    response_headers = {name.lower(): value for name, value in response.headers.items()}
    try:
        protocol.verify_response(
            request=request,
            status=response.status_code,
            headers=response_headers,
            body=response.content,
            public_key=public_key or protocol.unb64(peer.signing_key, length=32),
            responder=peer.url,
        )
    except protocol.Refused as exc:
        _failed(peer)
        raise PeerUnavailable(
            f"the peer's answer was refused ({exc.cause}, HTTP {response.status_code})",
            cause=f"answer-{exc.cause}"[:64],
        ) from None
    return response_headers


def _throttled_by_peer(response) -> PeerUnavailable:
    """The peer's rate limit: not an answer to the message (nothing was kept there), and not a failure of the
    peer — the message is simply posted again later, after Retry-After (signed or not: a forged 429 can only
    delay, as dropping the request would)."""
    return PeerUnavailable(
        "the peer asked to send again later (HTTP 429)",
        cause="throttled",
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def post_batch(peer: Peer, postings: list[Posting]) -> list[Message | PeerUnavailable]:
    """Several messages in one request (``POST {peer}/federation/v1/batch/``), each signed now exactly as
    :func:`post_message` signs it alone, the whole signed too; each message's own signed answer verified
    against its own request and kept with it as evidence. Returns, in order, the evidence row (answered) or
    the PeerUnavailable of each message (its answer did not verify: unsigned, for one the peer failed on).

    Raises PeerUnavailable when the batch itself gets no verified answer (nothing of it is used: every
    message is tried again), BatchUnsupported when the peer answers it with a verified 404.
    """
    own = keys.node_url()
    path = keys.messages_path(peer.url)
    key = keys.signing_key()
    created = int(time.time())
    signed = [
        protocol.sign_request(
            key=key,
            sender=own,
            recipient=peer.url,
            method="POST",
            path=path,
            body=posting.body,
            message_id=posting.message_id,
            created=created,
        )
        for posting in postings
    ]
    ids = [posting.message_id for posting in postings]
    existing = Message.objects.filter(direction=Direction.SENT, peer=peer, message_id__in=ids)
    known = {str(message_id) for message_id in existing.values_list("message_id", flat=True)}
    Message.objects.bulk_create(
        [
            Message(
                direction=Direction.SENT,
                peer=peer,
                message_id=posting.message_id,
                type=posting.message_type,
                referral_id=posting.referral_id,
                peer_signing_key=peer.signing_key,
                request_method="POST",
                request_path=path,
                request_headers=headers,
                request_body=posting.body,
            )
            for posting, headers in zip(postings, signed, strict=True)
            if posting.message_id not in known
        ],
        ignore_conflicts=True,
    )
    rows = {str(row.message_id): row for row in existing.all()}
    body = _canonical(
        {
            "messages": [
                {"headers": headers, "body": protocol.b64(posting.body)}
                for posting, headers in zip(postings, signed, strict=True)
            ]
        }
    )
    batch_path = keys.batch_path(peer.url)
    headers = protocol.sign_request(
        key=key,
        sender=own,
        recipient=peer.url,
        method="POST",
        path=batch_path,
        body=body,
        message_id=protocol.new_message_id(),
        created=created,
    )
    response = _post(peer, body, {**headers, "content-type": JSON}, url=keys.batch_url(peer.url))
    if response.status_code == 429:  # the peer's rate limit, as for one message: every message later
        raise _throttled_by_peer(response)
    public_key = protocol.unb64(peer.signing_key, length=32)
    _verified_answer(peer, protocol.RequestParts("POST", batch_path, headers), response, public_key)
    _contact(peer, answered=True)  # a verified answer: the peer is up
    if response.status_code == 404:
        raise BatchUnsupported()
    answers = _batch_answers(response.content) if response.status_code == 200 else None
    if answers is None or len(answers) != len(postings):
        raise PeerUnavailable(
            f"the peer's batch answer is not one answer per message (HTTP {response.status_code})",
            cause=f"batch-{response.status_code}",
        )
    now = timezone.now()
    results: list[Message | PeerUnavailable] = []
    answered = []
    for posting, request_headers, (status, answer_headers, answer_body) in zip(
        postings, signed, answers, strict=True
    ):
        try:
            protocol.verify_response(
                request=protocol.RequestParts("POST", path, request_headers),
                status=status,
                headers=answer_headers,
                body=answer_body,
                public_key=public_key,
                responder=peer.url,
            )
        except protocol.Refused as exc:
            results.append(
                PeerUnavailable(
                    f"the peer's answer was refused ({exc.cause}, HTTP {status})",
                    cause=f"answer-{exc.cause}"[:64],
                )
            )
            continue
        row = rows[posting.message_id]
        row.request_headers = request_headers
        row.peer_signing_key = peer.signing_key
        row.response_status = status
        row.response_headers = {
            name: answer_headers[name]
            for name in ("content-type", "content-digest", "signature-input", "signature")
            if name in answer_headers
        }
        row.response_body = answer_body
        row.answered_at = now
        answered.append(row)
        results.append(row)
    if answered:
        Message.objects.bulk_update(answered, ANSWERED_FIELDS)
    if len(answered) < len(postings):
        _failed(peer)
    return results


def _batch_answers(content: bytes) -> list[tuple[int, dict[str, str], bytes]] | None:
    """``{"answers": [{"status", "headers", "body": base64}, …]}`` → ``[(status, headers, body)]``."""
    try:
        data = json.loads(content)
        answers = []
        for item in data["answers"]:
            status, headers = item["status"], item["headers"]
            if not isinstance(status, int) or not isinstance(headers, dict):
                return None
            headers = {str(name).lower(): str(value) for name, value in headers.items()}
            answers.append((status, headers, protocol.unb64(item["body"])))
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
        return None
    return answers


def _contact(peer: Peer, *, answered: bool = False) -> None:
    """A verified message from, or answer by, the peer: its last contact (written at most once a second
    per peer, and at once after failures). The first contact after a quiet second also makes what waits
    in the outbox for the peer due now: it is up, no backoff is left to sit out — but for a message the peer
    throttled (429): it asked for that wait itself."""
    now = timezone.now()
    since = now - timedelta(seconds=1)
    if (
        peer.last_contact_at is not None
        and peer.last_contact_at >= since
        and not (answered and peer.failures)
    ):
        return  # the row read with the peer (in this request) says it was written within the second
    quiet = Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=since)
    changes = {"last_contact_at": now}
    if answered:
        quiet |= Q(failures__gt=0)
        changes["failures"] = 0
    if Peer.objects.filter(pk=peer.pk).filter(quiet).update(**changes):
        Outgoing.objects.filter(
            peer=peer, state=Outgoing.State.WAITING, next_attempt_at__isnull=False
        ).exclude(last_error="throttled").update(next_attempt_at=None)
        for name, value in changes.items():
            setattr(peer, name, value)


def _post(peer: Peer, body: bytes, headers: dict, *, url: str | None = None):
    try:
        return transport.post(url or keys.messages_url(peer.url), data=body, headers=headers)
    except requests.RequestException as exc:
        _failed(peer)
        raise PeerUnavailable(
            f"the peer could not be reached ({type(exc).__name__})", cause=type(exc).__name__[:64]
        ) from None


def _retry_after(value) -> float:
    """A ``Retry-After`` in seconds (an HTTP date or nonsense → 0: the outbox's own backoff applies)."""
    try:
        return max(0.0, float(str(value).strip()))
    except (TypeError, ValueError):
        return 0.0


def _failed(peer: Peer) -> None:
    Peer.objects.filter(pk=peer.pk).update(failures=F("failures") + 1, last_failure_at=timezone.now())
    peer.failures += 1  # the next answer from it resets the counter (``_contact``)


def open_reply(peer: Peer, row: Message, content: bytes) -> Reply:
    """The peer's verified answer kept in ``row`` as a :class:`Reply`: its payload in clear, or opened with
    this node's key when sealed (PeerUnavailable when it does not open)."""
    try:
        data = json.loads(content)
    except ValueError:
        data = {}
    if isinstance(data, dict) and isinstance(data.get("sealed"), str):
        info = protocol.response_info(peer.url, keys.node_url(), str(row.message_id))
        try:
            opened = json.loads(
                protocol.open_sealed(protocol.unb64(data["sealed"]), keys.encryption_key(), info=info)
            )
        except (protocol.Refused, ValueError, RecursionError):
            raise PeerUnavailable(
                "the peer's signed answer is sealed but does not open with this node's key",
                cause="answer-undecryptable",
            ) from None
        return Reply(
            row.response_status, opened if isinstance(opened, dict) else {}, str(row.message_id), True
        )
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        return Reply(row.response_status, data["payload"], str(row.message_id), False)
    return Reply(row.response_status, data if isinstance(data, dict) else {}, str(row.message_id), False)


def enqueue(
    peer: Peer,
    message_type: str,
    payload: dict,
    *,
    referral_id: str | None = None,
    object_id=None,
    sealed: bool = False,
    hand_over: bool = True,
) -> Outgoing:
    """Put one message in the outbox (contract §7.4: delivered even when the peer is down, once).

    Call it inside the transaction of the change that causes the message: the row commits or rolls back
    with it. The body is built now — sealed to the peer's current key when ``sealed`` (always, for personal
    data) — and the delivery (``federation.delivery``) signs and posts it after the commit: at once with a
    worker, within one relay pass without one, and again with backoff while the peer is down.
    ``object_id`` names what the message carries for its answer's hook (``delivery.on_answered``).
    """
    if message_type not in handlers.REGISTRY:
        raise ValueError("unknown message type")
    message_id = protocol.new_message_id()
    body = envelope_body(
        peer, message_type, payload, referral_id=referral_id, sealed=sealed, message_id=message_id
    )
    row = Outgoing.objects.create(
        message_id=message_id,
        peer=peer,
        type=message_type,
        referral_id=referral_id,
        object_id=object_id,
        sealed=sealed,
        body=body,
    )
    peer_id = str(peer.pk)
    if hand_over:
        transaction.on_commit(lambda: deliver_soon(peer_id))
    return row


def deliver_soon(peer_id: str | None = None) -> None:
    """With a broker, ask a worker to deliver this peer's outbox (every peer's: None) now; never raises
    (beat's pass, or the embedded relay's, delivers what the broker misses)."""
    if not broker_enabled():
        wake_relay("federation-deliver-outbox")  # embedded mode: this process's relay delivers it now
        return
    try:
        current_app.tasks["federation.tasks.deliver_outbox"].apply_async(args=[peer_id], retry=False)
    except Exception as exc:  # noqa: BLE001 — broker down: the periodic pass delivers it
        logger.warning("federation outbox: not handed to the broker (%s)", type(exc).__name__)


# --- Status and evidence -------------------------------------------------------------------------------


def status_rows() -> list[dict]:
    """One row per peer (``federation.selectors.peer_rows``): what ``federation_status`` prints."""
    return selectors.peer_rows()


def _b64_or_none(value) -> str | None:
    return protocol.b64(bytes(value)) if value is not None else None


def evidence_line(message: Message, node: str) -> dict:
    return {
        "direction": message.direction,
        "node": node,
        "peer": message.peer.url,
        "message_id": str(message.message_id),
        "type": message.type,
        "referral": str(message.referral_id) if message.referral_id else None,
        "recorded_at": message.created_at.isoformat(),
        "request": {
            "method": message.request_method,
            "path": message.request_path,
            "headers": message.request_headers,
            "body": _b64_or_none(message.request_body),
        },
        "response": (
            {
                "status": message.response_status,
                "headers": message.response_headers,
                "body": _b64_or_none(message.response_body),
            }
            if message.response_status is not None
            else None
        ),
    }


def evidence(referral_id: str):
    """Every message sent or received about one referral, oldest first, as evidence lines."""
    node = getattr(settings, "NODE_URL", "")
    for message in Message.objects.filter(referral_id=referral_id).select_related("peer").iterator():
        yield evidence_line(message, node)
