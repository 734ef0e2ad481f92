"""Helpers of the guarantee tests (README guarantees 1 and 5): `yumaflow` processes killed by a seeded
schedule, and whole warehouses compared row for row.

A kill point is either a *position* in the work — the N-th arrival of the process at one of the
warehouse's commit points or the epoch flow's point between scoring and pushing, where a hook the test
installs (tests/support/hooked_cli.py) stops the process — or a *wall-clock instant*: a delay drawn from the
schedule, counted from the process's first commit, so the kill lands somewhere in its work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from schemas.table import all_tables
from warehouse import Warehouse
from warehouse.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent / "yumaflow")


def hooked(args: list[str], *, commit_point: str | None = None, after_scores: str | None = None,
           after_answers: str | None = None) -> list[str]:
    """The command line of `yumaflow ARGS` with the crash tests' hooks (tests/support/hooked_cli.py)."""
    hooks = ((["--commit-point", commit_point] if commit_point else [])
             + (["--after-scores", after_scores] if after_scores else [])
             + (["--after-answers", after_answers] if after_answers else []))
    return [sys.executable, "-m", "tests.support.hooked_cli", *hooks, "--", *args]
COMMIT_POINTS = ("temp_written", "files_written", "manifest_temp_written", "manifest_swapped")


@dataclass(frozen=True)
class KillPoint:
    """Where one run of a chain of runs is killed: at a commit point (its `nth` arrival), at an extra
    pause seam of a flow (`env` names it), or `delay_s` after the run's first commit."""

    kind: str  # "commit", "seam" or "instant"
    point: str = ""
    nth: int = 1
    delay_s: float = 0.0

    def __str__(self) -> str:
        if self.kind == "commit":
            return f"{self.point}#{self.nth}"
        if self.kind == "seam":
            return self.point
        return f"+{self.delay_s:.2f}s"


def kill_schedule(seed: int, count: int, *, max_nth: int, max_delay_s: float,
                  seams: tuple[str, ...] = ()) -> list[KillPoint]:
    """`count` kill points drawn by numpy's default_rng(seed): half at positions, half at instants."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(count):
        if i % 2 == 0:
            choices = [*COMMIT_POINTS, *seams]
            point = choices[int(rng.integers(len(choices)))]
            if point in seams:
                points.append(KillPoint("seam", point))
            else:
                points.append(KillPoint("commit", point, nth=int(rng.integers(1, max_nth + 1))))
        else:
            points.append(KillPoint("instant", delay_s=float(rng.uniform(0.0, max_delay_s))))
    return points


@dataclass
class KilledRun:
    kill: KillPoint
    killed: bool          # False when the run finished before its kill point came
    returncode: int
    seconds: float
    stderr: str = ""
    reached: bool = False  # a commit point or seam kill: the process arrived there (not a timeout)


def run_and_kill(args: list[str], env: dict, root: Path, kill: KillPoint, marker_dir: Path,
                 timeout_s: float = 300) -> KilledRun:
    """Start `yumaflow *args` in its own process group; SIGKILL the whole group at `kill` (a seam is
    named after its hook: "after_scores")."""
    marker = marker_dir / f"marker-{time.monotonic_ns()}"
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}
    command = [BIN, *args]
    if kill.kind == "commit":
        command = hooked(args, commit_point=f"{kill.point}#{kill.nth}={marker}")
    elif kill.kind == "seam":
        command = hooked(args, **{kill.point: str(marker)})
    version_at_start = load_manifest(root).version if root.exists() else 0
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = started + timeout_s
    fire_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        if kill.kind in ("commit", "seam") and marker.exists():
            break
        if kill.kind == "instant":
            if fire_at is None and root.exists() and load_manifest(root).version != version_at_start:
                fire_at = time.monotonic() + kill.delay_s
            if fire_at is not None and time.monotonic() >= fire_at:
                break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    return KilledRun(kill, killed, proc.returncode, time.monotonic() - started, err or "", reached=marker.exists())


def table_rows(wh: Warehouse, drop: dict[str, tuple[str, ...]] | None = None) -> dict[str, pl.DataFrame]:
    """Every non-empty table, sorted by its key; `drop` names columns that differ by design (wall clock)."""
    drop = drop or {}
    out = {}
    for name, table in sorted(all_tables().items()):
        frame = wh.read(name)
        if frame.height:
            out[name] = frame.drop([c for c in drop.get(name, ()) if c in frame.columns]).sort(list(table.key))
    return out


def duplicate_keys(wh: Warehouse) -> dict[str, int]:
    """Rows whose key appears more than once, per table (a correct warehouse has none)."""
    found = {}
    for name, table in all_tables().items():
        frame = wh.read(name, columns=list(table.key))
        extra = frame.height - frame.unique().height
        if extra:
            found[name] = extra
    return found


def block_coverage(wh: Warehouse, table_name: str, netuid: int) -> tuple[list[tuple[int, int]], int]:
    """The merged complete ranges of a table and how many blocks the logged ranges cover more than once."""
    ranges = wh.read("ingest_log", pl.col("table_name") == table_name, netuid=netuid,
                     columns=["block_start", "block_end"]).sort("block_start")
    covered = int((ranges["block_end"] - ranges["block_start"] + 1).sum()) if ranges.height else 0
    merged = wh.completed_ranges(table_name, netuid)
    distinct = sum(end - start + 1 for start, end in merged)
    return merged, covered - distinct
