"""The auditors' representation of an event (contract §4, Audit)."""

from rest_framework import serializers


class _BlankAsNull(serializers.CharField):
    """Stored as "" when there is none; rendered as null."""

    def to_representation(self, value):
        return value or None


class AuditActorOutput(serializers.Serializer):
    type = serializers.ChoiceField(
        source="actor_type",
        choices=["user", "api_client", "system", "anonymous"],
        help_text="user or api_client; system for the app's own jobs, anonymous for refused sign-ins.",
    )
    id = _BlankAsNull(source="actor_id", allow_null=True, help_text="The user's or API client's id.")
    institution = _BlankAsNull(
        source="actor_institution", allow_null=True, help_text="The actor's institution CODE."
    )


class AuditEventOutput(serializers.Serializer):
    id = serializers.UUIDField()
    sequence = serializers.IntegerField(help_text="Position in the hash chain: 1, 2, 3, ... with no gap.")
    at = serializers.DateTimeField()
    actor = AuditActorOutput(source="*")
    action = serializers.CharField(help_text="A namespaced code, e.g. referral.viewed.")
    object_type = serializers.CharField(help_text="case, referral, note, ... (empty when none).")
    object_id = serializers.CharField(help_text="The object's id (empty when none).")
    ip = serializers.CharField(help_text="The client's address (empty when unknown).")
    request_id = serializers.CharField(help_text="The request's X-Request-ID (empty outside requests).")
    outcome = serializers.CharField(help_text="success, denied or failure.")
    detail = serializers.DictField(help_text="Ids, codes and counts only: never personal data.")
    hash = serializers.CharField(
        help_text="HMAC-SHA256 of the event's canonical encoding (its id, columns and prev_hash; hex)."
    )
    prev_hash = serializers.CharField(help_text="The previous event's hash (64 zeros for the first).")


class AuditCosignatureOutput(serializers.Serializer):
    vkey = serializers.CharField(help_text="The witness's verifier key (name+key id+base64(0x04 ‖ key)).")
    signature = serializers.CharField(
        help_text="Standard base64 of the 8-byte timestamp ‖ Ed25519 signature."
    )
    at = serializers.CharField(help_text="The cosignature's timestamp, RFC 3339 UTC.")


class AuditCheckpointOutput(serializers.Serializer):
    """A signed checkpoint (contract §6.3), for the schema; the views serve ``checkpoints.as_served``."""

    sequence = serializers.IntegerField(
        help_text="The chain's length when signed (the last event's sequence)."
    )
    hash = serializers.CharField(help_text="The hex hash of the event at that sequence.")
    at = serializers.CharField(help_text="RFC 3339 UTC, whole seconds, ending in Z — exactly as signed.")
    signature = serializers.CharField(
        help_text='Standard base64 of the Ed25519 signature of the UTF-8 string "{sequence}.{hash}.{at}".'
    )
    tree_size = serializers.IntegerField(help_text="The Merkle tree's size (= sequence).")
    root_hash = serializers.CharField(
        allow_null=True,
        help_text="Base64 Merkle root (RFC 9162) of the first tree_size events; null before §7.3.",
    )
    note = serializers.CharField(
        allow_null=True,
        help_text="The C2SP signed note (tlog-checkpoint), with witnesses' lines; null before §7.3.",
    )
    cosignatures = AuditCosignatureOutput(many=True)


class AuditCosignatureInput(serializers.Serializer):
    vkey = serializers.CharField(help_text="The witness's verifier key, algorithm byte 0x04 (C2SP).")
    signature = serializers.CharField(
        help_text="Standard base64 of the 8-byte big-endian timestamp ‖ the 64-byte Ed25519 signature of "
        '"cosignature/v1\ntime {timestamp}\n" followed by the checkpoint\'s note body.'
    )


class AuditCheckpointKeyOutput(serializers.Serializer):
    algorithm = serializers.ChoiceField(choices=["ed25519"])
    public_key = serializers.CharField(help_text="Standard base64 of the 32 raw bytes of the public key.")
    origin = serializers.CharField(help_text="The log's origin: the first line of its checkpoints' notes.")
    vkey = serializers.CharField(
        help_text="Verifier key, golang.org/x/mod/sumdb/note format: origin+hex key id+base64(0x01 ‖ key)."
    )


class AuditInclusionProofOutput(serializers.Serializer):
    leaf_index = serializers.IntegerField(help_text="The event's sequence − 1.")
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField(help_text="Base64 of SHA-256(0x00 ‖ the event's hash bytes).")
    hashes = serializers.ListField(child=serializers.CharField(), help_text="Base64, leaf side first.")


#: ``from`` is a Python keyword: the serializer is built with ``type`` (its fields as class attributes).
AuditConsistencyProofOutput = type(
    "AuditConsistencyProofOutput",
    (serializers.Serializer,),
    {
        "from": serializers.IntegerField(help_text="The older tree size."),
        "to": serializers.IntegerField(help_text="The newer tree size."),
        "hashes": serializers.ListField(child=serializers.CharField(), help_text="Base64 (RFC 9162 §2.1.4)."),
    },
)
