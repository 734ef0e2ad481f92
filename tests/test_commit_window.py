"""The commit-reveal mask's input: each validator's earliest unexpired weight commit (yuma_spec.md §2.5.5).

The rule (tasks/consensus/commit_window.py) on hand-worked queues, and the chain reader's decoding of the
two commit maps as the real spec-343 runtime declares them (an edited copy of the mainnet recording with
commit entries encoded by that runtime's own codec).
"""

from __future__ import annotations

from support.recordings import add_storage_map, load_recording, replay_edited

from tasks.consensus.commit_window import earliest_unexpired_commit_blocks, is_commit_expired

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
CHARLIE = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"


def test_a_commit_expires_after_its_reveal_period():
    assert not is_commit_expired(commit_epoch=10, current_epoch=12, reveal_period_epochs=2)
    assert is_commit_expired(commit_epoch=10, current_epoch=13, reveal_period_epochs=2)
    assert not is_commit_expired(commit_epoch=10, current_epoch=10, reveal_period_epochs=0)


def test_earliest_unexpired_commit_per_validator():
    """Epoch 13, reveal period 2: epochs ≤ 10 are expired. ALICE's hash queue: its first entry expired,
    so the second counts (and no later one, even an earlier block); BOB: a hash commit and two timelocked
    ones, the minimum block of the unexpired; CHARLIE: only expired commits."""
    hash_queues = {ALICE: [(10, 400), (11, 450), (12, 420)], BOB: [(12, 500)], CHARLIE: [(9, 100)]}
    timelocked = [(12, BOB, 480), (11, BOB, 470), (10, BOB, 300), (10, CHARLIE, 200)]
    assert earliest_unexpired_commit_blocks(hash_queues, timelocked, 13, 2) == {ALICE: 450, BOB: 470}
    assert earliest_unexpired_commit_blocks({}, [], 13, 2) == {}


def test_the_reader_decodes_both_commit_maps_of_a_real_runtime(shared_dir, tmp_path):
    """WeightCommits (hotkey -> queue of (H256, u64, u64, u64)) and TimelockedWeightCommits (epoch -> queue
    of (hotkey, commit block, bytes, reveal round)) of netuid 1 at the recorded block, as spec 343 lays them
    out: decoded by the runtime's codec, in queue order."""
    from tasks.chain import open_chain

    codec, block, block_hash, recording = _spec_343(shared_dir)

    def edit(copy):
        add_storage_map(copy, codec, "WeightCommits", 1, [
            (ALICE, [("0x" + "11" * 32, 41, 6852600, 42), ("0x" + "22" * 32, 42, 6852650, 43)])], block_hash)
        add_storage_map(copy, codec, "TimelockedWeightCommits", 1, [
            (42, [(BOB, 6852640, b"\x01\x02", 777), (CHARLIE, 6852645, b"\x03", 778)])], block_hash)

    chain = open_chain(replay_edited(recording, tmp_path, edit, shared_dir))
    try:
        hash_queues, timelocked = chain.weight_commits(chain.pin(block), 1)
    finally:
        chain.close()
    assert {hk: [entry[1:] for entry in queue] for hk, queue in hash_queues.items()} == {
        ALICE: [(41, 6852600, 42), (42, 6852650, 43)]}
    assert timelocked == [(42, BOB, 6852640), (42, CHARLIE, 6852645)]
    # … and, laid out as the stateful-schedule runtimes define them, the mask's input at epoch 43:
    blocks = earliest_unexpired_commit_blocks(
        {hk: [(e[1], e[2]) for e in queue] for hk, queue in hash_queues.items()}, timelocked, 43, 1)
    assert blocks == {ALICE: 6852650, BOB: 6852640, CHARLIE: 6852645}


def test_a_commit_map_without_entries_reads_empty(shared_dir, tmp_path):
    from tasks.chain import open_chain

    codec, block, block_hash, recording = _spec_343(shared_dir)

    def edit(copy):
        for item in ("WeightCommits", "TimelockedWeightCommits"):
            add_storage_map(copy, codec, item, 1, [], block_hash)

    chain = open_chain(replay_edited(recording, tmp_path, edit, shared_dir))
    try:
        assert chain.weight_commits(chain.pin(block), 1) == ({}, [])
    finally:
        chain.close()


def _spec_343(shared_dir):
    """The spec-343 runtime's codec, the recorded block, its hash and the recording."""
    from tasks.chain.runtime import RuntimeCodec, strip_option_opaque_metadata

    recording = load_recording(shared_dir)
    raw = bytes.fromhex((shared_dir / "chain/recordings/mainnet-spec343/metadata_v15.hex").read_text().strip()[2:])
    block = 6852690
    (block_hash,) = {a["result"] for p, a in recording["chain_getBlockHash"].items() if str(block) in p}
    return RuntimeCodec(strip_option_opaque_metadata(raw), 343, 1), block, block_hash, recording
