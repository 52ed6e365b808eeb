"""The message layer on its own (federation/protocol.py): no database, no server."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.signing import VerifyKey

from federation import protocol
from federation.cards import raw_public

A, B = "https://iom.node.example", "https://dp.node.example"
PATH = "/federation/v1/messages/"
NOW = 1_800_000_000
MID = "0b6c3f4e-2d7a-4c1e-9a55-3f4b1d2c6e70"


@pytest.fixture(scope="module")
def key_a():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def key_b():
    return Ed25519PrivateKey.generate()


def _signed(key, body=b'{"type":"ping"}', **overrides):
    args = dict(
        key=key, sender=A, recipient=B, method="POST", path=PATH, body=body, message_id=MID, created=NOW
    )
    args.update(overrides)
    return protocol.sign_request(**args)


def _verify(headers, key_a, body=b'{"type":"ping"}', **overrides):
    args = dict(
        method="POST",
        path=PATH,
        headers=headers,
        body=body,
        key_for={A: raw_public(key_a)}.get,
        recipient=B,
        now=NOW + 10,
    )
    args.update(overrides)
    return protocol.verify_request(**args)


def test_rfc_9421_known_answer_ed25519():
    """The signature base is RFC 9421's: its Appendix B.2.6 example (test-key-ed25519) gives its signature."""
    seed = base64.urlsafe_b64decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU=")
    lines = [
        ('"date"', "Tue, 20 Apr 2021 02:07:55 GMT"),
        ('"@method"', "POST"),
        ('"@path"', "/foo"),
        ('"@authority"', "example.com"),
        ('"content-type"', "application/json"),
        ('"content-length"', "18"),
    ]
    params = (
        '("date" "@method" "@path" "@authority" "content-type" "content-length")'
        ';created=1618884473;keyid="test-key-ed25519"'
    )
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(protocol.signature_base(lines, params))
    assert base64.b64encode(signature).decode() == (
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
    )


def test_rfc_9530_content_digest_example():
    assert (
        protocol.content_digest(b'{"hello": "world"}')
        == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


def test_a_signed_request_verifies_and_says_who_signed_it(key_a):
    headers = _signed(key_a)
    assert headers["signature-input"] == (
        'fed=("@method" "@path" "content-digest" "federation-message-id" "federation-to")'
        f';created={NOW};keyid="{A}";alg="ed25519";tag="referral-federation/v1"'
    )
    verified = _verify(headers, key_a)
    assert (verified.signer, verified.message_id, verified.created) == (A, MID, NOW)


def test_the_signature_verifies_with_an_independent_ed25519_over_the_documented_base(key_a):
    """A peer written anew from docs/federation.md: the base spelled out by hand, checked with libsodium."""
    body = b'{"type":"ping"}'
    headers = _signed(key_a, body=body)
    base = "\n".join(
        [
            '"@method": POST',
            f'"@path": {PATH}',
            f'"content-digest": {protocol.content_digest(body)}',
            f'"federation-message-id": {MID}',
            f'"federation-to": {B}',
            '"@signature-params": ' + headers["signature-input"].removeprefix("fed="),
        ]
    ).encode()
    signature = base64.b64decode(headers["signature"].removeprefix("fed=:").removesuffix(":"))
    VerifyKey(raw_public(key_a)).verify(base, signature)  # raises when it does not hold


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (lambda h: h.pop("signature"), "unsigned"),
        (lambda h: h.pop("content-digest"), "unsigned"),
        (
            lambda h: h.update({"signature-input": h["signature-input"].replace('"federation-to")', ")")}),
            "malformed",
        ),
        (lambda h: h.update({"signature-input": h["signature-input"].replace("fed=", "sig1=")}), "malformed"),
        (lambda h: h.update({"signature": h["signature"] + ", fed2=:AAAA:"}), "malformed"),
        (lambda h: h.update({"content-digest": "sha-512=:AAAA:"}), "malformed"),
        (lambda h: h.update({"federation-message-id": "not-a-uuid"}), "malformed"),
        (
            lambda h: h.update({"signature-input": h["signature-input"].replace(A, "https://other.example")}),
            "unknown-node",
        ),
        (
            lambda h: h.update({"federation-message-id": "1b6c3f4e-2d7a-4c1e-9a55-3f4b1d2c6e70"}),
            "bad-signature",
        ),
        (lambda h: h.update({"content-digest": protocol.content_digest(b"{}")}), "bad-signature"),
        (
            lambda h: h.update(
                {"signature-input": h["signature-input"].replace(f"created={NOW}", f"created={NOW + 1}")}
            ),
            "bad-signature",
        ),
    ],
)
def test_refusals_name_their_cause(key_a, change, cause):
    headers = _signed(key_a)
    change(headers)
    with pytest.raises(protocol.Refused) as refused:
        _verify(headers, key_a)
    assert refused.value.cause == cause


def test_an_altered_body_is_refused_though_the_signature_holds(key_a):
    headers = _signed(key_a)
    with pytest.raises(protocol.Refused) as refused:
        _verify(headers, key_a, body=b'{"type":"pong"}')
    assert refused.value.cause == "altered-body"


def test_the_method_and_path_are_signed(key_a):
    headers = _signed(key_a)
    for overrides in ({"method": "PUT"}, {"path": "/federation/v1/other/"}):
        with pytest.raises(protocol.Refused) as refused:
            _verify(headers, key_a, **overrides)
        assert refused.value.cause == "bad-signature"


def test_a_message_signed_for_another_node_is_refused(key_a):
    with pytest.raises(protocol.Refused) as refused:
        _verify(_signed(key_a), key_a, recipient="https://third.node.example")
    assert refused.value.cause == "wrong-recipient"


def test_clock_skew_over_five_minutes_is_refused_either_way(key_a):
    headers = _signed(key_a)
    assert _verify(headers, key_a, now=NOW + 300).created == NOW
    assert _verify(headers, key_a, now=NOW - 300).created == NOW
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(protocol.Refused) as refused:
            _verify(headers, key_a, now=now)
        assert refused.value.cause == "stale"


def test_another_nodes_key_does_not_pass_for_the_sender(key_a, key_b):
    with pytest.raises(protocol.Refused) as refused:
        _verify(_signed(key_b), key_a)  # B's key, keyid A
    assert refused.value.cause == "bad-signature"


def _response(key_b, request_headers, status=200, body=b'{"payload":{"pong":true}}'):
    request = protocol.RequestParts("POST", PATH, request_headers)
    headers = protocol.sign_response(
        key=key_b, responder=B, request=request, status=status, body=body, created=NOW + 1
    )
    return request, headers, body


def test_a_response_is_bound_to_its_request(key_a, key_b):
    request_headers = _signed(key_a)
    request, headers, body = _response(key_b, request_headers)
    assert headers["signature-input"].startswith(
        'fed=("@status" "content-digest" "@method";req "@path";req "content-digest";req'
        ' "federation-message-id";req)'
    )
    verified = protocol.verify_response(
        request=request, status=200, headers=headers, body=body, public_key=raw_public(key_b), responder=B
    )
    assert verified.message_id == MID
    # The same answer does not pass for the answer to another message, another body, another status.
    other = protocol.RequestParts(
        "POST", PATH, _signed(key_a, message_id="1b6c3f4e-2d7a-4c1e-9a55-3f4b1d2c6e70")
    )
    other_body = protocol.RequestParts("POST", PATH, _signed(key_a, body=b"{}"))
    for req, status, answer in (
        (other, 200, body),
        (other_body, 200, body),
        (request, 201, body),
        (request, 200, b"{}"),
    ):
        with pytest.raises(protocol.Refused):
            protocol.verify_response(
                request=req,
                status=status,
                headers=headers,
                body=answer,
                public_key=raw_public(key_b),
                responder=B,
            )


def test_a_resent_message_with_a_new_signature_still_matches_its_first_answer(key_a, key_b):
    """The binding is the message id and body hash: an outbox may re-sign a message it sends again."""
    request, headers, body = _response(key_b, _signed(key_a))
    again = protocol.RequestParts("POST", PATH, _signed(key_a, created=NOW + 600))
    protocol.verify_response(
        request=again, status=200, headers=headers, body=body, public_key=raw_public(key_b), responder=B
    )


def test_hpke_seals_to_the_recipient_and_binds_the_context():
    recipient = X25519PrivateKey.generate()
    info = protocol.request_info(A, B, MID)
    plaintext = json.dumps({"given_name": "María"}).encode()
    sealed = protocol.seal(plaintext, raw_public(recipient), info=info)
    assert plaintext not in sealed and len(sealed) == 32 + len(plaintext) + 16  # enc ‖ ciphertext ‖ tag
    assert (
        protocol.seal(plaintext, raw_public(recipient), info=info) != sealed
    )  # a fresh ephemeral key each time
    assert protocol.open_sealed(sealed, recipient, info=info) == plaintext
    for wrong_key, wrong_info in (
        (X25519PrivateKey.generate(), info),
        (recipient, protocol.request_info("https://evil.example", B, MID)),
        (recipient, protocol.response_info(B, A, MID)),
    ):
        with pytest.raises(protocol.Refused) as refused:
            protocol.open_sealed(sealed, wrong_key, info=wrong_info)
        assert refused.value.cause == "undecryptable"
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(protocol.Refused):
        protocol.open_sealed(tampered, recipient, info=info)
