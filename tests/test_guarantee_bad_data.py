"""Guarantee 4 — bad data in, nothing out.

Damaged warehouse files (truncated, bit-flipped, deleted), a damaged manifest, a catalog pointing at
a missing file, damaged consensus inputs, chain answers for the wrong block or the wrong runtime
spec, and scores that are NaN or zero or come from a stale snapshot. Each must give a clear error
naming the file / block / what is wrong, leave what was there byte-for-byte as it was, and never
send weights. Every warehouse here is real Parquet + DuckDB written by the real write path from
snapshots of the simulated subnet; chain answers come from the real spec-343 recording, edited.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from substrateinterface import Keypair
from test_consensus_bad_input import good_frames, write_inputs

from flows.ingest import Chunk, ingest_chunk, store_snapshots
from tasks.chain import ChainError, open_chain
from tasks.chain.errors import ChainDecodeError
from tasks.consensus import ConsensusInputError, run_consensus_files
from tasks.weights.convert import WeightsRefused, scores_to_weights
from tasks.weights.push import push_weights
from tests.support.recordings import load_recording, replay_edited
from warehouse import Warehouse, WarehouseError

BIN = str(Path(sys.executable).parent / "yumaflow")
SIM = "sim:11"
REPLAY_BLOCK, REPLAY_NETUID = 6852690, 1
REPLAY_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"
REPLAY_PARENT = "0x7348409fe36728fa2ac7f0886346fd35b79804d294046d152ba1baccd9d0be3a"


def tree(root: Path) -> dict[str, str]:
    """Every file under root with the sha256 of its bytes: 'unchanged' means byte-for-byte."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".write.lock"}


@pytest.fixture(scope="module")
def snapshots():
    chain = open_chain(SIM)
    head = chain.head_block()
    return [chain.snapshot(1, block) for block in (head - 2, head - 1, head)]


@pytest.fixture
def warehouse(tmp_path, snapshots) -> Warehouse:
    wh = Warehouse(tmp_path / "wh")
    store_snapshots(wh, snapshots, SIM)
    return wh


def neurons_file(wh: Warehouse) -> Path:
    return wh.files("neurons")[0]


def test_truncated_file_fails_read_verify_and_rewrite_naming_it_and_nothing_changes(warehouse, snapshots):
    damaged = neurons_file(warehouse)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    before = tree(warehouse.root)
    with pytest.raises(WarehouseError, match=rf"table 'neurons': file {damaged} is not readable Parquet"):
        warehouse.read("neurons")
    assert any(str(damaged) in problem for problem in warehouse.verify())
    # a backfill resuming over the damaged range must read the file to replace its scopes: it fails
    # naming the file, and leaves no file of its own behind (before the fix it left the blocks and
    # subnets files it had staged before reaching neurons)
    with pytest.raises(WarehouseError, match=str(damaged)):
        store_snapshots(warehouse, snapshots, SIM)
    assert tree(warehouse.root) == before


def test_a_flipped_bit_is_detected_not_read_as_other_values(warehouse):
    """Parquet pages carry no checksum a reader checks, so a flipped bit in a data page used to read
    back as other values (found by this test: 92 of 200 random one-bit flips of one neurons file).
    The manifest now records each file's sha256 when it is written, and reads and verify() check it."""
    damaged = neurons_file(warehouse)
    data = bytearray(damaged.read_bytes())
    data[679] ^= 0x01  # inside the first column chunk's data (found by flipping every bit of a copy)
    damaged.write_bytes(bytes(data))
    with pytest.raises(WarehouseError, match=rf"file {damaged} is damaged: its content does not match the sha256"):
        warehouse.read("neurons")
    with pytest.raises(WarehouseError, match=rf"file {damaged} is damaged"):
        warehouse.scan("neurons")
    assert warehouse.verify() == [f"table 'neurons': file {damaged} is damaged: its content does not match the "
                                  "sha256 the manifest recorded when it was written (restore it from a backup or "
                                  "re-ingest the blocks it holds)"]


def test_every_one_bit_flip_of_a_file_is_caught(warehouse):
    """Not one position: a seeded sample of 200 single-bit flips over the whole file, each caught."""
    damaged = neurons_file(warehouse)
    original = damaged.read_bytes()
    rng = np.random.default_rng(20261125)
    for position in rng.integers(0, len(original) * 8, 200):
        data = bytearray(original)
        data[position // 8] ^= 1 << (position % 8)
        damaged.write_bytes(bytes(data))
        with pytest.raises(WarehouseError, match=str(damaged)):
            warehouse.read("neurons")
    damaged.write_bytes(original)
    assert warehouse.verify() == []


def test_deleted_file_is_named_by_read_verify_and_the_duckdb_catalog(warehouse):
    gone = neurons_file(warehouse)
    gone.unlink()
    with pytest.raises(WarehouseError, match=rf"file {gone} is in the manifest but missing on disk"):
        warehouse.read("neurons")
    assert warehouse.verify() == [f"table 'neurons': file {gone} is in the manifest but missing on disk"]
    with duckdb.connect(str(warehouse.root / "catalog.duckdb"), read_only=True) as con, \
            pytest.raises(duckdb.IOException, match=gone.name):
        con.sql("select count(*) from neurons").fetchall()


def test_damaged_manifest_is_named_and_never_overwritten(warehouse, snapshots):
    manifest = warehouse.root / "_manifest.parquet"
    manifest.write_bytes(manifest.read_bytes()[:100])
    before = tree(warehouse.root)
    with pytest.raises(Exception, match="_manifest.parquet") as read_error:
        Warehouse(warehouse.root).read("neurons")
    with pytest.raises(Exception, match="_manifest.parquet") as write_error:
        store_snapshots(Warehouse(warehouse.root), snapshots, SIM)
    # a writer that took an unreadable manifest for an empty one would forget every file
    assert tree(warehouse.root) == before
    print(f"\nread: {read_error.value}\nwrite: {write_error.value}")


def test_truncated_consensus_input_exit_2_naming_the_file_and_out_untouched(tmp_path):
    write_inputs(tmp_path / "IN", good_frames())
    damaged = tmp_path / "IN" / "weights.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-40])
    with pytest.raises(ConsensusInputError, match="weights"):
        run_consensus_files(tmp_path / "IN", tmp_path / "OUT")
    res = subprocess.run([BIN, "consensus", "--inputs", str(tmp_path / "IN"), "--output", str(tmp_path / "OUT")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "weights.parquet" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IN"]  # no OUT, not even an empty one


# -- chain answers for the wrong block or the wrong runtime --------------------------------------


def test_header_for_another_block_is_refused_and_nothing_written(shared_dir, tmp_path):
    def other_block(rec):
        rec["chain_getHeader"][json.dumps([REPLAY_HASH])]["result"]["number"] = hex(REPLAY_BLOCK + 1)

    source = replay_edited(load_recording(shared_dir), tmp_path, other_block)
    with pytest.raises(ChainError, match=rf"says block {REPLAY_BLOCK + 1}, expected {REPLAY_BLOCK}"):
        ingest_chunk.fn(source, Chunk(REPLAY_NETUID, (REPLAY_BLOCK,)), str(tmp_path / "wh"))
    assert not (tmp_path / "wh").exists() or tree(tmp_path / "wh") == {}


def test_answer_that_does_not_fit_the_runtimes_declared_type_is_a_decode_error_and_nothing_written(
        shared_dir, tmp_path):
    """The runtime's metadata declares a SelectiveMetagraph without `name` (a field yumaflow does not
    need), but the node sends the 74-field bytes: never decoded as if they fitted."""
    from tasks.chain.runtime import strip_option_opaque_metadata
    from tests.support import metadata_edit

    raw = (shared_dir / "chain/recordings/mainnet-spec343/metadata_v15.hex").read_text().strip()
    metadata = strip_option_opaque_metadata(bytes.fromhex(raw[2:]))
    fields = [f for f in metadata_edit.composite_fields(metadata, 671) if f.name != "name"]
    edited = metadata_edit.with_composite_fields(metadata, 671, fields)

    def ask_73_indexes(rec):  # the client asks for one index per declared field
        for key in [k for k in rec["state_call"] if "get_selective_mechagraph" in k]:
            name, params, at = json.loads(key)
            params = params[:8] + metadata_edit.encode_compact(73).hex() + params[12:-4]  # 0x, u16, u8, Vec<u16>
            rec["state_call"][json.dumps([name, params, at])] = rec["state_call"].pop(key)

    source = replay_edited(load_recording(shared_dir), tmp_path, ask_73_indexes)
    (tmp_path / "metadata_v15.hex").write_text(
        "0x01" + metadata_edit.encode_compact(len(edited)).hex() + edited.hex())
    with pytest.raises(ChainDecodeError) as err:
        ingest_chunk.fn(source, Chunk(REPLAY_NETUID, (REPLAY_BLOCK,)), str(tmp_path / "wh"))
    assert str(REPLAY_BLOCK) in str(err.value) and "get_selective_mechagraph" in str(err.value)
    assert not (tmp_path / "wh").exists() or tree(tmp_path / "wh") == {}


# -- weights are never pushed from bad data ------------------------------------------------------


@pytest.mark.parametrize("scores", [[np.nan] * 4, [0.0] * 4, [0.5, np.inf, 0.1, 0.2], [0.5, -0.1, 0.1, 0.2], []])
def test_bad_scores_never_become_a_weight_row(scores):
    with pytest.raises(WeightsRefused, match="scores: "):
        scores_to_weights(list(range(len(scores))), scores, num_neurons=8, min_allowed_weights=1,
                          max_weight_limit_u16=65535)


def test_a_stale_snapshot_is_refused_and_nothing_reaches_the_chain():
    from tasks.simnet.chain import SimChain

    sim = SimChain.open("sim:13", scenario_tempos=1)
    alice = Keypair.create_from_uri("//Alice")
    snap = sim.snapshot(1, sim.head_block())
    tempo = int(snap.subnets["tempo"][0])
    for _ in range(tempo + 1):  # the chain moves on by more than a tempo
        sim.advance(1)
    head = sim.head_block()
    weights_before = sim.snapshot(1, head, parts=("weights",)).weights
    row = push_weights(sim, 1, [1, 2], [65535, 30000], 0, alice, snapshot=snap, dry_run=False)
    assert row["status"].to_list() == ["refused"]
    assert "stale snapshot" in row["detail"][0] and str(snap.block) in row["detail"][0]
    assert sim.head_block() == head  # no extrinsic: a sent one would open a block
    assert sim.snapshot(1, head, parts=("weights",)).weights.equals(weights_before)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["consensus", "report"])
def test_cli_over_a_damaged_warehouse_exits_1_naming_the_file_and_writes_nothing(warehouse, snapshots, tmp_path,
                                                                                 cli_env, command):
    damaged = neurons_file(warehouse)
    damaged.write_bytes(damaged.read_bytes()[:-64])
    before = tree(warehouse.root)
    blocks = ["--netuid", "1", "--start-block", str(snapshots[0].block), "--end-block", str(snapshots[-1].block)]
    extra = ["--reports-dir", str(tmp_path / "reports")] if command == "report" else []
    res = subprocess.run([BIN, command, *blocks, "--warehouse", str(warehouse.root), *extra],
                         capture_output=True, text=True, env=cli_env, timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"yumaflow {command}: failed: WarehouseError" in res.stderr and str(damaged) in res.stderr
    assert tree(warehouse.root) == before
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
