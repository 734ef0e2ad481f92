"""A real Subtensor runtime (spec 218) running locally under Chopsticks, for tests and developers.

Chopsticks executes the runtime WASM taken from a raw chain spec's genesis; with no `--endpoint` it
never contacts another node, and with no `--db` its state lives in memory (../shared/local_chain.md
§3.1). Blocks are built only on `dev_newBlock` (Manual mode), so tests decide when time moves.

    with local_chain() as chain:          # picks a free 127.0.0.1 port, waits until ready
        SubstrateInterface(url=chain.url)
    # here the whole process group is gone

The raw spec is never copied into the project: it is read from ../shared/chain/ next to the repo,
or from the path in YUMAFLOW_LOCAL_CHAIN_SPEC.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC_ENV = "YUMAFLOW_LOCAL_CHAIN_SPEC"
SPEC_FILE_NAME = "raonet-spec218.json"
CHOPSTICKS_ENTRY = REPO / "node_modules" / "@acala-network" / "chopsticks" / "chopsticks.cjs"
INSTALL_HINT = "run `npm ci --no-audit --no-fund --ignore-scripts` at the repo root (Node >= 20)"

STARTUP_TIMEOUT_S = 90.0  # measured 2.3 s idle, up to 13 s on 2 cores at load 8; generous for CI
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
LOG_TAIL_LINES = 40


class LocalChainError(RuntimeError):
    """The local chain could not be started (missing parts, early exit, or not ready in time)."""

    def __init__(self, message: str, log_path: Path | None = None):
        super().__init__(message)
        self.log_path = log_path  # Chopsticks' log, kept when start-up failed


@dataclass(frozen=True)
class LocalChain:
    """A running Chopsticks process group serving one chain on 127.0.0.1."""

    url: str  # ws://127.0.0.1:PORT
    http_url: str  # the same server answers JSON-RPC over HTTP
    port: int
    pgid: int  # the process group leader (started with setsid), stopped as a group
    log_path: Path
    spec_path: Path
    startup_s: float  # from spawn to the first answered chain_getHeader


def chain_spec_path() -> Path:
    """The raw chain spec to run: $YUMAFLOW_LOCAL_CHAIN_SPEC, else ../shared/chain/raonet-spec218.json."""
    override = os.environ.get(SPEC_ENV)
    if override:
        path = Path(override).expanduser().resolve()
        source = f"${SPEC_ENV}"
    else:
        shared = Path(os.environ.get("YUMAFLOW_SHARED", REPO.parent / "shared"))
        path = (shared / "chain" / SPEC_FILE_NAME).resolve()
        source = "the shared folder next to the repo"
    if not path.is_file():
        raise LocalChainError(f"raw chain spec not found at {path} (from {source}); set {SPEC_ENV}")
    return path


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chopsticks_launcher() -> list[str]:
    """`node path/to/chopsticks.cjs`, or a LocalChainError saying how to install what is missing."""
    node = shutil.which("node")
    if node is None:
        raise LocalChainError(f"`node` is not on PATH; {INSTALL_HINT}")
    if not CHOPSTICKS_ENTRY.is_file():
        raise LocalChainError(f"Chopsticks is not installed ({CHOPSTICKS_ENTRY} missing); {INSTALL_HINT}")
    return [node, str(CHOPSTICKS_ENTRY)]


def chopsticks_arguments(spec_path: Path, port: int) -> list[str]:
    """Genesis from a local file (a URL would be fetched), loopback only, manual blocks, no db."""
    return [f"--genesis={spec_path}", "--host=127.0.0.1", f"--port={port}", "--build-block-mode=Manual"]


def terminate_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM if our process dies first, so a
    killed test run (CI timeout, SIGKILL) leaves no chain behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def rpc_over_http(http_url: str, method: str, params: list, timeout_s: float = 5.0) -> object:
    """One JSON-RPC call over HTTP; returns `result` or raises LocalChainError with the error."""
    body = json.dumps({"id": 1, "jsonrpc": "2.0", "method": method, "params": params}).encode()
    request = urllib.request.Request(http_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        answer = json.load(response)
    if "error" in answer:
        raise LocalChainError(f"{method} failed: {answer['error']}")
    return answer["result"]


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def process_group_alive(pgid: int) -> bool:
    """True while any process of the group exists (signal 0 only checks)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_group_exit(process: subprocess.Popen, timeout_s: float) -> bool:
    """Reap the leader and wait until no process of its group is left; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()  # reaps the leader, otherwise it stays in the group as a zombie
        if not process_group_alive(process.pid):
            return True
        time.sleep(0.05)
    return False


def stop_process_group(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the whole group, SIGKILL it if anything is left after the timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        if wait_for_group_exit(process, timeout_s):
            break
    process.wait(timeout=timeout_s)


def wait_until_ready(process: subprocess.Popen, http_url: str, log_path: Path, timeout_s: float) -> None:
    """Poll until the chain answers with block #1 built; fail early if the process exits.

    Chopsticks builds #1 from genesis at start-up, but there the Aura slot and the timestamp
    inherent each read the wall clock (no Timestamp.Now yet), and across a slot boundary the runtime
    panics: `Timestamp slot must match CurrentSlot`. The server then starts with head #0, so we build
    #1 again. From #1 on, each timestamp is the parent's plus one slot, and no clock is involved.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalChainError(
                f"Chopsticks exited with code {process.returncode} before serving {http_url}; "
                f"log {log_path}:\n{log_tail(log_path)}",
                log_path,
            )
        try:
            header = rpc_over_http(http_url, "chain_getHeader", [], timeout_s=2.0)
            if isinstance(header, dict) and int(header["number"], 16) >= 1:
                return
            if isinstance(header, dict):
                rpc_over_http(http_url, "dev_newBlock", [{"count": 1}], timeout_s=30.0)
                continue
        except (OSError, urllib.error.URLError, LocalChainError, ValueError, KeyError):
            pass  # not listening yet, or the block build failed
        time.sleep(0.1)
    raise LocalChainError(
        f"Chopsticks did not serve block #1 at {http_url} within {timeout_s:.0f} s; "
        f"log {log_path}:\n{log_tail(log_path)}",
        log_path,
    )


@contextmanager
def local_chain(
    spec_path: Path | None = None,
    *,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    log_dir: Path | None = None,
) -> Iterator[LocalChain]:
    """Run a chain from `spec_path` (default: chain_spec_path()) until the block exits.

    The process runs in its own session and process group (setsid), with its working directory and
    log in a temporary directory, and is always stopped as a group on exit, error or interrupt. The
    temporary directory is removed after a clean exit and kept otherwise (errors name the log).
    """
    spec = spec_path.resolve() if spec_path else chain_spec_path()
    launcher = chopsticks_launcher()
    run_dir = Path(tempfile.mkdtemp(prefix="yumaflow-localchain-", dir=log_dir))
    log_path = run_dir / "chopsticks.log"
    attempts = 3  # the free port can be taken between our probe and Chopsticks' bind
    for attempt in range(1, attempts + 1):
        port = free_loopback_port()
        http_url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                launcher + chopsticks_arguments(spec, port),
                cwd=run_dir,  # keeps Chopsticks from reading a .env or writing files in the repo
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid: the child leads a new process group
                preexec_fn=terminate_with_parent,
            )
        try:
            wait_until_ready(process, http_url, log_path, startup_timeout_s)
        except LocalChainError:
            stop_process_group(process)
            if attempt < attempts and "EADDRINUSE" in log_tail(log_path):
                continue
            raise
        except BaseException:
            stop_process_group(process)
            raise
        break
    chain = LocalChain(
        url=f"ws://127.0.0.1:{port}",
        http_url=http_url,
        port=port,
        pgid=process.pid,
        log_path=log_path,
        spec_path=spec,
        startup_s=time.monotonic() - started,
    )
    try:
        yield chain
    finally:
        stop_process_group(process)
    # Reached only when the block ended without an error: on failure the log stays for reading.
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def local_chain_node() -> Iterator[LocalChain]:
    """A fresh local chain per test module (import this fixture into the test module to use it)."""
    with local_chain() as chain:
        yield chain


@contextmanager
def blocks_in_background(http_url: str, interval_s: float = 0.2):
    """Build a block every `interval_s` until the block exits (Manual mode has no block author)."""
    stop = threading.Event()

    def author():
        while not stop.wait(interval_s):
            rpc_over_http(http_url, "dev_newBlock", [{"count": 1}], timeout_s=60)

    thread = threading.Thread(target=author, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
