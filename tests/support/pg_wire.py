"""A loopback proxy in front of PostgreSQL that reads what its clients send, message by
message (the frontend protocol: an untyped startup, then a type byte and a length per
message), so a test can count a driver's round trips and see its statements: BEGIN or
ROLLBACK sent as simple queries, SQLAlchemy's prepared statements as Parse, Bind,
Execute and a Sync per round trip. Connect without SSL (`ssl=False`): it reads plain
bytes."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from tests.support.tcp_proxy import TcpProxy

_SSL_OR_GSS = (80877103, 80877104)  # requests a client may send before its startup


class PgWire(TcpProxy):
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        super().__init__(target_host, target_port)
        self._lock = threading.Lock()
        self.sent: list[str] = []  # per message: a simple query's text, or "sync"

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.sent)

    def watcher(self) -> Callable[[bytes], None]:
        buf = bytearray()
        started = False

        def watch(data: bytes) -> None:
            nonlocal started
            buf.extend(data)
            while True:
                if not started:
                    if len(buf) < 8:
                        return
                    (length,) = struct.unpack("!i", buf[:4])
                    if len(buf) < length:
                        return
                    (code,) = struct.unpack("!i", buf[4:8])
                    del buf[:length]
                    started = code not in _SSL_OR_GSS
                    continue
                if len(buf) < 5:
                    return
                kind = chr(buf[0])
                (length,) = struct.unpack("!i", buf[1:5])
                if len(buf) < 1 + length:
                    return
                body = bytes(buf[5 : 1 + length])
                del buf[: 1 + length]
                if kind == "Q":
                    self._add(body.rstrip(b"\0").decode().strip())
                elif kind == "S":
                    self._add("sync")

        return watch

    def _add(self, item: str) -> None:
        with self._lock:
            self.sent.append(item)
