"""`http.uvserver.Server`: once it serves, the heap built so far is frozen out of the garbage
collector's sight (`gc.freeze`); a server whose startup failed freezes nothing. A real uvicorn
server on a loopback port, in a thread of this process (unfrozen again afterwards)."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from strongroom.http.uvserver import Server


def _app(fail: bool) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    kind = "failed" if fail else "complete"
                    await send({"type": f"lifespan.startup.{kind}"})
                    if fail:
                        return
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def _server(fail: bool) -> tuple[Server, int]:
    port = _port()
    config = uvicorn.Config(
        _app(fail), host="127.0.0.1", port=port, loop="uvloop", lifespan="on", log_level="critical"
    )
    return Server(config), port


def test_a_serving_server_freezes_the_heap_built_before(unfrozen: None) -> None:
    server, port = _server(fail=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (server.started and gc.get_freeze_count()):  # (frozen just after it starts)
            assert thread.is_alive() and time.monotonic() < deadline, "nothing was frozen"
            time.sleep(0.01)
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules, the app: this process's objects until now
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_a_server_whose_startup_failed_freezes_nothing(unfrozen: None) -> None:
    server, _ = _server(fail=True)

    def run() -> None:
        with pytest.raises(SystemExit):  # uvicorn's exit on a failed startup
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and not server.started
    assert gc.get_freeze_count() == 0
