"""Container health check for `vaultctl server` (the image has no curl).

    python /opt/strongroom/healthcheck.py            # liveness: GET /api/vault/health
    python /opt/strongroom/healthcheck.py --ready    # readiness: GET /api/vault/health?ready=1

Exit 0 when the server answers 2xx within 4 seconds, 1 otherwise. The address is
http://127.0.0.1:8080, or https:// when STRONGROOM_TLS_CERT is set (the server's own certificate
is then the trust anchor, so no CA bundle and no host name are needed);
STRONGROOM_HEALTHCHECK_URL overrides it (base URL, without the path).
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    cert = os.environ.get("STRONGROOM_TLS_CERT")
    default = f"{'https' if cert else 'http'}://127.0.0.1:8080"
    base = os.environ.get("STRONGROOM_HEALTHCHECK_URL", default).rstrip("/")
    url = base + "/api/vault/health" + ("?ready=1" if "--ready" in argv else "")
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not 200 <= status < 300:
        print(f"unhealthy: {url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
