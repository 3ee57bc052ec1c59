"""deploy/nginx/strongroom.conf in front of a real `vaultctl server --trusted-proxy 127.0.0.1/32`:
nginx accepts the file (`nginx -t`), serves TLS with HSTS, redirects plain HTTP, keeps /metrics
private, and the audit log records the client's address, not one the client forged."""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.support import DEPLOY, need_root, need_tool
from tests.integration.server_proc import ServerProcess, auth, free_port

CONF = DEPLOY / "nginx" / "strongroom.conf"
CLIENT_IP = "127.0.0.2"  # the "remote" client; nginx itself reaches the server from 127.0.0.1


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("vault.example.com"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def site_config(work: Path, upstream: int, http_port: int, https_port: int) -> Path:
    """The shipped file with this test's ports and certificate, wrapped in a main config."""
    cert, key = self_signed(work)
    text = CONF.read_text(encoding="utf-8")
    replacements = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/ssl/strongroom/fullchain.pem": str(cert),
        "/etc/ssl/strongroom/privkey.pem": str(key),
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    text = re.sub(r"^\s*listen \[::\]:\d+.*$", "", text, flags=re.MULTILINE)
    (work / "strongroom.conf").write_text(text)
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
{temp}
    include {work / "strongroom.conf"};
}}
"""
    (work / "nginx.conf").write_text(main)
    return work / "nginx.conf"


@pytest.fixture
def work() -> Iterator[Path]:
    # nginx's worker (user nobody) must reach the temp paths.
    path = Path(tempfile.mkdtemp(prefix="strongroom-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_config_is_valid(work: Path) -> None:
    nginx = need_tool("nginx", "Debian package nginx-light")
    config = site_config(work, free_port(), free_port(), free_port())
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", str(work / "error.log"), "-c", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + (work / "error.log").read_text()


def test_terminates_tls_and_forwards_the_client_address(work: Path, tmp_path: Path) -> None:
    nginx = need_tool("nginx", "Debian package nginx-light")
    need_root("nginx's master process")
    server = ServerProcess(tmp_path, args=["--trusted-proxy", "127.0.0.1/32"]).start()
    http_port, https_port = free_port(), free_port()
    config = site_config(work, server.port, http_port, https_port)
    proc = subprocess.Popen(
        [nginx, "-e", str(work / "error.log"), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"https://127.0.0.1:{https_port}"
    verify = ssl.create_default_context(cafile=str(work / "fullchain.pem"))
    transport = httpx.HTTPTransport(local_address=CLIENT_IP, verify=verify)
    try:
        with httpx.Client(transport=transport, base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 15
            while True:
                try:
                    health = client.get("/api/vault/health")
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None, (work / "error.log").read_text()
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert health.status_code == 200
            assert health.headers["strict-transport-security"] == "max-age=63072000"
            # A forged X-Forwarded-For does not reach the audit log.
            created = client.post(
                "/api/vault/secrets",
                json={"path": "app/proxy-check", "value": "v"},
                headers={**auth(), "X-Forwarded-For": "203.0.113.9"},
            )
            assert created.status_code == 201, created.text
            assert client.get("/metrics").status_code == 404
        audit = httpx.get(
            f"{server.url}/api/vault/secrets/app/proxy-check/audit", headers=auth(), timeout=10
        ).json()
        assert [e["ip_address"] for e in audit["logs"]] == [CLIENT_IP]

        # Plain HTTP is redirected.
        redirect = httpx.get(f"http://127.0.0.1:{http_port}/api/vault/health", timeout=10)
        assert redirect.status_code == 301
        assert redirect.headers["location"].startswith("https://")
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=15)
        server.stop()
