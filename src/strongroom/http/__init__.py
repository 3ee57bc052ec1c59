"""The HTTP adapter: the ASGI app serving /api/vault, /api/auth, /v1 and /metrics."""
