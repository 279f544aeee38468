"""The key store, the key registry the broker's ZAP handler asks, and web API tokens."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq.auth

from auth import curve, tokens
from auth import keys as K


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_client_key_is_authorised_under_its_name(tmp_path: Path) -> None:
    folder, out = tmp_path / "keys", tmp_path / "out"
    secret = K.create_client(folder, "alice", out)
    assert secret == out / "client.key_secret" and mode(secret) == 0o600
    assert (out / "server.key").read_bytes() == (folder / "server.key").read_bytes()
    assert mode(folder / "server.key_secret") == 0o600
    own, server_public = K.client_keys(secret, out / "server.key")
    known = K.authorised(folder)
    assert known[own.public] == "alice"
    assert known[server_public] == K.SERVER_USER  # the server's own processes
    assert not (folder / "clients" / "alice.key_secret").exists()  # the server keeps no secret
    assert [name for name, _ in K.listing(folder)] == ["afadmin", "alice"]
    assert own.public.decode() not in repr(K.listing(folder))


def test_key_names_are_checked_and_never_replaced_silently(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    for bad in ("", "a b", "../x", "x/y", ".hidden", "server", "afadmin", "x" * 65):
        with pytest.raises(K.AuthError):
            K.create_client(folder, bad, tmp_path / "out")
    K.create_client(folder, "farm01.studio", tmp_path / "out")
    with pytest.raises(K.AuthError, match="--force"):
        K.create_client(folder, "farm01.studio", tmp_path / "other")
    K.create_client(folder, "farm01.studio", tmp_path / "out", force=True)
    K.remove_client(folder, "farm01.studio")
    assert "farm01.studio" not in K.authorised(folder).values()
    with pytest.raises(K.AuthError, match="no key named"):
        K.remove_client(folder, "farm01.studio")


def test_missing_client_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(K.AuthError, match="afcmd keys create"):
        K.client_keys(tmp_path / "none", tmp_path / "none.key")
    with pytest.raises(K.AuthError, match="no server key"):
        K.server_keys(tmp_path)


def test_the_registry_follows_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    K.ensure_server_keys(folder)
    registry = curve.KeyRegistry(folder)
    stranger_public, _ = zmq.auth.load_certificate(
        zmq.auth.create_certificates(tmp_path, "stranger")[0]
    )
    assert registry.user(stranger_public) is None
    assert not registry.callback("afanasy", stranger_public)
    K.create_client(folder, "bob", tmp_path / "bob")
    bob_public, _ = zmq.auth.load_certificate(tmp_path / "bob" / "client.key_secret")
    assert registry.user(bob_public) == "bob"  # no restart needed
    K.remove_client(folder, "bob")
    assert registry.user(bob_public) is None


def test_af_auth_takes_known_modes_only() -> None:
    assert curve.mode({"af_auth": "CURVE "}) == "curve"
    assert curve.mode({"af_auth": ""}) == ""
    with pytest.raises(K.AuthError, match="af_auth"):
        curve.mode({"af_auth": "plain"})
    cfg = {"af_auth": "", "af_auth_key_file": "", "af_auth_server_key_file": ""}
    assert curve.client_keys(cfg) is None


def test_tokens_are_stored_hashed_and_verified(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    token = tokens.issue(folder, "alice", 1000.0)
    stored = (folder / tokens.FILE).read_text()
    assert token not in stored and token[4:] not in stored
    assert mode(folder / tokens.FILE) == 0o600
    verify = tokens.TokenVerifier(folder)
    assert verify(f"Bearer {token}") == "alice"
    assert verify(f"bearer   {token} ") == "alice"
    for bad in (None, "", token, f"Basic {token}", f"Bearer {token}x", "Bearer aft_", "Bearer"):
        assert verify(bad) is None
    second = tokens.issue(folder, "alice", 2000.0)
    assert verify(f"Bearer {second}") == "alice"  # re-read on change
    assert [(u, t) for u, t, _ in tokens.listing(folder)] == [("alice", 1000), ("alice", 2000)]
    assert tokens.revoke(folder, "alice") == 2
    assert verify(f"Bearer {token}") is None and verify(f"Bearer {second}") is None


def test_a_broken_token_file_verifies_nobody(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    token = tokens.issue(folder, "alice", 1.0)
    (folder / tokens.FILE).write_text("{not json")
    assert tokens.TokenVerifier(folder)(f"Bearer {token}") is None
    with pytest.raises(K.AuthError):
        tokens.issue(folder, "bob", 2.0)


def test_verify_is_pure_over_a_table() -> None:
    table = {tokens.digest("aft_abc"): {"user": "bob"}, tokens.digest("aft_x"): {}}
    assert tokens.verify("aft_abc", table) == "bob"
    assert tokens.verify("aft_x", table) is None  # an entry without a user proves nobody
    assert tokens.verify("abc", table) is None
    assert tokens.bearer("Bearer  aft_abc") == "aft_abc"
