"""Processes yumaflow starts die with it, even when yumaflow itself is SIGKILLed.

Prefect's temporary API server (ephemeral mode) is a `python -m uvicorn …` child that Prefect stops at
exit; a process killed by SIGKILL (a supervisor, the OOM killer, a user) never gets there, and the
server lived on, orphaned, holding ~210 MB. `tether_prefect_server()` makes Prefect start that server
through this module instead (`python -m flows.tether PARENT_PID uvicorn …`), which runs the same
module in the same process with a watcher thread: when the parent is gone (the process is re-parented),
it stops the server (SIGTERM to itself, uvicorn's own graceful shutdown; a hard exit if that hangs).

A parent-death signal (prctl PR_SET_PDEATHSIG) is not used: it fires when the *thread* that started the
child ends, and Prefect may start its server from a worker thread that ends long before the process.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

POLL_S = 0.5
GRACE_S = 5.0


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def tether_prefect_server() -> None:
    """Start Prefect's temporary server (when this process needs one) tied to this process."""
    import subprocess

    import prefect
    from prefect.server.api import server
    from prefect.settings import get_current_settings

    if getattr(server.SubprocessASGIServer, "_yumaflow_tethered", False):
        return

    def run_uvicorn_command(self) -> subprocess.Popen:
        # Prefect 3.9.1's SubprocessASGIServer._run_uvicorn_command, started through this module.
        server_env = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        return subprocess.Popen(
            args=[sys.executable, "-m", "flows.tether", str(os.getpid()), "uvicorn",
                  "--app-dir", str(prefect.__module_path__.parent), "--factory",
                  "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                  "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **server_env, **get_current_settings().to_environment_variables(exclude_unset=True)},
        )

    server.SubprocessASGIServer._run_uvicorn_command = run_uvicorn_command
    server.SubprocessASGIServer._yumaflow_tethered = True


def main(argv: list[str]) -> None:
    parent_pid, module, *args = argv
    threading.Thread(target=_watch, args=(int(parent_pid),), name="tether", daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
