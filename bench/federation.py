"""The federation's message layer, per message (issue 23): what signing, verifying and sealing cost.

    .venv/bin/python bench/federation.py            # 2,000 messages of 2 KiB
    .venv/bin/python bench/federation.py --n 500 --size 65536

Pure (federation/protocol.py, no database, no network). Prints the median microseconds of each step and
messages per second for a whole sealed request and its sealed, signed answer, both sides' work included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from federation import protocol  # noqa: E402
from federation.cards import raw_public  # noqa: E402

A, B, PATH = "https://iom.node.example", "https://dp.node.example", "/federation/v1/messages/"


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048, help="bytes of payload")
    args = parser.parse_args()
    sign_a, sign_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    enc_a, enc_b = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    pub = {A: raw_public(sign_a), B: raw_public(sign_b)}
    payload = json.dumps({"text": os.urandom(args.size // 2).hex()}).encode()
    steps: dict[str, list[float]] = {k: [] for k in ("seal", "sign", "verify", "open", "answer", "check")}
    whole = time.perf_counter()
    for _ in range(args.n):
        mid = protocol.new_message_id()
        now = int(time.time())
        t = time.perf_counter()
        sealed = protocol.seal(payload, raw_public(enc_b), info=protocol.request_info(A, B, mid))
        body = json.dumps({"type": "ping", "sealed": protocol.b64(sealed)}).encode()
        steps["seal"].append(time.perf_counter() - t)
        t = time.perf_counter()
        headers = protocol.sign_request(
            key=sign_a,
            sender=A,
            recipient=B,
            method="POST",
            path=PATH,
            body=body,
            message_id=mid,
            created=now,
        )
        steps["sign"].append(time.perf_counter() - t)
        t = time.perf_counter()
        protocol.verify_request(
            method="POST", path=PATH, headers=headers, body=body, key_for=pub.get, recipient=B, now=now
        )
        steps["verify"].append(time.perf_counter() - t)
        t = time.perf_counter()
        protocol.open_sealed(
            protocol.unb64(json.loads(body)["sealed"]), enc_b, info=protocol.request_info(A, B, mid)
        )
        steps["open"].append(time.perf_counter() - t)
        request = protocol.RequestParts("POST", PATH, headers)
        t = time.perf_counter()
        answer = protocol.seal(b'{"pong":true}', raw_public(enc_a), info=protocol.response_info(B, A, mid))
        signed = protocol.sign_response(
            key=sign_b, responder=B, request=request, status=200, body=answer, created=now
        )
        steps["answer"].append(time.perf_counter() - t)
        t = time.perf_counter()
        protocol.verify_response(
            request=request, status=200, headers=signed, body=answer, public_key=pub[B], responder=B
        )
        protocol.open_sealed(answer, enc_a, info=protocol.response_info(B, A, mid))
        steps["check"].append(time.perf_counter() - t)
    elapsed = time.perf_counter() - whole
    print(f"{args.n} sealed messages of {args.size} bytes, each with its sealed signed answer")
    for name, samples in steps.items():
        print(f"  {name:7s} median {_median_us(samples):8.1f} µs")
    print(f"  whole exchange: {args.n / elapsed:,.0f} per second on one core (both nodes' work)")


if __name__ == "__main__":
    main()
