"""Node keys and URL (contract §7.4): generated in development, required in production once NODE_URL is set,
checked by ``check --deploy``; a malformed value stops the start with the variable's name, never its value;
no NODE_URL: a single node, exactly as before."""

from __future__ import annotations

import base64
import json
import secrets

from django.test import override_settings

from config import env
from federation.checks import check_node_keys
from tests.config.test_settings_and_health import _manage, _production_env


def _ids(messages) -> set[str]:
    return {m.id for m in messages}


def test_production_with_node_url_requires_both_node_keys(tmp_path):
    environment = _production_env(
        NODE_URL="https://iom.node.example", DATABASE_URL=f"sqlite:///{tmp_path}/db"
    )
    result = _manage("check", **environment)
    assert result.returncode != 0
    assert "NODE_SIGNING_KEY" in result.stderr and "NODE_ENCRYPTION_KEY" in result.stderr


def test_production_without_node_url_is_a_single_node_needing_no_node_key(tmp_path):
    result = _manage("check", **_production_env(DATABASE_URL=f"sqlite:///{tmp_path}/db"))
    assert result.returncode == 0, result.stderr[-2000:]


def test_production_node_with_its_keys_passes_the_deploy_check(tmp_path):
    environment = _production_env(
        NODE_URL="https://iom.node.example",
        NODE_SIGNING_KEY=env.new_key_text(),
        NODE_ENCRYPTION_KEY=env.new_key_text(),
        DATABASE_URL=f"sqlite:///{tmp_path}/db",
    )
    result = _manage("check", "--deploy", **environment)
    assert "federation.E00" not in result.stdout + result.stderr


def test_malformed_values_name_the_variable_never_the_value(tmp_path):
    short = base64.urlsafe_b64encode(secrets.token_bytes(31)).decode()
    for name, value, message in (
        ("NODE_SIGNING_KEY", short, "NODE_SIGNING_KEY: every key must decode to 32 bytes"),
        ("NODE_ENCRYPTION_KEY", "§§not base64§§", "NODE_ENCRYPTION_KEY: a key is not url-safe base64"),
        ("NODE_URL", "ftp://iom.node.example", "NODE_URL must be an absolute http(s) URL"),
        ("NODE_URL", "https://user:pw@iom.node.example", "NODE_URL must be an absolute http(s) URL"),
        ("NODE_URL", "https://iom.node.example/?x=1", "NODE_URL must be an absolute http(s) URL"),
    ):
        result = _manage(
            "check", **{name: value, "VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
        )
        assert result.returncode != 0 and message in result.stderr, result.stderr[-1500:]
        if name != "NODE_URL":
            assert value not in result.stdout + result.stderr


def test_development_generates_node_keys_and_federation_stays_off(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "VAR_DIR", tmp_path)
    values = env.dev_secrets()
    for name in ("NODE_SIGNING_KEY", "NODE_ENCRYPTION_KEY"):
        assert len(env.decode_key(values[name], name)) == 32
    assert values["NODE_SIGNING_KEY"] != values["NODE_ENCRYPTION_KEY"]
    assert json.loads((tmp_path / "dev-keys.json").read_text()) == values
    # The embedded default (no NODE_URL): the federation door is closed, the rest starts as ever.
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; from federation import keys; "
        "print(repr(settings.NODE_URL), keys.enabled())",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path}/db",
    )
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip().splitlines()[-1] == "'' False"


def test_deploy_check_knows_the_node_keys(settings):
    good = {"NODE_SIGNING_KEY": secrets.token_bytes(32), "NODE_ENCRYPTION_KEY": secrets.token_bytes(32)}
    with override_settings(NODE_URL="", NODE_SIGNING_KEY=b"", NODE_ENCRYPTION_KEY=b""):
        assert check_node_keys() == []  # federation off: nothing to check
    with override_settings(NODE_URL="https://n.example", NODE_SIGNING_KEY=b"", NODE_ENCRYPTION_KEY=b""):
        assert _ids(check_node_keys()) == {"federation.E001"}
    with override_settings(NODE_URL="https://n.example", NODE_KEYS_ARE_DEVELOPMENT=True, **good):
        assert _ids(check_node_keys()) == {"federation.E002"}
    with override_settings(NODE_URL="https://n.example", NODE_KEYS_ARE_DEVELOPMENT=False, **good):
        assert check_node_keys() == []
    with override_settings(
        NODE_URL="https://n.example",
        NODE_KEYS_ARE_DEVELOPMENT=False,
        NODE_SIGNING_KEY=settings.AUDIT_SIGNING_KEY,
        NODE_ENCRYPTION_KEY=secrets.token_bytes(32),
    ):
        assert _ids(check_node_keys()) == {"federation.E003"}


def test_the_node_keys_are_built_once_per_value_and_follow_a_changed_setting(settings):
    """``keys.signing_key``/``encryption_key`` keep the key object built from the setting's bytes (not rebuilt
    at every message signed or opened), and a new value — a rotation — is used at once."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from federation import keys
    from federation.cards import raw_public

    first, second = secrets.token_bytes(32), secrets.token_bytes(32)
    settings.NODE_URL = "https://iom.node.example"
    settings.NODE_SIGNING_KEY, settings.NODE_ENCRYPTION_KEY = first, second
    assert keys.signing_key() is keys.signing_key() and keys.encryption_key() is keys.encryption_key()
    assert raw_public(keys.signing_key()) == raw_public(Ed25519PrivateKey.from_private_bytes(first))
    assert raw_public(keys.encryption_key()) == raw_public(X25519PrivateKey.from_private_bytes(second))
    settings.NODE_SIGNING_KEY, settings.NODE_ENCRYPTION_KEY = second, first  # rotated
    assert raw_public(keys.signing_key()) == raw_public(Ed25519PrivateKey.from_private_bytes(second))
    assert raw_public(keys.encryption_key()) == raw_public(X25519PrivateKey.from_private_bytes(first))
