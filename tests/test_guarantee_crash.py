"""README guarantee 1 (crash safety): a backfill and an epoch flow SIGKILLed at 20+ points of a seeded
schedule, and run again each time, end with the warehouse of an uninterrupted run, row for row.

Kill points mix positions in the work (the N-th arrival at each warehouse commit point, the epoch flow's
pause between scoring and pushing) and wall-clock instants after the run's first commit
(tests/support/crashkit.py). Each killed run's successor resumes the same work, so one chain of 20+
kills costs about 20 process start-ups.

For the epoch flow "row for row" has two stated exceptions, both checked exactly: a rerun that finds
its predecessor's weights already on chain records them without the extrinsic hash, and a rerun after
a push snapshots the chain at the head that push moved it to (extra snapshots at inclusion blocks).
"""

from __future__ import annotations

import shutil
import subprocess

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.support.crashkit import (
    BIN,
    KillPoint,
    block_coverage,
    duplicate_keys,
    kill_schedule,
    run_and_kill,
    table_rows,
)
from warehouse import Warehouse

pytestmark = pytest.mark.slow

SEED = 20261125
KILLS = 20
NETUID = 1
CHAIN_TABLES = ("blocks", "subnets", "neurons", "weights", "bonds")


def yumaflow(*args: str, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, f"yumaflow {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res


# ---------------------------------------------------------------------------------------- backfill

BACKFILL = ("--chain", "sim:7", "--netuid", str(NETUID), "--start-block", "1", "--end-block", "200",
            "--chunk-size", "4", "--concurrency", "2")


def test_backfill_killed_at_20_seeded_points_equals_an_uninterrupted_run(tmp_path, cli_env):
    reference = tmp_path / "reference"
    yumaflow("backfill", *BACKFILL, "--warehouse", str(reference), env=cli_env)

    crashed = tmp_path / "crashed"
    schedule = kill_schedule(SEED, KILLS, max_nth=3, max_delay_s=1.5)
    runs = [run_and_kill(["backfill", *BACKFILL, "--warehouse", str(crashed)], cli_env, crashed, kill, tmp_path)
            for kill in schedule]
    killed = [r for r in runs if r.killed]
    # Every scheduled point must have killed a run mid-work; a run that finished first proves nothing.
    assert len(killed) == KILLS, [(str(r.kill), r.killed, r.returncode, r.stderr[-400:]) for r in runs]
    print(f"\nbackfill chain: {len(killed)} kills: " + ", ".join(str(r.kill) for r in killed))
    wh = Warehouse(crashed)
    blocks_before_final = sum(e - s + 1 for s, e in wh.completed_ranges("neurons", NETUID))
    assert 0 < blocks_before_final < 200, "the kills must leave work for the final run"
    yumaflow("backfill", *BACKFILL, "--warehouse", str(crashed), env=cli_env)

    assert wh.verify() == []
    assert duplicate_keys(wh) == {}
    expected, got = table_rows(Warehouse(reference)), table_rows(wh)
    assert set(got) == set(expected)
    for name in CHAIN_TABLES:
        assert_frame_equal(got[name], expected[name])
    for name in CHAIN_TABLES:
        # ingest_log: the same blocks complete, each logged once (chunking differs after a resume).
        merged, overlap = block_coverage(wh, name, NETUID)
        assert (merged, overlap) == ([(1, 200)], 0), name
        rows = wh.read("ingest_log", pl.col("table_name") == name)["rows"].sum()
        assert rows == got[name].height, name
    assert got["neurons"].height > 200 and got["weights"].height > 0
    print(f"compared {sum(got[n].height for n in CHAIN_TABLES):,} rows of {len(CHAIN_TABLES)} tables; "
          f"{blocks_before_final} of 200 blocks were complete before the final run")


# ------------------------------------------------------------------------------------------- epoch

@pytest.fixture(scope="module")
def miners(tmp_path_factory):
    """A sim subnet (seed 11) with two honest miners serving real HTTP on 127.0.0.1, saved as a state file."""
    from neurons.forecasters import LastValue, SeasonalNaive
    from neurons.miner import MinerServer, create_app, stop_servers
    from tasks.simnet.chain import SimChain

    root = tmp_path_factory.mktemp("crash-epoch")
    state = root / "pristine.json"
    sim = SimChain.open(f"sim:11@{state}")
    permitted = set(sim.snapshot(NETUID, sim.head_block(), parts=("neurons",)).neurons
                    .filter(pl.col("validator_permit"))["hotkey"])
    servers = []
    try:
        for i, model in enumerate([SeasonalNaive(24), LastValue()]):
            key = sim.keypair("crashminer", i)
            server = MinerServer(create_app(key, model, lambda: permitted)).start()
            servers.append(server)
            sim.register(NETUID, key.ss58_address, sim.keypair("crashminer", i, coldkey=True).ss58_address)
            assert sim.serve_axon(NETUID, "127.0.0.1", server.port, key).ok
        sim.close()
        yield state
    finally:
        stop_servers(servers)


TEMPO_BLOCKS = 20


def advance_one_tempo(state) -> None:
    """The chain moves on a tempo between the validator's epochs (the other validators keep voting)."""
    from tasks.simnet.chain import SimChain

    sim = SimChain.load(state)
    sim.advance(TEMPO_BLOCKS)
    sim.save(state)


def epoch_args(state, warehouse) -> list[str]:
    return ["epoch", "--chain", f"sim:11@{state}", "--netuid", str(NETUID), "--hotkey-uri", "//Alice",
            "--warehouse", str(warehouse), "--timeout", "2", "--deadline", "3", "--challenges", "4", "--push"]


def commits_left(wh_dir, state) -> int:
    """How many commits the next `yumaflow epoch` run will make: a resumed run skips what is stored."""
    from tasks.simnet.chain import SimChain

    epoch_id = f"{NETUID}:{SimChain.load(state).head_block() // TEMPO_BLOCKS}"
    wh = Warehouse(wh_dir)
    stored = {name: wh.read(name, pl.col("epoch_id") == epoch_id).height
              for name in ("challenges", "scores", "weight_submissions")}
    # snapshot (+ challenges) (+ responses, scores) (+ the weight submission)
    return 1 + (not stored["challenges"]) + 2 * (not stored["scores"]) + (not stored["weight_submissions"])


def test_epochs_killed_at_20_seeded_points_push_once_and_smooth_once(miners, tmp_path, cli_env):
    from tasks.simnet.chain import SimChain

    state, wh_dir = tmp_path / "sim.json", tmp_path / "wh"
    shutil.copy(miners, state)
    # Each epoch starts with one of the three windows where a validator could lose or repeat a push:
    # after scoring, before pushing; after the push, before its record is committed (files of the 5th
    # commit written); after the record is committed, before the run ends. Then seeded kill points,
    # positions drawn among the commits the resumed run still makes, until the epoch has its share
    # of kills; then a clean run, and the chain moves on a tempo.
    windows = [KillPoint("seam", "after_scores"), KillPoint("commit", "files_written", nth=5),
               KillPoint("commit", "manifest_swapped", nth=5)]
    schedule = iter(kill_schedule(SEED + 1, 10 * KILLS, max_nth=60, max_delay_s=1.0, seams=("after_scores",)))
    runs, epochs = [], len(windows)
    for epoch in range(epochs):
        advance_one_tempo(state)
        kills_here, quota, attempts = 0, -(-KILLS // epochs), 0
        while kills_here < quota and attempts < 3 * quota:
            attempts += 1
            left = commits_left(wh_dir, state)
            kill = windows[epoch] if kills_here == 0 else next(schedule)
            if kill.kind == "seam" and left < 4:  # scores already stored: the seam is not on the path
                kill = KillPoint("commit", "manifest_swapped", nth=1)
            elif kill.kind == "commit" and kills_here:
                kill = KillPoint("commit", kill.point, nth=1 + (kill.nth - 1) % left)
            run = run_and_kill(epoch_args(state, wh_dir), cli_env, wh_dir, kill, tmp_path)
            runs.append(run)
            kills_here += run.killed
            assert run.killed or run.returncode == 0, run.stderr[-2000:]
        yumaflow(*epoch_args(state, wh_dir), env=cli_env)
    killed = [r for r in runs if r.killed]
    assert len(killed) >= KILLS, [(str(r.kill), r.killed) for r in runs]
    print(f"\nepoch chain: {epochs} epochs, {len(runs)} runs, {len(killed)} kills: "
          + ", ".join(str(r.kill) for r in killed))

    ref_state, ref_wh = tmp_path / "ref.json", tmp_path / "ref-wh"
    shutil.copy(miners, ref_state)
    for _ in range(epochs):
        advance_one_tempo(ref_state)
        yumaflow(*epoch_args(ref_state, ref_wh), env=cli_env)

    wh, ref = Warehouse(wh_dir), Warehouse(ref_wh)
    assert wh.verify() == [] and duplicate_keys(wh) == {}
    # Latency is the wall clock; a block's source names the run's own state file (another path).
    volatile = {"responses": ("latency_ms",), "blocks": ("source",), "ingest_log": ("source", "completed_at")}
    expected, got = table_rows(ref, volatile), table_rows(wh, volatile)
    assert set(got) == set(expected)
    # The validator's own records: the same challenges, answers and scores (smoothed once per epoch).
    for name in ("challenges", "responses", "scores"):
        assert got[name].equals(expected[name]), name
    # One included submission per epoch, the same row sent and included in the same block. A run that
    # finds its predecessor's weights already on chain records them without the extrinsic hash.
    submissions, sent = got["weight_submissions"], expected["weight_submissions"]
    assert submissions.group_by("epoch_id").len()["len"].to_list() == [1] * epochs  # no double push
    assert set(submissions["status"]) == {"included"}
    same = ["netuid", "block", "validator_hotkey", "epoch_id", "uids", "weights", "version_key", "dry_run",
            "status", "included_block"]
    assert submissions.select(same).equals(sent.select(same))
    recovered = submissions.filter(pl.col("extrinsic_hash").is_null())
    assert submissions.filter(pl.col("extrinsic_hash").is_not_null()).equals(
        sent.join(recovered.select("epoch_id"), on="epoch_id", how="anti"))
    # Chain snapshots: every one the uninterrupted run stored, identical; the only extra ones are those
    # a rerun took at the head its killed predecessor's push had moved the chain to.
    included = set(submissions["included_block"].to_list())
    for name in CHAIN_TABLES:
        extra = got[name].join(expected[name], on=got[name].columns, how="anti", nulls_equal=True)
        assert got[name].join(expected[name], on=got[name].columns, how="semi", nulls_equal=True).height == \
            expected[name].height, name
        assert set(extra["block"].to_list()) <= included, name
    print(f"compared {sum(f.height for f in expected.values()):,} rows of {len(expected)} tables; "
          f"{len(recovered)} submission(s) found on chain after a kill")
    # The chain holds exactly what the uninterrupted validator sent: same blocks, same rows.
    chain, chain_ref = SimChain.load(state), SimChain.load(ref_state)
    assert chain.head_block() == chain_ref.head_block()
    for block in sorted(included):
        ours = chain.snapshot(NETUID, block, parts=("weights", "neurons"))
        theirs = chain_ref.snapshot(NETUID, block, parts=("weights", "neurons"))
        assert ours.weights.equals(theirs.weights) and ours.neurons.equals(theirs.neurons), block
