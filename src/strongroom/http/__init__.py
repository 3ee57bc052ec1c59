"""The HTTP adapter: the ASGI app of `vaultctl server` (see app.create_app)."""

from strongroom.http.app import create_app
from strongroom.http.settings import Masked, ServerSettings

__all__ = ["Masked", "ServerSettings", "create_app"]
