"""The audit log: hash-chained, append-only (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who did what to which object, when, from where — never with personal data in ``detail``.

    ``hash`` = HMAC-SHA256(AUDIT_HMAC_KEY, canonical(fields) + prev_hash): see ``audit.chain``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sequence = models.BigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_type = models.CharField(max_length=16)  # user | api_client | system | anonymous
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_label = models.CharField(max_length=160, blank=True, default="")
    actor_institution = models.CharField(max_length=16, blank=True, default="", db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    case_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    #: Institutions concerned, as ",IOM,DP," so that one LIKE finds them on every database.
    institutions = models.CharField(max_length=255, blank=True, default="")
    ip = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, default="success")
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]
        # An auditor's page is "events matching X, in chain order": (X, sequence) indexes answer it by
        # reading the first 50 matches in order, whatever the size of the log (docs/performance.md).
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["action", "sequence"], name="audit_event_action_seq"),
            models.Index(fields=["actor_id", "sequence"], name="audit_event_actor_seq"),
            models.Index(fields=["actor_institution", "sequence"], name="audit_event_actor_inst_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"


class AuditQueue(models.Model):
    """An event recorded but not yet sealed (contract §7.3): inserted by ``audit.recorder`` inside the
    transaction of the work it describes — an INSERT that shares no row with any other request, so no
    request waits for another's audit — and moved into ``AuditEvent`` (given its ``sequence``,
    ``prev_hash`` and ``hash``) by the sequencer (``audit.sequencer.seal_pending``), which deletes the
    queue row in the same transaction. The database refuses any UPDATE, and any DELETE of a row whose event
    is not sealed yet (migration ``0008_audit_queue``): a queued event can be consumed only by sealing it.
    ``id`` is the arrival order, which the sequencer follows.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField()
    at = models.DateTimeField()
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_label = models.CharField(max_length=160, blank=True, default="")
    actor_institution = models.CharField(max_length=16, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    case_id = models.CharField(max_length=64, blank=True, default="")
    institutions = models.CharField(max_length=255, blank=True, default="")
    ip = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, default="success")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"queued {self.action}"


class AuditChainHead(models.Model):
    """The chain's head: the last sealed sequence and hash. Only the sequencer updates it (a row lock that
    serializes sealing, never a request: requests only queue)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's head (contract §6.3): ``{sequence, hash, at, signature}``.

    ``signature`` = standard base64 of Ed25519(``AUDIT_SIGNING_KEY``, ``"{sequence}.{hash}.{at}"``), ``at``
    as served (RFC 3339 UTC, whole seconds, ending in ``Z``). Partners keep copies (API, webhook): a copy
    outside this database is what proves that nothing was cut off the end of the log.
    ``verified_at`` marks the checkpoints that the periodic job verified against the chain (it then only
    verifies what came after the latest of them); it is not part of what is signed.
    """

    id = models.BigAutoField(primary_key=True)
    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    at = models.DateTimeField()
    signature = models.CharField(max_length=128)
    verified_at = models.DateTimeField(null=True, blank=True)
    #: Contract §7.3 (empty on checkpoints signed before the tree existed: they carry only ``signature``).
    #: ``tree_size`` is always ``sequence``; ``root_hash`` the standard base64 of the Merkle root over the
    #: first ``tree_size`` leaves; ``note`` the C2SP signed note of it (without witnesses' lines).
    root_hash = models.CharField(max_length=44, blank=True, default="")
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["sequence"], name="audit_checkpoint_sequence")]

    def __str__(self) -> str:
        return f"checkpoint #{self.sequence}"


class AuditTreeNode(models.Model):
    """The hash of one complete subtree of the audit log's Merkle tree (RFC 9162 §2.1), at ``level`` ≥ 1.

    The node at level L and index i covers leaves ``[i·2^L, (i+1)·2^L)`` (leaf i is the event with
    sequence i + 1); its ``id`` is ``(L << 48) | i`` (``audit.tree.node_id``), so that one primary-key
    lookup finds it. Leaves (level 0) are not stored: their hash is SHA-256(0x00 ‖ the event's hash bytes),
    read from the event. Written once by ``audit.tree.extend`` (the checkpoint job), never updated: a
    proof or a root reads O(log n) of them, an append none.
    """

    id = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return f"tree node {self.id >> 48}/{self.id & ((1 << 48) - 1)}"


class AuditTreeState(models.Model):
    """How many leaves the stored tree covers (``size``): ``extend`` continues from there."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)


class AuditCosignature(models.Model):
    """A witness's C2SP tlog-cosignature (cosignature/v1, Ed25519) of the checkpoint of ``tree_size``.

    ``vkey`` is the witness's verifier key (``name+hex key id+base64(0x04 ‖ public key)``), ``signature``
    the standard base64 of the 8-byte big-endian timestamp ‖ the 64-byte signature, ``at`` that timestamp.
    Verified before it is stored (``audit.notes.verify_cosignature``).
    """

    id = models.BigAutoField(primary_key=True)
    tree_size = models.BigIntegerField()
    vkey = models.CharField(max_length=255)
    signature = models.CharField(max_length=128)
    at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tree_size", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tree_size", "vkey"], name="audit_cosignature_one_per_witness")
        ]

    def __str__(self) -> str:
        return f"cosignature of tree size {self.tree_size}"
