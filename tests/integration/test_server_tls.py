"""`vaultctl server --tls-cert/--tls-key`: HTTPS for vaultctl, hvac and bao with a private CA,
TLS 1.2 minimum, mutual TLS, certificate reload on SIGHUP without dropping connections, and a
one-line refusal (exit 2) for a bad certificate or key."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import hvac
import pytest

from tests.deploy.support import DEPLOY
from tests.integration.kv2_support import bao_binary
from tests.integration.server_proc import CHEAP_ARGON2, JWT_SECRET, ServerProcess, token
from tests.integration.tls_certs import CA, serial_of

#: The CA behind each `pki` fixture's files, by the folder they are in.
_CAS: dict[Path, CA] = {}


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = CA.create()
    folder = tmp_path / "pki"
    folder.mkdir()
    _CAS[folder] = ca
    cert, key, _ = ca.issue(folder, "server")
    client_cert, client_key, _ = ca.issue(folder, "client", client=True)
    return {
        "ca": ca.write(folder / "ca.pem"),
        "cert": cert,
        "key": key,
        "client_cert": client_cert,
        "client_key": client_key,
    }


def tls_server(tmp_path: Path, pki: dict[str, Path], *extra: str) -> ServerProcess:
    args = ["--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), *extra]
    return ServerProcess(tmp_path, args=args, ca_cert=pki["ca"])


def vaultctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


def peer_serial(port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return serial_of(der)


def test_https_for_vaultctl_hvac_and_bao(tmp_path: Path, pki: dict[str, Path]) -> None:
    server = tls_server(tmp_path, pki).start()
    try:
        assert "Strongroom server on https://" in server.output()
        env = {"VAULT_ADDR": server.url, "VAULT_TOKEN": token()}
        done = vaultctl(
            "--ca-cert", str(pki["ca"]), "create", "--path", "tls/a", "--value", "v1", env=env
        )
        assert done.returncode == 0, done.stderr
        done = vaultctl(
            "get", "--path", "tls/a", "--quiet", env={**env, "VAULT_CACERT": str(pki["ca"])}
        )
        assert (done.returncode, done.stdout.strip()) == (0, "v1"), done.stderr
        # Without the CA the server is not trusted: one line, no traceback.
        done = vaultctl("get", "--path", "tls/a", env=env)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr

        client = hvac.Client(url=server.url, token=token(), verify=str(pki["ca"]))
        assert client.is_authenticated()
        client.secrets.kv.v2.create_or_update_secret(path="tls/h", secret={"k": "hv"})
        got = client.secrets.kv.v2.read_secret_version(path="tls/h", raise_on_deleted_version=True)
        assert got["data"]["data"] == {"k": "hv"}

        bao_env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        bao_env.update(
            HOME=str(tmp_path),
            VAULT_ADDR=server.url,
            VAULT_TOKEN=token(),
            VAULT_CACERT=str(pki["ca"]),
        )
        done = subprocess.run(
            [bao_binary(), "kv", "get", "-field=k", "secret/tls/h"],
            capture_output=True,
            text=True,
            env=bao_env,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "hv"), done.stderr
    finally:
        assert server.stop() == 0, server.output()


def test_tls_1_1_and_plain_http_refused(tmp_path: Path, pki: dict[str, Path]) -> None:
    server = tls_server(tmp_path, pki).start()
    try:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(cafile=str(pki["ca"]))
        old.set_ciphers("ALL:@SECLEVEL=0")  # a client willing to speak TLS 1.1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            old.wrap_socket(raw, server_hostname="127.0.0.1")
        tls12 = ssl.create_default_context(cafile=str(pki["ca"]))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert httpx.get(f"{server.url}/api/vault/health", verify=tls12).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/api/vault/health", timeout=5)
        # The container's health check trusts the server's own certificate.
        env = {
            **os.environ,
            "STRONGROOM_TLS_CERT": str(pki["cert"]),
            "STRONGROOM_HEALTHCHECK_URL": server.url,
        }
        for extra in ([], ["--ready"]):
            done = subprocess.run(
                [sys.executable, str(DEPLOY / "healthcheck.py"), *extra],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, done.stderr
    finally:
        assert server.stop() == 0, server.output()


def test_mutual_tls(tmp_path: Path, pki: dict[str, Path]) -> None:
    server = tls_server(tmp_path, pki, "--tls-client-ca", str(pki["ca"]))
    with_cert = ssl.create_default_context(cafile=str(pki["ca"]))
    with_cert.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    server.verify = lambda: with_cert  # type: ignore[method-assign]
    server.start()
    try:
        with pytest.raises(httpx.HTTPError):
            without = ssl.create_default_context(cafile=str(pki["ca"]))
            httpx.get(f"{server.url}/api/vault/health", verify=without, timeout=5)
        assert httpx.get(f"{server.url}/api/vault/health", verify=with_cert).status_code == 200
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_certificate_keeping_connections(
    tmp_path: Path, pki: dict[str, Path], workers: int
) -> None:
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki["cert"], live_cert)
    shutil.copy(pki["key"], live_key)
    server = ServerProcess(
        tmp_path,
        workers=workers,
        args=["--tls-cert", str(live_cert), "--tls-key", str(live_key)],
        ca_cert=pki["ca"],
    ).start()
    try:
        first = peer_serial(server.port, pki["ca"])
        with server.client() as kept:  # one keep-alive connection across the reload
            assert kept.get("/api/vault/status").status_code == 200
            ca = CA.create()  # a bad pair first: refused, the old certificate stays
            bad_cert, _, _ = ca.issue(tmp_path, "other")
            shutil.copy(bad_cert, live_cert)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGHUP)
            end = time.monotonic() + 20
            while "not reloaded" not in server.output() and time.monotonic() < end:
                time.sleep(0.05)
            assert "not reloaded" in server.output()
            assert peer_serial(server.port, pki["ca"]) == first

            new_cert, new_key, new_serial = ca_of(pki).issue(tmp_path, "renewed")
            shutil.copy(new_key, live_key)
            shutil.copy(new_cert, live_cert)
            server.proc.send_signal(signal.SIGHUP)
            end = time.monotonic() + 20
            while peer_serial(server.port, pki["ca"]) != new_serial:
                assert time.monotonic() < end, server.output()
                time.sleep(0.05)
            if workers > 1:  # every worker reloaded: new handshakes all see the new one
                assert {peer_serial(server.port, pki["ca"]) for _ in range(12)} == {new_serial}
            assert kept.get("/api/vault/status").status_code == 200
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0, server.output()


def ca_of(pki: dict[str, Path]) -> CA:
    """The CA that signed the fixture's certificates (its key only in the test's memory)."""
    return _CAS[pki["ca"].parent]


@pytest.mark.parametrize("problem", ["mismatch", "unreadable", "not-pem"])
def test_bad_certificate_refused_in_one_line(
    tmp_path: Path, pki: dict[str, Path], problem: str
) -> None:
    cert, key = pki["cert"], pki["key"]
    if problem == "mismatch":
        key = pki["client_key"]
    elif problem == "unreadable":
        key = tmp_path / "missing.key"
    else:
        cert = tmp_path / "junk.crt"
        cert.write_text("not a certificate\n")
    env = {**os.environ, **CHEAP_ARGON2, "VAULT_JWT_SECRET": JWT_SECRET}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--db-dsn",
            f"sqlite:///{tmp_path / 'v.db'}",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "PRIVATE KEY" not in done.stderr


def test_plain_http_on_a_public_address_warns(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, master_key=None)
    server.cmd += ["--listen", f"0.0.0.0:{server.port}"]
    server.start()
    try:
        assert "Warning: plain HTTP on 0.0.0.0" in server.output()
    finally:
        assert server.stop() == 0
    local = ServerProcess(tmp_path, master_key=None).start()
    try:
        assert "plain HTTP" not in local.output()
    finally:
        assert local.stop() == 0
