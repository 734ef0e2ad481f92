"""Crashes, concurrent writers and readers during writes, with real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse import Warehouse, WarehouseLockedError
from warehouse.catalog import CATALOG_NAME

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from test_warehouse import neurons, sorted_rows  # noqa: E402

CHILD_PRELUDE = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import polars as pl; "
                 "from test_warehouse import neurons; from warehouse import Warehouse; ")


def start_child(code: str, commit_point: str | None = None) -> subprocess.Popen:
    """A Python child running `code`; with the crash tests' hook installed at `commit_point` if given."""
    hook = (f"import sys; sys.path.insert(0, {str(TESTS.parent)!r}); "
            f"from tests.support.hooked_cli import install; install(commit_point={commit_point!r})\n"
            if commit_point else "")
    return subprocess.Popen([sys.executable, "-c", hook + CHILD_PRELUDE + code], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen, timeout_s: float = 120) -> tuple[int, str]:
    """Wait for a child and close its pipes; its exit code and stderr."""
    _, err = child.communicate(timeout=timeout_s)
    return child.returncode, err


def wait_for(marker: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"child exited before {marker.name}: {finish(child)}")
        if time.monotonic() > deadline:
            child.kill()
            finish(child)
            raise AssertionError(f"child never reached {marker.name}")
        time.sleep(0.01)


def state(wh: Warehouse) -> tuple[pl.DataFrame, int, int]:
    con = duckdb.connect(str(wh.root / CATALOG_NAME), read_only=True)
    catalog_rows = con.sql("select count(*) from neurons").fetchall()[0][0]
    con.close()
    return sorted_rows(wh.read("neurons")), wh.manifest().version, catalog_rows


# Replaces the snapshot at block 100, adds 820 (same partition) and 9000 (next block bucket).
CRASHING_WRITE = "pl.concat([neurons(1, 100, 256, stake=5), neurons(1, 820, 256), neurons(1, 9000, 256)])"


@pytest.mark.parametrize("point", ["temp_written", "files_written", "manifest_temp_written",
                                   "manifest_swapped"])
def test_sigkill_mid_write_leaves_previous_or_new_state_and_rerun_completes(tmp_path, point):
    wh = Warehouse(tmp_path / "wh")
    wh.write("neurons", neurons(1, 100))
    wh.write("neurons", neurons(1, 460))
    before = state(wh)
    expected = sorted_rows(pl.concat([neurons(1, 100, 256, stake=5), neurons(1, 460), neurons(1, 820, 256),
                                      neurons(1, 9000, 256)]))
    marker = tmp_path / "paused"
    child = start_child(f"Warehouse({str(wh.root)!r}).write('neurons', {CRASHING_WRITE})",
                        commit_point=f"{point}={marker}")
    wait_for(marker, child)
    child.send_signal(signal.SIGKILL)
    assert finish(child)[0] == -signal.SIGKILL

    after_crash = state(wh)
    if point == "manifest_swapped":  # the manifest swap is the commit point
        assert after_crash[0].equals(expected)
        assert after_crash[1] == before[1] + 1
    else:
        assert after_crash[0].equals(before[0])
        assert after_crash[1:] == before[1:]

    wh.write("neurons", eval(CRASHING_WRITE))  # the re-run (or a repeat): same final state either way
    final = state(wh)
    assert final[0].equals(expected) and final[2] == expected.height
    # Nothing of the killed write is left behind: every file on disk is one the manifest knows.
    on_disk = {str(p.relative_to(wh.root)) for p in (wh.root / "neurons").rglob("*") if p.is_file()}
    assert on_disk == set(wh.manifest().files["path"])


def test_an_environment_variable_left_set_pauses_no_writer(tmp_path):
    """The crash tests' pause is a hook they install; the variable that once was the seam does nothing."""
    wh = Warehouse(tmp_path / "wh")
    marker = tmp_path / "paused"
    child = subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + f"Warehouse({str(wh.root)!r}).write("
                              "'neurons', neurons(1, 100))"],
                             env={**os.environ, "YUMAFLOW_WAREHOUSE_PAUSE": f"files_written={marker}"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, err = finish(child, timeout_s=50)  # a paused writer would sleep 60 s
    assert code == 0, err
    assert not marker.exists() and wh.read("neurons").equals(neurons(1, 100))


def test_second_writer_times_out_naming_the_lock_holder(tmp_path):
    wh = Warehouse(tmp_path / "wh", lock_timeout_s=0.3)
    marker = tmp_path / "holding"
    holder = start_child(f"Warehouse({str(wh.root)!r}).write('neurons', neurons(1, 100))",
                         commit_point=f"files_written={marker}")
    wait_for(marker, holder)
    try:
        with pytest.raises(WarehouseLockedError, match=rf"\.write\.lock is held by PID {holder.pid} "):
            wh.write("neurons", neurons(1, 460))
    finally:
        holder.kill()
        finish(holder)
    wh.write("neurons", neurons(1, 460))  # the kernel released the dead holder's lock
    assert wh.read("neurons")["block"].unique().to_list() == [460]


def test_two_writers_at_once_both_complete(tmp_path):
    root = str(tmp_path / "wh")
    Warehouse(root)
    loop = "wh = Warehouse({root!r})\nfor b in range(8): wh.write('neurons', neurons({netuid}, 100 + 360 * b))"
    writers = [start_child(loop.format(root=root, netuid=n)) for n in (1, 2)]
    for w in writers:
        rc, err = finish(w)
        assert rc == 0, err
    wh = Warehouse(root)
    got = wh.read("neurons")
    assert got.height == 2 * 8 * 8
    assert got.select("netuid", "block", "uid").is_duplicated().sum() == 0
    assert wh.manifest().version == 16
    assert wh.verify() == []


@pytest.mark.parametrize("retire_grace_s", [0, 300])
def test_readers_never_see_a_partial_or_duplicated_write(tmp_path, retire_grace_s):
    """With no grace, retired files vanish at once and `read` must retry on the newer manifest."""
    root = tmp_path / "wh"
    wh = Warehouse(root)
    batch = 16  # uids per snapshot: every consistent state holds a multiple of it
    writes = 15
    child = start_child(
        f"wh = Warehouse({str(root)!r}, retire_grace_s={retire_grace_s})\n"
        f"for i in range({writes}):\n"
        f"    wh.write('neurons', pl.concat([neurons(1, 460 + 360 * i, n={batch}), neurons(1, 100, n={batch})]))\n"
        f"    if i % 10 == 9: wh.compact('neurons')\n")
    heights = []
    while child.poll() is None:
        got = wh.read("neurons")
        assert got.height % batch == 0
        assert got.select("netuid", "block", "uid").is_duplicated().sum() == 0
        if retire_grace_s:  # a DuckDB connection is a snapshot of file names: it relies on the grace
            with wh.connect() as con:
                assert con.sql("select count(*) from neurons").fetchall()[0][0] % batch == 0
        heights.append(got.height)
    rc, err = finish(child)
    assert rc == 0, err
    assert heights == sorted(heights)  # writes only add snapshots or replace one in place
    assert wh.read("neurons").height == (writes + 1) * batch


def test_analyst_holding_the_catalog_does_not_block_writes(tmp_path):
    """The catalog is swapped in whole: an analyst's open session keeps its views (and their files) while
    writers publish; a new open sees the newest catalog; once the session closes, its files may go."""
    wh = Warehouse(tmp_path / "wh", retire_grace_s=0)
    wh.write("neurons", neurons(1, 100))
    analyst = duckdb.connect(str(wh.root / CATALOG_NAME), read_only=True)
    try:
        writer = start_child(f"Warehouse({str(wh.root)!r}, retire_grace_s=0).write('neurons', "
                             f"neurons(1, 100, stake=3)); Warehouse({str(wh.root)!r}, retire_grace_s=0)"
                             f".write('neurons', neurons(1, 460))")
        rc, err = finish(writer)
        assert rc == 0, err
        assert wh.read("neurons").height == 16
        # a new session (another process: DuckDB shares one instance per path within a process) opens the
        # newest catalog at once
        query = (f"import duckdb; con = duckdb.connect({str(wh.root / CATALOG_NAME)!r}, read_only=True); "
                 "print(con.sql('select count(*), min(alpha_stake) from neurons').fetchall())")
        fresh = subprocess.run([sys.executable, "-c", query], capture_output=True, text=True, timeout=60)
        assert fresh.stdout.strip() == "[(16, 3)]", fresh.stderr
        # the analyst's views still name the files of the version they saw; those files are kept
        assert analyst.sql("select count(*), min(alpha_stake) from neurons").fetchall() == [(8, 10**9)]
    finally:
        analyst.close()
    wh.write("neurons", neurons(2, 100))  # the old generation is no longer held: its files may go
    assert not list(wh.root.glob(".catalog-v*.duckdb"))
    with duckdb.connect(str(wh.root / CATALOG_NAME), read_only=True) as con:
        assert con.sql("select count(*), min(alpha_stake) from neurons").fetchall() == [(24, 3)]
    assert wh.verify() == []
