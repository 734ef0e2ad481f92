"""One writer at a time: an exclusive `fcntl.flock` on `root/.write.lock`, held for a whole write.

The holder writes who it is into the lock file, so a second writer that gives up can name it. The
kernel drops the lock when the holder's process dies (even by SIGKILL), so a crash never leaves the
warehouse locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse's write lock for longer than the timeout."""


class WriterLock:
    def __init__(self, path: Path, timeout_s: float):
        self.path = path
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise WarehouseLockedError(
                        f"warehouse write lock {self.path} is held by {holder}; gave up after "
                        f"{self.timeout_s:g} s (one writer at a time: wait for it to finish, or raise "
                        f"the lock timeout)") from None
                time.sleep(0.02)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv[:4],
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return "an unknown process"
    if not info:
        return "an unknown process"
    return (f"PID {info.get('pid')} on {info.get('host')} ({' '.join(info.get('argv') or [])}), "
            f"since {info.get('since')}")
