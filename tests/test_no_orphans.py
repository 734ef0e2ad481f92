"""Whatever yumaflow starts dies with it: SIGKILL of the yumaflow process alone (not its process group, as
a supervisor, the OOM killer or a user would) at several points leaves no process of its behind; in
particular not Prefect's temporary API server (flows/tether.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")
SERVER = "prefect.server.api.server:create_app"


def processes_tagged(tag: str) -> dict[int, str]:
    """{pid: command line} of every live process whose environment carries `tag`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("when", ["server_started", "server_answering", "mid_backfill"])
def test_sigkill_of_yumaflow_alone_leaves_no_process_of_its(tmp_path, when):
    tag = f"YUMAFLOW_ORPHAN_TEST={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # its own temporary server
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_LOGGING_LEVEL="WARNING",
               YUMAFLOW_ORPHAN_TEST=tag.split("=", 1)[1])
    wh = tmp_path / "wh"
    proc = subprocess.Popen([BIN, "backfill", "--chain", f"sim:11@{tmp_path / 'sim.json'}", "--netuid", "1",
                             "--start-block", "0", "--end-block", "200", "--chunk-size", "5",
                             "--warehouse", str(wh)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def server_up() -> bool:
            return any(SERVER in cmd for pid, cmd in processes_tagged(tag).items() if pid != proc.pid)

        assert wait_for(server_up, 120), "Prefect's temporary server never started"
        if when == "server_answering":
            time.sleep(3.0)
        elif when == "mid_backfill":
            assert wait_for(lambda: (wh / "_manifest.parquet").exists(), 180), "the backfill never committed"
        assert proc.poll() is None, "yumaflow finished before its kill point"
        children = {pid: cmd for pid, cmd in processes_tagged(tag).items() if pid != proc.pid}
        assert children, "yumaflow had started no process"
        os.kill(proc.pid, signal.SIGKILL)  # the yumaflow process alone
        proc.wait()
        assert wait_for(lambda: not processes_tagged(tag), 20), f"left running: {processes_tagged(tag)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in processes_tagged(tag):  # never leave anything behind, even when the test fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
