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


class AuditCheckpointKeyOutput(serializers.Serializer):
    algorithm = serializers.ChoiceField(choices=["ed25519"])
    public_key = serializers.CharField(help_text="Standard base64 of the 32 raw bytes of the public key.")
