"""Peers (pinned cards) and the messages exchanged with them, kept as signed (contract §7.4)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Peer(models.Model):
    """Another node, pinned by its card: its URL, its public keys, the institutions it hosts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.CharField(max_length=200, unique=True)
    signing_key = models.CharField(max_length=44)  # standard base64 of the Ed25519 public key
    encryption_key = models.CharField(max_length=44)  # standard base64 of the X25519 public key
    institutions = models.JSONField(default=list)  # the codes it hosts: remote institutions here
    fingerprint = models.CharField(max_length=39)
    card = models.TextField()  # the card as pinned (its self-signature still verifies)
    #: Cards this peer had before a ``--replace``, oldest first: evidence signed with them stays checkable.
    previous_cards = models.JSONField(default=list)
    added_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_contact_at = models.DateTimeField(null=True, blank=True)  # last verified message either way
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed sends since the last contact
    # Witnessing (contract §7.4, ``federation.witnessing``): the peer's audit-log verifier key, pinned on
    # first contact from its signed answer (the node key vouches for it), and the last checkpoint of that
    # log this node verified and cosigned; a checkpoint inconsistent with it is refused.
    audit_vkey = models.CharField(max_length=255, blank=True)
    witnessed_tree_size = models.BigIntegerField(null=True, blank=True)
    witnessed_root_hash = models.CharField(max_length=44, blank=True)
    witnessed_note = models.TextField(blank=True)
    witnessed_at = models.DateTimeField(null=True, blank=True)
    checkpoint_conflict_at = models.DateTimeField(null=True, blank=True)  # the last refusal (a fork)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url


class Direction(models.TextChoices):
    SENT = "sent"
    RECEIVED = "received"


class Message(models.Model):
    """One message sent to or received from a peer, with its answer, exactly as signed.

    Received messages are also the replay store: a message id seen again gets the answer kept here.
    """

    direction = models.CharField(max_length=8, choices=Direction.choices)
    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="messages")
    message_id = models.UUIDField()
    type = models.CharField(max_length=64)
    referral_id = models.UUIDField(null=True, blank=True, db_index=True)
    #: The peer's signing key (standard base64) at the time: a rotation leaves the evidence checkable.
    peer_signing_key = models.CharField(max_length=44)
    request_method = models.CharField(max_length=8)
    request_path = models.CharField(max_length=200)
    request_headers = models.JSONField(default=dict)  # lowercase names, values as signed
    request_body = models.BinaryField(null=True)  # null once destroyed (the signed digest stays)
    response_status = models.PositiveSmallIntegerField(null=True)  # null: no verified answer (yet)
    response_headers = models.JSONField(default=dict)
    response_body = models.BinaryField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True)
    body_destroyed_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["direction", "peer", "message_id"], name="federation_message_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.type} {self.message_id}"


class Outgoing(models.Model):
    """The outbox: one message waiting to be delivered to a peer (contract §7.4, "nothing lost").

    Written by ``federation.services.enqueue`` in the same transaction as the change that causes it, so it
    commits or rolls back with it. ``body`` is the envelope exactly as it will be signed — a sealed payload
    is already encrypted to the peer (HPKE, bound to the message id), so not even this node can read it back
    — and every attempt re-signs that same body with a fresh time: the receiver recognises the message id
    and the body digest and answers a second copy with its first answer (nothing twice). Delivery is first
    in, first out per peer (only a peer's oldest waiting message is tried). No column holds personal data
    in clear: ids, the type, counters and an error class.
    """

    class State(models.TextChoices):
        WAITING = "waiting"
        DELIVERED = "delivered"  # the peer's verified answer came back (``response_status``)

    id = models.BigAutoField(primary_key=True)  # the order of delivery per peer
    message_id = models.UUIDField(unique=True)
    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="outgoing")
    type = models.CharField(max_length=64)
    referral_id = models.UUIDField(null=True, blank=True)
    #: The object the message carries, when its answer concerns it (a ``referral.note``'s note id).
    object_id = models.UUIDField(null=True, blank=True)
    sealed = models.BooleanField(default=False)
    body = models.BinaryField(null=True)  # null once delivered: the evidence (Message) keeps it
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # null: as soon as possible
    #: A delivering process holds the message until then (a crashed one's lease simply runs out).
    leased_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=64, blank=True)  # an error class, never a text from a peer
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["peer", "state", "id"], name="federation_outgoing_queue")]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id} → {self.peer_id} ({self.state})"


class PendingReceipt(models.Model):
    """A read of personal data about a referral copy at this node, waiting to be reported to the node that
    sent the referral (contract §7.4, read receipts; ``federation.receipts``).

    Written by the read itself (``referrals.signals.personal_read``, in the read's transaction); turned into a
    ``referral.reads`` message by the outbox's next pass and deleted in the same transaction. No personal
    data: ids, the audit action, who read (the reader's type, id, label — a staff identifier — and
    institution code), the request's id and the time.
    """

    id = models.BigAutoField(primary_key=True)  # the order of reading
    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="pending_receipts")
    referral_id = models.UUIDField()
    action = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=160, blank=True)
    actor_institution = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict)  # ``count`` of notes, ``list`` or ``page`` name: never values
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["peer", "id"], name="federation_receipt_queue")]

    def __str__(self) -> str:
        return f"{self.action} {self.referral_id} → {self.peer_id}"


class ShreddedCopy(models.Model):
    """A referral copy this node crypto-shredded at its sender's request (``referral.withdraw``): the answer
    every later withdrawal of the same copy gets (the same ``shredded_at``). Ids and a time only."""

    referral_id = models.UUIDField(primary_key=True)
    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="shredded_copies")
    shredded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.referral_id} shredded at {self.shredded_at.isoformat()}"
