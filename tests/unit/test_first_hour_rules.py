"""Pure rules behind issue 11's first hour: new-key strength, role spelling, bare --addr."""

from __future__ import annotations

import pytest

from strongroom import errors
from strongroom.cli.addr import server_url
from strongroom.core.keyrules import check_new_master_key, master_key_weakness
from strongroom.core.roles import canonical_role


@pytest.mark.parametrize(
    "key",
    [
        "test-master-key-0123456789",
        "correct horse battery staple",
        "8473629184756302x",
        "Ωμέγα-κλειδί-ασφαλές",
        "gT4rL9vQ2mX7pZ1k",
    ],
)
def test_reasonable_keys_pass(key: str) -> None:
    assert master_key_weakness(key) is None
    assert check_new_master_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "at least 16 characters"),
        ("k", "at least 16 characters"),
        ("fifteen-chars-x", "at least 16 characters"),
        ("aaaaaaaaaaaaaaaaaaaa", "fewer than 8 different"),
        ("passwordpassword", "fewer than 8 different"),
        ("abc123XYabc123XYabc1", "repeats a short pattern"),
        ("abcdefghijklmnopqrst", "mostly runs"),
        ("12345678901234567890", "repeats a short pattern"),
        ("1234567890qrstuvwxyz", "mostly runs"),
        ("8473629184756302", "under 64 bits"),
    ],
)
def test_weak_keys_are_named_with_the_rule(key: str, reason: str) -> None:
    problem = master_key_weakness(key)
    assert problem is not None and reason in problem
    with pytest.raises(errors.InvalidInput, match="generate one with") as raised:
        check_new_master_key(key, "new master key")
    assert raised.value.message.startswith("new master key ")
    if len(key) > 3:
        assert key not in raised.value.message  # messages never echo the key


def test_a_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="must be a string"):
        check_new_master_key(b"bytes-are-not-a-key-0123")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("admin", "Admin"),
        ("ADMIN", "Admin"),
        ("Admin", "Admin"),
        ("superadmin", "SuperAdmin"),
        ("SuperADMIN", "SuperAdmin"),
        ("App", "App"),
        ("admins", "admins"),
    ],
)
def test_builtin_roles_get_their_canonical_spelling(given: str, stored: str) -> None:
    assert canonical_role(given) == stored


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("127.0.0.1:8091", "http://127.0.0.1:8091"),
        ("127.1.2.3:80", "http://127.1.2.3:80"),
        ("localhost:8091", "http://localhost:8091"),
        ("[::1]:8091", "http://[::1]:8091"),
        ("http://vault.example.com:8200", "http://vault.example.com:8200"),
        ("https://vault.example.com", "https://vault.example.com"),
    ],
)
def test_addr_urls(addr: str, url: str) -> None:
    assert server_url(addr) == url


@pytest.mark.parametrize("addr", ["vault.example.com:8200", "10.0.0.5:8200", "[2001:db8::1]:80"])
def test_a_bare_remote_addr_asks_for_a_scheme(addr: str) -> None:
    with pytest.raises(errors.InvalidInput, match=r"add http:// or https://"):
        server_url(addr)


def test_another_scheme_is_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="http:// or https://"):
        server_url("ftp://127.0.0.1:21")
