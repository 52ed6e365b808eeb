"""The checkpoint as a C2SP signed note (contract §7.3), checked by a verifier written here from the C2SP
texts (signed-note, tlog-checkpoint, tlog-cosignature) with PyNaCl — not by ``audit.notes``, which signs."""

from __future__ import annotations

import base64
import hashlib
import struct

import nacl.exceptions
import nacl.signing
import pytest

from audit import checkpoints
from audit.models import AuditEvent
from audit.recorder import record

from . import rfc9162

EM_DASH = "\u2014"


def c2sp_open(note: str, vkey: str) -> tuple[str, int, bytes]:
    """signed-note: "<text>\\n\\n<signature lines>"; a line "— <name> base64(key id ‖ signature)"; the key id
    is SHA-256(name ‖ "\\n" ‖ 0x01 ‖ key)[:4]; the vkey "<name>+<hex key id>+base64(0x01 ‖ key)".
    → (origin, tree size, root) of the tlog-checkpoint body, or raise."""
    name, hex_id, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 0x01 and len(key) == 33
    assert hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == hex_id
    text, signatures = note.split("\n\n", 1)
    text += "\n"
    for line in signatures.rstrip("\n").split("\n"):
        dash, line_name, blob = line.split(" ")
        assert dash == EM_DASH
        raw = base64.b64decode(blob)
        if line_name == name and raw[:4].hex() == hex_id:
            nacl.signing.VerifyKey(key[1:]).verify(text.encode(), raw[4:])
            origin, size, root = text.rstrip("\n").split("\n")[:3]
            return origin, int(size), base64.b64decode(root)
    raise AssertionError("no signature line of this key")


@pytest.fixture
def signed(db, settings):
    settings.AUDIT_LOG_ORIGIN = ""
    settings.SITE_URL = "https://referrals.example.org:8443/some/path"
    for n in range(6):
        record(actor_type="system", action="test.event", detail={"n": n})
    event = AuditEvent.objects.get(sequence=6)
    return checkpoints.as_served(checkpoints.create(sequence=6, hash_=event.hash, verified=False))


def test_the_note_verifies_with_an_independent_c2sp_verifier(signed, iom, auditor):
    key = auditor(iom).get("/api/v1/audit/checkpoints/key/").json()
    assert key["origin"] == "referrals.example.org:8443/audit"
    assert key["vkey"].startswith("referrals.example.org:8443/audit+")
    assert base64.b64decode(key["vkey"].split("+", 2)[2])[1:] == base64.b64decode(key["public_key"])
    origin, size, root = c2sp_open(signed["note"], key["vkey"])
    assert (origin, size) == ("referrals.example.org:8443/audit", 6)
    assert base64.b64encode(root).decode() == signed["root_hash"]
    inputs = [
        bytes.fromhex(h) for h in AuditEvent.objects.order_by("sequence").values_list("hash", flat=True)
    ]
    assert root == rfc9162.mth(inputs)
    # exactly the C2SP layout: three body lines, an empty line, one em-dash line per signature
    lines = signed["note"].split("\n")
    assert lines[3] == "" and lines[4].startswith(f"{EM_DASH} {origin} ") and lines[5] == ""
    # any change to the body breaks the signature
    with pytest.raises(nacl.exceptions.BadSignatureError):
        c2sp_open(signed["note"].replace("\n6\n", "\n7\n", 1), key["vkey"])


def test_the_origin_comes_from_the_setting_when_set(db, settings):
    settings.AUDIT_LOG_ORIGIN = "iom.example.org/referrals-audit"
    document = checkpoints.public_key_document()
    assert document["origin"] == "iom.example.org/referrals-audit"
    assert document["vkey"].startswith("iom.example.org/referrals-audit+")
    settings.AUDIT_LOG_ORIGIN = ""
    settings.SITE_URL = "https://referrals.example.org/"
    assert checkpoints.public_key_document()["origin"] == "referrals.example.org/audit"


def test_the_legacy_signature_still_verifies_on_new_checkpoints(signed):
    public = base64.b64decode(checkpoints.public_key_document()["public_key"])
    message = "{sequence}.{hash}.{at}".format(**signed).encode()
    nacl.signing.VerifyKey(public).verify(message, base64.b64decode(signed["signature"]))


def cosignature(body: str, seed: bytes, name: str, timestamp: int) -> tuple[str, str]:
    """tlog-cosignature (Ed25519, cosignature/v1), from the C2SP text: → (vkey, base64(timestamp ‖ sig))."""
    key = nacl.signing.SigningKey(seed)
    public = bytes(key.verify_key)
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    encoded = base64.b64encode(bytes([0x04]) + public).decode()
    vkey = f"{name}+{key_id.hex()}+{encoded}"
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()
    signature = key.sign(message).signature
    return vkey, base64.b64encode(struct.pack(">Q", timestamp) + signature).decode()


def _body(note: str) -> str:
    return note.split("\n\n", 1)[0] + "\n"


def test_a_witness_cosignature_is_verified_stored_listed_and_carried_in_the_note(signed, iom, dp, auditor):
    import time

    now = int(time.time())
    vkey, signature = cosignature(_body(signed["note"]), b"w" * 32, "dp.example.org/witness", now)
    url = "/api/v1/audit/checkpoints/6/cosignatures/"
    response = auditor(dp).post(url, {"vkey": vkey, "signature": signature}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["vkey"] == vkey
    listed = auditor(iom).get("/api/v1/audit/checkpoints/").json()["results"][-1]
    assert listed["cosignatures"] == [response.json()]
    assert auditor(iom).get("/api/v1/audit/checkpoints/latest/").json() == listed
    # the note carries the witness's line: "— name base64(key id ‖ timestamp ‖ signature)"
    last = listed["note"].rstrip("\n").split("\n")[-1]
    dash, name, blob = last.split(" ")
    raw = base64.b64decode(blob)
    assert (dash, name) == (EM_DASH, "dp.example.org/witness")
    assert raw[:4].hex() == vkey.split("+", 2)[1] and raw[4:] == base64.b64decode(signature)
    public = base64.b64decode(vkey.split("+", 2)[2])[1:]
    message = f"cosignature/v1\ntime {now}\n".encode() + _body(listed["note"]).encode()
    nacl.signing.VerifyKey(public).verify(message, raw[12:])
    # and the log's own signature still verifies on the note with the witness's line
    key = auditor(iom).get("/api/v1/audit/checkpoints/key/").json()
    assert c2sp_open(listed["note"], key["vkey"])[1] == 6


@pytest.mark.parametrize(
    "case", ["other-body", "other-key", "future", "short", "not-base64", "log-key", "extra"]
)
def test_a_cosignature_that_does_not_verify_is_400_and_not_stored(signed, dp, auditor, case):
    import time

    from audit.models import AuditCosignature

    now = int(time.time())
    body = _body(signed["note"])
    vkey, signature = cosignature(body, b"w" * 32, "dp.example.org/witness", now)
    payload = {"vkey": vkey, "signature": signature}
    if case == "other-body":
        payload["signature"] = cosignature(body.replace("\n6\n", "\n5\n"), b"w" * 32, "x", now)[1]
    elif case == "other-key":
        payload["vkey"] = cosignature(body, b"v" * 32, "dp.example.org/witness", now)[0]
    elif case == "future":
        payload = dict(
            zip(("vkey", "signature"), cosignature(body, b"w" * 32, "w", now + 86400), strict=True)
        )
    elif case == "short":
        payload["signature"] = base64.b64encode(base64.b64decode(signature)[:40]).decode()
    elif case == "not-base64":
        payload["signature"] = "***"
    elif case == "log-key":
        payload["vkey"] = checkpoints.public_key_document()["vkey"]  # algorithm 0x01, not a witness key
    elif case == "extra":
        payload["at"] = "now"
    response = auditor(dp).post("/api/v1/audit/checkpoints/6/cosignatures/", payload, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert not AuditCosignature.objects.exists()


def test_a_cosignature_for_no_checkpoint_is_404(signed, dp, auditor):
    import time

    vkey, signature = cosignature(_body(signed["note"]), b"w" * 32, "w", int(time.time()))
    for size in ("5", "9" * 30):
        response = auditor(dp).post(
            f"/api/v1/audit/checkpoints/{size}/cosignatures/",
            {"vkey": vkey, "signature": signature},
            format="json",
        )
        assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


def test_a_verifier_key_whose_base64_holds_a_plus_sign():
    """The key name holds no "+", the base64 may: a vkey is split from the left (a live run found it)."""
    from audit import notes

    seed = next(
        bytes([n]) * 32
        for n in range(256)
        if "+" in cosignature("b", bytes([n]) * 32, "w", 1)[0].split("+", 2)[2]
    )
    vkey = cosignature("b", seed, "dp.example.org/witness", 1)[0]
    assert "+" in vkey.split("+", 2)[2]
    parsed = notes.parse_vkey(vkey, notes.COSIGNATURE_V1)
    assert parsed.name == "dp.example.org/witness" and parsed.text == vkey
