"""Which engine runs a flow's tasks, chosen by configuration (DESIGN.md §9).

yumaflow has no scheduler of its own: `backfill`, `consensus` and `whatif` cut their work into
chunks, each chunk one Prefect task that writes its own partitions through `warehouse/`, and the
task runner decides where the chunks run. The setting `task_runner` is one of

  threads                   Prefect's ThreadPoolTaskRunner in the flow's own process (the default)
  dask                      a temporary local Dask cluster: `dask_workers` worker processes of one
                            thread each, on 127.0.0.1, no dashboard; closed when the flow ends
  tcp://HOST:PORT           an existing Dask scheduler (`dask scheduler` and `dask worker` on each
  dask://HOST:PORT          machine); the same as tcp://

Results do not depend on the runner: a chunk's output depends only on its inputs, and its write
replaces exactly its own scopes, so a chunk rerun after a lost Dask worker leaves one copy.
Everything sent to a worker is a plain value (strings, numbers, frozen dataclasses): a task opens
its own chain client and its own `Warehouse`, whose write lock (an flock held for one short commit)
keeps writers single across processes.

Only the standard library is imported at module level: Settings validates the value with
`check_task_runner` without importing Prefect or Dask.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

THREADS = "threads"
DASK = "dask"
DEFAULT_CONCURRENCY = 2  # chunks in flight under the thread pool (one machine, 2 cores here)

# How long a chunk waits for the warehouse's write lock. Every holder is one commit of one chunk (a few
# files and a manifest swap, well under a second here) that waits for nothing while it holds the lock,
# so writers cannot deadlock: the wait is only the queue of other chunks' commits. 30 s (Warehouse's
# default, right for a person at a prompt) could be exceeded by a queue of many workers on slow
# shared storage; a chunk that still times out fails with the holder's name, and rerunning it is safe.
CHUNK_LOCK_TIMEOUT_S = 600.0

_ADDRESS = re.compile(r"^(?:tcp|dask)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")

T = TypeVar("T")


def check_task_runner(setting: str) -> str:
    """The setting as used: `threads`, `dask` or `tcp://HOST:PORT` (a `dask://` address is rewritten).

    Anything else is refused with an error that names the value and the accepted forms.
    """
    value = setting.strip() if isinstance(setting, str) else setting
    if value in (THREADS, DASK):
        return value
    match = _ADDRESS.match(value) if isinstance(value, str) else None
    if match and 0 < int(match["port"]) < 65536:
        return f"tcp://{match['host']}:{int(match['port'])}"
    raise ValueError(f"task runner {setting!r} is not one of: threads (the default), dask (a local Dask "
                     "cluster), tcp://HOST:PORT or dask://HOST:PORT (an existing Dask scheduler)")


def task_runner_for(setting: str = THREADS, dask_workers: int = 2):
    """The Prefect task runner for a `task_runner` setting (see the module docstring)."""
    setting = check_task_runner(setting)
    if dask_workers < 1:
        raise ValueError(f"dask_workers must be at least 1, got {dask_workers}")
    if setting == THREADS:
        from prefect.task_runners import ThreadPoolTaskRunner

        # The flows bound their own chunks in flight (submit_windowed), so the pool needs no cap.
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if "DASK_LOGGING__DISTRIBUTED" not in os.environ:
        # Dask logs every worker's start and stop at INFO; keep a run as quiet as on the thread pool
        # (setting DASK_LOGGING__DISTRIBUTED=info brings them back).
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if setting == DASK:
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs=local_cluster_kwargs(dask_workers))
    return DaskTaskRunner(address=setting)


def configured_task_runner():
    """The task runner of the settings (YUMAFLOW_TASK_RUNNER, YUMAFLOW_DASK_WORKERS, yumaflow.toml).

    The chunked flows are decorated with it, so a deployment run by a Prefect worker takes its runner
    from the worker's environment (prefect.yaml sets it per deployment in `job_variables.env`).
    `run_flow` (the CLI) overrides it. Building a Dask runner starts nothing until a flow submits.
    """
    from flows.settings import load_settings

    settings = load_settings()
    return task_runner_for(settings.task_runner, settings.dask_workers)


def local_cluster_kwargs(dask_workers: int) -> dict[str, Any]:
    """`distributed.LocalCluster` arguments of the `dask` setting.

    Worker processes, not threads: chain decoding and the Python parts of a chunk hold the GIL. One
    thread per worker, so a worker's memory holds one chunk at a time. Loopback only and no dashboard:
    the cluster opens no port beyond 127.0.0.1 (the scheduler still answers health checks over HTTP
    there, on 8787 or the next free port) and needs no network.
    """
    return {"n_workers": dask_workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
            "dashboard_address": None}


@contextmanager
def api_for_workers(setting: str) -> Iterator[None]:
    """Make the flow's Prefect API reachable by Dask worker processes.

    Without PREFECT_API_URL a flow talks to Prefect's ephemeral server, which each process would start
    for itself (15–20 s each here, and each its own view of the runs). For a Dask runner this starts
    that server once, here, and sets its URL for the flow: Prefect passes its settings to every task
    it sends to a worker. Workers on other machines need a real server (`prefect server start`, then
    PREFECT_API_URL on every machine): 127.0.0.1 is not theirs.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if check_task_runner(setting) == THREADS or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one per process: the same one the flow's client would start
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


def run_flow(flow, *, task_runner: str | None = None, dask_workers: int | None = None, **parameters: Any):
    """Run a Prefect flow with the task runner of `task_runner` (default: the settings'); its return value.

    `run_flow(backfill_flow, task_runner="dask", dask_workers=2, chain="sim:7", ...)` is what
    `yumaflow backfill --task-runner dask --dask-workers 2` does.
    """
    if task_runner is None or dask_workers is None:
        from flows.settings import load_settings

        settings = load_settings()
        task_runner = settings.task_runner if task_runner is None else task_runner
        dask_workers = settings.dask_workers if dask_workers is None else dask_workers
    runner = task_runner_for(task_runner, dask_workers)
    with api_for_workers(task_runner):
        return flow.with_options(task_runner=runner)(**parameters)


def concurrency_limit(concurrency: int | None) -> int:
    """Chunks a flow keeps in flight: `concurrency` if given, else what its task runner runs at once.

    Under a Dask runner that is the cluster's worker threads (asked of the scheduler, so an existing
    cluster's size counts too); under the thread pool, DEFAULT_CONCURRENCY.
    """
    if concurrency is not None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        return concurrency
    if runs_in_flow_process():
        return DEFAULT_CONCURRENCY
    from prefect.context import FlowRunContext

    return max(1, sum(FlowRunContext.get().task_runner.client.nthreads().values()))


def runs_in_flow_process() -> bool:
    """Whether the current flow's tasks run in this process (the thread pool), so they may share objects."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context is None or type(context.task_runner).__name__ != "DaskTaskRunner"


def submit_windowed(items: Iterable[T], submit: Callable[[T], Any], limit: int) -> Iterator[tuple[T, Any]]:
    """Submit `submit(item)` for each item with at most `limit` in flight; yield (item, result) as each ends.

    The window keeps memory and the load on a node bounded whatever the runner, and lets a progress
    bar move as chunks finish. A chunk that fails (after its task's own retries) raises here.
    """
    from prefect.futures import as_completed

    queue, in_flight = list(items), {}
    queue.reverse()  # pop() from the end keeps the submission order
    while queue or in_flight:
        while queue and len(in_flight) < limit:
            item = queue.pop()
            in_flight[submit(item)] = item
        done = next(as_completed(list(in_flight)))
        yield in_flight.pop(done), done.result()

