"""Audit devices: every audit entry streamed, as it is committed, to a file, syslog or a socket.

A device is configured by a spec string (`--audit-device`, `STRONGROOM_AUDIT_DEVICES`):

    file:PATH                  JSON lines appended to PATH (reopened on SIGHUP, for logrotate)
    syslog[:SOCKET]            RFC 5424 to the local syslog socket (default /dev/log)
    socket:HOST:PORT[,udp]     JSON lines over TCP (default) or one UDP datagram per entry

and any of them may end with `,optional`. The writer (`core.writer`) hands each batch's entries,
with their ids and chain MACs, to `AuditDevices.emit` inside the batch's transaction, before it
commits: a required device that fails fails the batch (nothing is stored, every caller gets
`StorageUnavailable`, a 503), like Vault's audit devices. An optional device's failure is logged
(at most once a minute per device, with the number of failures not logged) and ignored. A
record holds the entry's fields as stored, its id and MAC: never a secret value,
a key or a token (entries hold none).

This module must never write a secret value or key material; it sees only audit entries.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from strongroom import errors
from strongroom.clock import Clock, SystemClock
from strongroom.storage import NewAudit

__all__ = [
    "AuditDevice",
    "AuditDevices",
    "DeviceSpec",
    "Line",
    "open_device",
    "parse_device",
    "record",
    "request_reopen",
]

log = logging.getLogger(__name__)

_SYSLOG_SOCKET = "/dev/log"
#: RFC 5424 PRI: facility authpriv (10) * 8 + severity informational (6).
_SYSLOG_PRI = 10 * 8 + 6
_FLAGS = ("optional", "udp", "tcp")
#: An optional device's failures are logged at most once per period (per device).
_FAILURE_LOG_PERIOD = timedelta(minutes=1)
#: Bumped by SIGHUP (`request_reopen`); a file device reopens when it sees a new value.
_generation = [0]


def request_reopen() -> None:
    """Ask every file device of this process to reopen its file before its next write.

    Safe in a signal handler: it only bumps a counter; the writers reopen under their own lock.
    """
    _generation[0] += 1


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    """A parsed `--audit-device` value."""

    kind: str  # "file", "syslog" or "socket"
    target: str  # the path, the syslog socket, or HOST:PORT
    optional: bool = False
    udp: bool = False

    def __str__(self) -> str:
        flags = ",udp" * self.udp + ",optional" * self.optional
        return f"{self.kind}:{self.target}{flags}"


def parse_device(spec: str) -> DeviceSpec:
    """Parse one device spec (see the module docstring).

    Raises:
        InvalidInput: an unknown kind, a missing path, a bad HOST:PORT or an unknown flag.
    """
    text = spec.strip()
    parts = text.split(",")
    flags: list[str] = []
    while len(parts) > 1 and parts[-1].strip().lower() in _FLAGS:
        flags.append(parts.pop().strip().lower())
    head = ",".join(parts)
    kind, _, target = head.partition(":")
    optional, udp = "optional" in flags, "udp" in flags
    if kind == "file" and target:
        if udp or "tcp" in flags:
            raise errors.InvalidInput(f"audit device {spec!r}: udp/tcp apply to socket: only")
        return DeviceSpec("file", target, optional)
    if kind == "syslog":
        return DeviceSpec("syslog", target or _SYSLOG_SOCKET, optional)
    if kind == "socket":
        host, _, port = target.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return DeviceSpec("socket", target, optional, udp)
        raise errors.InvalidInput(f"audit device {spec!r}: expected socket:HOST:PORT")
    raise errors.InvalidInput(
        f"audit device {spec!r}: expected file:PATH, syslog[:SOCKET] or socket:HOST:PORT "
        "(optionally followed by ,optional)"
    )


#: An entry's fields, in order (a field a later schema adds to entries is recorded too).
_FIELDS = tuple(f.name for f in dataclasses.fields(NewAudit))


def record(entry: NewAudit, entry_id: int, mac: str | None) -> dict[str, object]:
    """The JSON record of one committed entry: its stored fields, id and MAC."""
    out: dict[str, object] = {"id": entry_id}
    for name in _FIELDS:
        out[name] = getattr(entry, name)
    out["timestamp"] = entry.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out["mac"] = mac
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One record ready to send: its JSON text (no newline) and its timestamp (for syslog)."""

    text: str
    timestamp: str


class AuditDevice(Protocol):
    """One destination of audit records."""

    spec: DeviceSpec

    def emit(self, lines: Sequence[Line]) -> None:
        """Write these records; raise OSError on failure."""

    def close(self) -> None:
        """Release the file or socket."""


class FileDevice:
    """JSON lines appended to a file (O_APPEND: whole batches from several processes do not
    interleave); reopened after SIGHUP so that logrotate can move it away."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._fd = -1
        self._generation = _generation[0]
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.spec.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def emit(self, lines: Sequence[Line]) -> None:
        data = "".join(line.text + "\n" for line in lines).encode("utf-8")
        with self._lock:
            if self._generation != _generation[0] or self._fd < 0:
                self._generation = _generation[0]
                self._reopen()
            written = os.write(self._fd, data)
            if written != len(data):  # a full disk writes short rather than raising
                raise OSError(f"short write ({written} of {len(data)} bytes)")

    def _reopen(self) -> None:
        old, self._fd = self._fd, -1
        if old >= 0:
            os.close(old)
        self._open()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class SyslogDevice:
    """RFC 5424 messages to the local syslog daemon's datagram socket, one per entry."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._host = socket.gethostname() or "-"
        self._pid = str(os.getpid())

    def emit(self, lines: Sequence[Line]) -> None:
        with self._lock:
            for line in lines:
                head = f"<{_SYSLOG_PRI}>1 {line.timestamp} {self._host} strongroom {self._pid}"
                self._sock.sendto(f"{head} audit - {line.text}".encode(), self.spec.target)

    def close(self) -> None:
        self._sock.close()


class SocketDevice:
    """JSON lines over TCP (one connection, reconnected once per failed batch), or one UDP
    datagram per entry."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        host, _, port = spec.target.rpartition(":")
        self._addr = (host.strip("[]"), int(port))
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.spec.udp:
            family = socket.AF_INET6 if ":" in self._addr[0] else socket.AF_INET
            return socket.socket(family, socket.SOCK_DGRAM)
        return socket.create_connection(self._addr, timeout=5)

    def emit(self, lines: Sequence[Line]) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                    self._send(self._sock, lines)
                    return
                except OSError:
                    self._drop()
                    if attempt == 2:
                        raise

    def _send(self, sock: socket.socket, lines: Sequence[Line]) -> None:
        if self.spec.udp:
            for line in lines:
                sock.sendto(line.text.encode("utf-8"), self._addr)
        else:
            sock.sendall("".join(line.text + "\n" for line in lines).encode("utf-8"))

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_device(spec: DeviceSpec) -> AuditDevice:
    """The device a spec describes, opened.

    Raises:
        InvalidInput: a file device whose file cannot be opened.
    """
    if spec.kind == "file":
        try:
            return FileDevice(spec)
        except OSError as exc:
            raise errors.InvalidInput(
                f"audit device {spec}: cannot open: {exc.strerror or type(exc).__name__}"
            ) from None
    if spec.kind == "syslog":
        return SyslogDevice(spec)
    return SocketDevice(spec)


class _FailureLog:
    """Logs an optional device's failures at most once per `every` (a failing device would
    otherwise log on every batch), with the number of failures not logged in between."""

    def __init__(self, clock: Clock, every: timedelta = _FAILURE_LOG_PERIOD) -> None:
        self._clock, self._every = clock, every
        self._lock = threading.Lock()
        self._logged_at: dict[str, datetime] = {}
        self._suppressed: dict[str, int] = {}

    def failed(self, device: str, cause: str) -> None:
        now = self._clock.now()
        with self._lock:
            last = self._logged_at.get(device)
            if last is not None and now - last < self._every:
                self._suppressed[device] = self._suppressed.get(device, 0) + 1
                return
            self._logged_at[device] = now
            quiet = self._suppressed.pop(device, 0)
        more = f" ({quiet} failures not logged since the last line)" if quiet else ""
        log.warning("optional audit device %s failed: %s%s", device, cause, more)


class AuditDevices:
    """The devices of one vault: `emit` sends a committed batch's entries to each of them."""

    def __init__(self, specs: Sequence[DeviceSpec], clock: Clock | None = None) -> None:
        self.devices = [open_device(s) for s in specs]
        self._failures = _FailureLog(clock or SystemClock())

    def __bool__(self) -> bool:
        return bool(self.devices)

    def emit(self, entries: Sequence[tuple[NewAudit, int, str | None]]) -> None:
        """Send entries (entry, id, MAC) to every device.

        Raises:
            StorageUnavailable: a required device failed (logged; the batch must not commit).
        """
        if not entries or not self.devices:
            return
        lines = []
        for entry, ident, mac in entries:
            rec = record(entry, ident, mac)
            lines.append(Line(json.dumps(rec, ensure_ascii=False), str(rec["timestamp"])))
        for device in self.devices:
            try:
                device.emit(lines)
            except OSError as exc:
                cause = exc.strerror or str(exc) or type(exc).__name__
                if device.spec.optional:
                    self._failures.failed(str(device.spec), cause)
                    continue
                log.error("audit device %s failed, request refused: %s", device.spec, cause)
                raise errors.StorageUnavailable(f"audit device {device.spec.kind} failed") from exc

    def close(self) -> None:
        """Close every device."""
        for device in self.devices:
            device.close()
