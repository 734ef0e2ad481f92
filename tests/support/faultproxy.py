"""A fault-injecting TCP proxy on 127.0.0.1, between yumaflow and a node (tests only).

It forwards bytes both ways and, for the connections a test names, does to the node's answers what a
flaky network or a restarting node does to a websocket:

    drop_after(n)   -> bytes     cut connection n after that many bytes from the node (mid-message)
    faults(n)       -> Fault     act on one websocket frame from the node on connection n:
        Fault("delay", frame=k, delay_s=s)   hold frame k for s seconds, then send it
        Fault("truncate", frame=k)           send the first half of frame k, then close the connection
        Fault("reorder", frame=k, hold_s=s)  hold frame k back and send the next frame first (or send
                                             it after s seconds if no next frame comes: a client with
                                             one request in flight never sends another meanwhile)

Frames are found by parsing the node's side after the HTTP upgrade: server-to-client frames are not
masked (RFC 6455 §5.1), so a 2-14 byte header gives each frame's length. Frame numbers count the
node's data frames of one connection from 1. It runs in threads of the test process and stops with
the context manager.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    kind: str  # delay | truncate | reorder
    frame: int  # which frame from the node (1-based, per connection)
    delay_s: float = 0.0
    hold_s: float = 1.0

    def __post_init__(self):
        if self.kind not in ("delay", "truncate", "reorder"):
            raise ValueError(f"unknown fault kind {self.kind!r} (delay, truncate, reorder)")


@dataclass
class FaultProxy:
    port: int
    connections: int = 0
    dropped: int = 0  # connections cut by drop_after or truncate
    delayed: int = 0
    reordered: int = 0  # frames sent after the frame that followed them
    released: int = 0  # held frames sent after hold_s because no next frame came
    # connection number (1-based) -> bytes from the node after which that connection is cut
    drop_after: Callable[[int], int | None] = lambda n: None
    faults: Callable[[int], Fault | None] = lambda n: None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()


def _pump(src: socket.socket, dst: socket.socket, budget: list[int | None], on_cut: Callable[[], None]) -> None:
    """Bytes as they come, cut after `budget` bytes if it is set."""
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
        _close(src, dst)


def _frame_length(buffer: bytes) -> int | None:
    """Length of the complete unmasked frame at the start of `buffer`, or None if it is not all there."""
    if len(buffer) < 2:
        return None
    length, at = buffer[1] & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, at = int.from_bytes(buffer[2:4], "big"), 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, at = int.from_bytes(buffer[2:10], "big"), 10
    at += 4 if buffer[1] & 0x80 else 0  # a masking key (never sent by a server, but skip it if present)
    return at + length if len(buffer) >= at + length else None


def _pump_frames(node: socket.socket, client: socket.socket, fault: Fault, proxy: FaultProxy) -> None:
    """Node → client, frame by frame after the HTTP upgrade, applying `fault` to its frame."""
    buffer, upgraded, number, held = b"", False, 0, None
    try:
        while True:
            if held is not None:
                node.settimeout(fault.hold_s)
            try:
                data = node.recv(65536)
            except TimeoutError:  # no next frame came: release the held one
                client.sendall(held)
                held = None
                proxy.count("released")
                node.settimeout(None)
                continue
            if not data:
                break
            buffer += data
            if not upgraded:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    continue
                client.sendall(buffer[: end + 4])
                buffer, upgraded = buffer[end + 4:], True
            while (length := _frame_length(buffer)) is not None:
                frame, buffer = buffer[:length], buffer[length:]
                number += 1
                if number == fault.frame and fault.kind == "delay":
                    time.sleep(fault.delay_s)
                    proxy.count("delayed")
                elif number == fault.frame and fault.kind == "truncate":
                    client.sendall(frame[: max(len(frame) // 2, 1)])
                    proxy.count("dropped")
                    return
                elif number == fault.frame and fault.kind == "reorder":
                    held = frame
                    continue
                client.sendall(frame)
                if held is not None:
                    client.sendall(held)
                    held = None
                    node.settimeout(None)
                    proxy.count("reordered")
    except OSError:
        pass
    finally:
        _close(node, client)


@contextmanager
def fault_proxy(target_port: int, drop_after: Callable[[int], int | None] = lambda n: None,
                faults: Callable[[int], Fault | None] = lambda n: None) -> Iterator[FaultProxy]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    proxy = FaultProxy(port=listener.getsockname()[1], drop_after=drop_after, faults=faults)
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
            fault = proxy.faults(number)
            upstream = threading.Thread(target=_pump, args=(client, node, [None], lambda: None), daemon=True)
            if fault is not None:
                downstream = threading.Thread(target=_pump_frames, args=(node, client, fault, proxy), daemon=True)
            else:
                downstream = threading.Thread(target=_pump, args=(node, client, [proxy.drop_after(number)],
                                                                  lambda: proxy.count("dropped")), daemon=True)
            for t in (upstream, downstream):
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
            _close(s)
        for t in threads:
            t.join(timeout=5)
