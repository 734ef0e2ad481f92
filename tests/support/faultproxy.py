"""A fault-injecting TCP proxy on 127.0.0.1, between yumaflow and a node (tests only).

It forwards bytes both ways and, for the connections a test names, drops them after a number of
bytes from the node have gone through: what a flaky network or a restarting node does to a
websocket mid-request. It runs in a thread of the test process and stops with the context manager.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    port: int
    connections: int = 0
    dropped: int = 0
    # connection number (1-based) -> bytes from the node after which that connection is cut
    drop_after: Callable[[int], int | None] = lambda n: None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def _pump(src: socket.socket, dst: socket.socket, budget: list[int | None], on_cut: Callable[[], None]) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if budget[0] is not None:
                if len(data) >= budget[0]:
                    dst.sendall(data[: budget[0]])
                    on_cut()
                    break
                budget[0] -= len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@contextmanager
def fault_proxy(target_port: int, drop_after: Callable[[int], int | None]) -> Iterator[FaultProxy]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    proxy = FaultProxy(port=listener.getsockname()[1], drop_after=drop_after)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with proxy._lock:
                proxy.connections += 1
                number = proxy.connections
            node = socket.create_connection(("127.0.0.1", target_port))
            sockets.extend((client, node))
            budget: list[int | None] = [proxy.drop_after(number)]

            def cut() -> None:
                with proxy._lock:
                    proxy.dropped += 1

            for a, b, bud in ((client, node, [None]), (node, client, budget)):
                t = threading.Thread(target=_pump, args=(a, b, bud, cut), daemon=True)
                t.start()
                threads.append(t)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield proxy
    finally:
        stop.set()
        listener.close()
        server.join(timeout=5)
        for s in sockets:  # connections still open: close them so their pump threads end now
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in threads:
            t.join(timeout=5)
