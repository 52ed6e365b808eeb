"""A partner's witness of another institution's audit log (contract §7.3; ``manage.py audit_witness``).

The state file (JSON, created by ``--init VKEY``, mode 0600) pins the log's verifier key, holds the
witness's own Ed25519 key and name, and the last checkpoint it cosigned. One run: fetch the log's latest
checkpoint, verify the log's signature with the pinned key, verify that it is consistent with the stored
checkpoint (same root at the same size; a consistency proof from the log for a larger size; a smaller size
is a truncated log), cosign it (C2SP tlog-cosignature), post the cosignature, store the checkpoint. Any
failure raises ``WitnessError`` before anything is signed or posted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import tempfile
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import merkle, notes

TIMEOUT = 30


class WitnessError(RuntimeError):
    """The log is refused (inconsistent, badly signed, unreachable): nothing was cosigned."""


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write(path: Path, state: dict) -> None:
    """Atomically, readable by its owner only (it holds the witness's private key)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(state, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init(path: Path, log_vkey: str, name: str | None = None) -> dict:
    """Create the state file pinning ``log_vkey``, with a new witness key; refuses to overwrite one."""
    try:
        notes.parse_vkey(log_vkey, notes.ED25519)
    except notes.NoteError as exc:
        raise WitnessError(f"--init: not the log's verifier key ({exc})") from None
    if path.exists():
        raise WitnessError(f"{path} exists already: it pins a key; remove it deliberately to start over")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    state = {
        "log_vkey": log_vkey,
        "witness_name": name or f"{socket.gethostname()}/audit-witness",
        "witness_key": base64.urlsafe_b64encode(seed).decode("ascii"),
        "checkpoint": None,
    }
    _write(path, state)
    return state


def load(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WitnessError(f"cannot read {path}: {exc.strerror} (create it with --init VKEY)") from None
    except ValueError:
        raise WitnessError(f"{path} is not a witness state file") from None
    if not isinstance(state, dict) or not {"log_vkey", "witness_name", "witness_key", "checkpoint"} <= set(
        state
    ):
        raise WitnessError(f"{path} is not a witness state file")
    return state


def witness_key(state: dict) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(state["witness_key"]))
    except (binascii.Error, ValueError):
        raise WitnessError("the state file's witness key is malformed") from None


def witness_vkey(state: dict) -> str:
    return notes.vkey(state["witness_name"], notes.COSIGNATURE_V1, _public(witness_key(state)))


class Log:
    """The log's partner API (``URL`` is the site, or its ``/api/v1/``)."""

    def __init__(self, url: str, token: str, session: requests.Session | None = None):
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.base = base
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise WitnessError(f"the log is unreachable ({type(exc).__name__})") from None

    def _json(self, response: requests.Response, expected: int) -> dict:
        if response.status_code != expected:
            detail = ""
            if response.headers.get("Content-Type", "").startswith("application/problem+json"):
                problem = response.json()
                detail = f": {problem.get('detail', '')} {json.dumps(problem.get('errors') or {})[:300]}"
            path = response.request.path_url
            raise WitnessError(f"the log answered {response.status_code} to {path}{detail}")
        try:
            return response.json()
        except ValueError:
            raise WitnessError("the log's answer is not JSON") from None

    def latest(self) -> dict:
        return self._json(self._call("GET", "/audit/checkpoints/latest/"), 200)

    def consistency(self, old: int, new: int) -> list[bytes]:
        body = self._json(
            self._call("GET", "/audit/proofs/consistency/", params={"from": old, "to": new}), 200
        )
        try:
            return [base64.b64decode(h, validate=True) for h in body["hashes"]]
        except (KeyError, TypeError, binascii.Error, ValueError):
            raise WitnessError("the consistency proof is malformed") from None

    def post_cosignature(self, tree_size: int, vkey: str, signature: str) -> None:
        response = self._call(
            "POST",
            f"/audit/checkpoints/{tree_size}/cosignatures/",
            json={"vkey": vkey, "signature": signature},
        )
        self._json(response, 201)


def run(log: Log, path: Path) -> dict:
    """One witnessing pass → a summary; raises ``WitnessError`` (and cosigns nothing) on any problem."""
    state = load(path)
    try:
        verifier = notes.parse_vkey(state["log_vkey"], notes.ED25519)
    except notes.NoteError as exc:
        raise WitnessError(f"the pinned key is malformed ({exc})") from None
    served = log.latest()
    note = served.get("note") if isinstance(served, dict) else None
    if not isinstance(note, str):
        raise WitnessError("the latest checkpoint carries no signed note")
    try:
        checkpoint = notes.open_note(note, verifier)
    except notes.NoteError as exc:
        raise WitnessError(
            f"the checkpoint's signature does not verify with the pinned key ({exc})"
        ) from None
    if served.get("tree_size") != checkpoint.tree_size or served.get("root_hash") != _b64(checkpoint.root):
        raise WitnessError("the checkpoint's fields differ from its signed note")
    previous = state["checkpoint"]
    if previous is not None:
        old_size, old_root = int(previous["tree_size"]), base64.b64decode(previous["root_hash"])
        if checkpoint.tree_size < old_size:
            raise WitnessError(
                f"the log shrank: tree size {checkpoint.tree_size} after {old_size} (a truncated log)"
            )
        proof = log.consistency(old_size, checkpoint.tree_size) if checkpoint.tree_size > old_size else []
        try:
            merkle.consistent(old_size, checkpoint.tree_size, old_root, checkpoint.root, proof)
        except merkle.ProofError as exc:
            raise WitnessError(
                f"tree size {checkpoint.tree_size} is not consistent with {old_size} ({exc}): a forked log"
            ) from None
    key = witness_key(state)
    vkey = witness_vkey(state)
    signature = _b64(notes.cosign(checkpoint.body, key))
    log.post_cosignature(checkpoint.tree_size, vkey, signature)
    state["checkpoint"] = {
        "tree_size": checkpoint.tree_size,
        "root_hash": _b64(checkpoint.root),
        "note": note,
    }
    _write(path, state)
    before = previous["tree_size"] if previous else None
    return {"tree_size": checkpoint.tree_size, "previous_tree_size": before, "witness": vkey}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
