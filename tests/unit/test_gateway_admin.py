"""The gateway's admin decision for the original's clients: names and source hosts."""

from __future__ import annotations

from gateway import admin


def fake_dns(host: str) -> list[str]:
    return {"wrangler-ws": ["10.0.0.7", "fd00::7"]}.get(host, [])


def test_nobody_by_default() -> None:
    assert admin.policy([], []) == admin.NOBODY
    assert admin.policy(["boss"], []) == admin.NOBODY
    assert admin.policy([], ["10.0.0.7"]) == admin.NOBODY
    assert not admin.acts_as_admin(admin.NOBODY, "boss", "127.0.0.1")


def test_a_listed_admin_from_a_listed_host_only() -> None:
    site = admin.policy(["boss"], ["wrangler-ws", "127.0.0.1", "unknown-host"], fake_dns)
    assert admin.acts_as_admin(site, "boss", "10.0.0.7")
    assert admin.acts_as_admin(site, "boss", "fd00:0:0:0::7")
    assert admin.acts_as_admin(site, "boss", "::ffff:127.0.0.1")  # a dual-stack socket's view
    assert admin.acts_as_admin(site, "boss", "127.0.0.1")
    assert not admin.acts_as_admin(site, "boss", "127.0.0.2")  # another host
    assert not admin.acts_as_admin(site, "jimmy", "127.0.0.1")  # not an admin
    assert not admin.acts_as_admin(site, "", "127.0.0.1")


def test_listed_hosts_that_are_not_strings_or_blank_are_skipped() -> None:
    site = admin.policy(["boss", ""], [" 10.0.0.9 ", "", 5], fake_dns)  # type: ignore[list-item]
    assert site.admins == frozenset({"boss"})
    assert site.addresses == frozenset({"10.0.0.9"})
