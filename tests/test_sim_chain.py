"""The simulated subnet (`sim`): chain rules, history, the epoch parity the demo relies on, persistence.

Expected numbers are worked by hand from the chain's rules (yuma_spec.md §5, §6; chain_interface.md
§6.2), or recomputed through the warehouse path (tasks.consensus.inputs) from the sim's own snapshots.
"""

from __future__ import annotations

import polars as pl
import pytest
from substrateinterface import Keypair

from schemas import chain as tables
from tasks.chain import ChainClient, open_chain
from tasks.chain.errors import ChainError
from tasks.chain.interface import ChainWriter
from tasks.consensus import run_epochs
from tasks.consensus.inputs import PARITY_COLUMNS, chain_parity, epoch_inputs_from_snapshots
from tasks.simnet.chain import SimChain, SimRejected, parse_sim_source
from tasks.simnet.scenario import play_default_scenario

NETUID = 1
ALPHA = 10**9
# 1 alpha per block minus the owner cut ⌊10^9·11796/65535⌋ = 179_995_422 (18 %).
OWNER_CUT_PER_BLOCK = 179_995_422
PENDING_PER_BLOCK = 1_000_000_000 - OWNER_CUT_PER_BLOCK  # 820_004_578


@pytest.fixture(scope="module")
def played() -> SimChain:
    """The default scenario of seed 7, as `--chain sim:7` gives it."""
    return open_chain("sim:7")


def small_subnet(seed: int = 3, **hyperparameters) -> tuple[SimChain, dict[str, Keypair]]:
    """Two validators (uids 0, 1; //Alice has the larger stake) and four miners (uids 2..5) registered
    in block 1, then advanced through the first epoch (block 20), which gives the validators permits."""
    sim = SimChain(seed)
    for name, value in hyperparameters.items():
        sim.set_hyperparameter(NETUID, name, value)
    people = {"alice": ("validator", 0), "bob": ("validator", 1), **{f"m{i}": ("miner", i) for i in range(4)}}
    keys = {name: sim.keypair(*who) for name, who in people.items()}
    with sim.block():
        for name, who in people.items():
            sim.register(NETUID, keys[name].ss58_address, sim.keypair(*who, coldkey=True).ss58_address)
        sim.add_stake(NETUID, keys["alice"].ss58_address, 1_000 * ALPHA)
        sim.add_stake(NETUID, keys["bob"].ss58_address, 300 * ALPHA)
    sim.advance(20 - sim.head_block())
    return sim, keys


def frames(sim: SimChain, block: int, parts=("subnets", "neurons", "weights", "bonds")) -> dict[str, pl.DataFrame]:
    return sim.snapshot(NETUID, block, parts).frames()


def without_block(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("block")


def epoch_blocks(sim: SimChain) -> list[int]:
    return [b for b in range(1, sim.head_block() + 1)
            if sim.snapshot(NETUID, b, ("subnets",)).subnets["last_mechanism_step_block"][0] == b]


# ---------------------------------------------------------------- source, interface, labels

def test_source_grammar_and_open_chain():
    assert parse_sim_source("sim") == (0, None)
    assert parse_sim_source("sim:7") == (7, None)
    assert parse_sim_source("sim:7@data/chain.json") == (7, "data/chain.json")
    for bad in ("sim:x", "simx", "sim:-1", "sim7"):
        with pytest.raises(ValueError, match="expected sim, sim:SEED or sim:SEED@STATE_FILE"):
            parse_sim_source(bad)
    chain = open_chain("sim:7", scenario_tempos=1)
    assert isinstance(chain, SimChain) and isinstance(chain, ChainClient) and isinstance(chain, ChainWriter)
    assert chain.source == "sim:7" and chain.head_block() == 20
    assert chain.keypair("miner", 3).ss58_address == Keypair.create_from_uri("//sim/7/miner/3").ss58_address
    assert chain.keypair("miner", 3, coldkey=True).ss58_address == \
        Keypair.create_from_uri("//sim/7/miner/3/coldkey").ss58_address
    assert chain.keypair("validator", 0).ss58_address == Keypair.create_from_uri("//Alice").ss58_address


def test_snapshot_frames_validate_and_say_simulation(played):
    head = played.head_block()
    snap = played.snapshot(NETUID, head)
    for part, table in (("blocks", tables.BLOCKS), ("subnets", tables.SUBNETS), ("neurons", tables.NEURONS),
                        ("weights", tables.WEIGHTS), ("bonds", tables.BONDS)):
        assert snap.frames()[part].schema == table.polars_schema(), part
    assert snap.blocks.row(0, named=True) == {
        "block": head, "block_hash": played.block_hash(head), "spec_version": 343,
        "timestamp_ms": 1_735_689_600_000 + 12_000 * head, "source": "sim:7 (simulation)"}
    assert snap.block_hash.startswith("0x5157") and len(snap.block_hash) == 66
    assert played.block_hash(3) != played.block_hash(4)
    assert played.head_block(finalized=False) == head
    with pytest.raises(ChainError, match="block 201 not found on sim:7"):
        played.snapshot(NETUID, head + 1)
    with pytest.raises(ChainError, match="subnet 5 does not exist at block 10"):
        played.snapshot(5, 10)


# ---------------------------------------------------------------- determinism and history

def test_same_seed_same_chain_other_seed_other_chain():
    def played_from_scratch(seed: int) -> SimChain:  # not SimChain.open, which forks one cached play
        sim = SimChain(seed)
        play_default_scenario(sim, tempos=3)
        return sim

    a, b, c = (played_from_scratch(seed) for seed in (11, 11, 12))
    assert a._versions[-1] is not b._versions[-1]
    assert a.head_block() == b.head_block() == 60
    for block in (0, 1, 25, 41, 60):
        fa, fb, fc = frames(a, block), frames(b, block), frames(c, block)
        for part in fa:
            assert fa[part].equals(fb[part]), (part, block)
        assert a.block_hash(block) == b.block_hash(block) != c.block_hash(block)
    assert not fa["weights"].equals(fc["weights"])
    assert fa["neurons"]["hotkey"][0] == fc["neurons"]["hotkey"][0] == Keypair.create_from_uri("//Alice").ss58_address


def test_history_is_readable_and_unchanged_by_later_blocks():
    sim = SimChain.open("sim:5", scenario_tempos=3)
    before = {block: frames(sim, block) for block in (0, 1, 30, 60)}
    # Five validators and six miners at genesis (block 0); later blocks add miners.
    assert before[0]["neurons"].height == before[0]["subnets"]["subnetwork_n"][0] == 11
    assert before[0]["neurons"]["block_at_registration"].to_list() == [0] * 11
    assert SimChain(5).snapshot(NETUID, 0).neurons.height == 0  # a bare chain starts empty
    alice = sim.keypair("validator", 0)
    assert sim.set_weights(NETUID, [5, 6], [100, 200], 0, alice).ok
    sim.register(NETUID, sim.keypair("late", 0).ss58_address, sim.keypair("late", 0, coldkey=True).ss58_address)
    sim.advance(45)
    for block, old in before.items():
        now = frames(sim, block)
        for part in old:
            assert now[part].equals(old[part]), (part, block)


# ---------------------------------------------------------------- set_weights

# Hand-worked rows (chain_interface.md §6.1 point 4, spec §6; as tests/test_localchain.py): sent
# (40000, 12345, 1, 20000): factor trunc(65535/40000·2^32)/2^32; 12345 → 20225.74 → 20226, 1 → 2,
# 20000 → just under 32767.5 → 32767. Sent (100, 2000, 300, 7): max ≤ 32768, so w·65535/2000:
# 3276.75 → 3277, 65535, 9830.25 → 9830, 229.37 → 229.
def test_stored_row_is_the_chains_max_upscale_in_submission_order():
    sim, keys = small_subnet()
    sent = sim.set_weights(NETUID, [5, 2, 4, 3], [40_000, 12_345, 1, 20_000], 0, keys["alice"])
    assert sent.ok and sent.block == 21 and sent.error is None
    assert sent.events == ("SubtensorModule.WeightsSet", "System.ExtrinsicSuccess")
    assert sent.extrinsic_hash.startswith("0x5157")
    assert sim.set_weights(NETUID, [2, 3, 4, 5], [100, 2_000, 300, 7], 0, keys["bob"]).ok
    snap = sim.snapshot(NETUID, 22, ("weights", "neurons"))
    rows = snap.weights.select("validator_uid", "miner_uid", "weight").rows()
    assert rows == [(0, 5, 65_535), (0, 2, 20_226), (0, 4, 2), (0, 3, 32_767),
                    (1, 2, 3_277), (1, 3, 65_535), (1, 4, 9_830), (1, 5, 229)]
    assert snap.neurons["last_update"].to_list()[:2] == [21, 22]


def test_set_weights_checks_in_order_each_with_the_pallet_error_and_no_change():
    sim, keys = small_subnet()
    sim.set_hyperparameter(NETUID, "tempo", 1_000)  # no epoch in between: each block changes only by the call
    sim.create_subnet(2, commit_reveal_enabled=True)
    alice, bob, miner = keys["alice"], keys["bob"], keys["m0"]
    stranger = sim.keypair("validator", 9)

    def rejected(error, uids, weights, hotkey, *, netuid=NETUID, version_key=0, mechid=0):
        head = sim.head_block()
        before = frames(sim, head, ("neurons", "weights"))
        sub = sim.set_weights(netuid, uids, weights, version_key, hotkey, mechid=mechid)
        assert (sub.ok, sub.error, sub.block) == (False, f"SubtensorModule.{error}", head + 1)
        assert sub.events == ("System.ExtrinsicFailed",)
        after = frames(sim, head + 1, ("neurons", "weights"))
        for part in before:
            assert without_block(after[part]).equals(without_block(before[part])), (error, part)

    rejected("CanNotSetRootNetworkWeights", [2], [1], alice, netuid=0)
    rejected("SubnetNotExists", [2], [1], alice, netuid=9)
    rejected("CommitRevealEnabled", [2], [1], alice, netuid=2)
    second_subnet = sim.snapshot(2, sim.head_block(), ("subnets", "neurons")).subnets.row(0, named=True)
    assert (second_subnet["commit_reveal_enabled"], second_subnet["subnetwork_n"]) == (True, 0)
    rejected("WeightVecNotEqualSize", [2, 3], [1], stranger)  # before the registration check
    rejected("MechanismDoesNotExist", [2], [1], alice, mechid=1)
    rejected("UidsLengthExceedUidsInSubNet", [0, 1, 2, 3, 4, 5, 6], [1] * 7, alice)
    rejected("HotKeyNotRegisteredInSubNet", [2], [1], stranger)
    sim.set_hyperparameter(None, "stake_threshold", 500 * ALPHA)  # bob has 300 alpha and no TAO
    rejected("NotEnoughStakeToSetWeights", [2], [1], bob)
    sim.set_hyperparameter(None, "stake_threshold", 0)
    sim.set_hyperparameter(NETUID, "weights_version", 7)
    rejected("IncorrectWeightVersionKey", [2], [1], alice, version_key=6)
    assert sim.set_weights(NETUID, [2], [1], 7, alice).ok
    sim.set_hyperparameter(NETUID, "weights_version", 0)
    rejected("SettingWeightsTooFast", [3], [1], alice)  # 2 blocks after its last update, limit 5
    rejected("NeuronNoValidatorPermit", [3, 4], [1, 1], miner)
    rejected("NeuronNoValidatorPermit", [3, 3], [1, 1], miner)  # the permit check comes before duplicates
    rejected("DuplicateUids", [3, 3], [1, 1], bob)
    rejected("UidVecContainInvalidOne", [2, 6], [1, 1], bob)
    sim.set_hyperparameter(NETUID, "min_allowed_weights", 2)
    rejected("WeightVecLengthIsLow", [3], [1], bob)
    sim.set_hyperparameter(NETUID, "max_weight_limit", 40_000)  # 0.61 of the row at most
    rejected("MaxWeightExceeded", [2, 3], [65_535, 1], bob)
    # A single self-weight needs no permit and escapes the length and max-weight limits.
    own = sim.set_weights(NETUID, [2], [9], 0, miner)
    assert own.ok
    assert frames(sim, own.block)["weights"].filter(pl.col("validator_uid") == 2)["weight"].to_list() == [65_535]
    # The rate limit in blocks: b − LastUpdate = 4 fails, 5 passes.
    sim.set_hyperparameter(NETUID, "max_weight_limit", 65_535)
    first = sim.set_weights(NETUID, [2, 3], [30_000, 30_000], 0, bob)
    assert first.ok
    sim.advance(3)
    rejected("SettingWeightsTooFast", [2, 3], [1, 1], bob)
    at_limit = sim.set_weights(NETUID, [2, 3], [1, 1], 0, bob)
    assert (at_limit.ok, at_limit.block) == (True, first.block + 5)


def test_writes_in_one_block_share_it():
    sim, keys = small_subnet()
    with sim.block() as b:
        first = sim.set_weights(NETUID, [2, 3], [1, 2], 0, keys["alice"])
        second = sim.set_weights(NETUID, [4, 5], [2, 1], 0, keys["bob"])
        axon = sim.serve_axon(NETUID, "127.0.0.1", 8091, keys["m0"])
    assert first.block == second.block == axon.block == b == 21 and sim.head_block() == 21
    assert len({first.extrinsic_hash, second.extrinsic_hash, axon.extrinsic_hash}) == 3


def test_serve_axon():
    sim, keys = small_subnet()
    ok = sim.serve_axon(NETUID, "127.0.0.1", 8091, keys["m1"])
    assert ok.ok and ok.events[0] == "SubtensorModule.AxonServed"
    row = frames(sim, ok.block)["neurons"].filter(pl.col("uid") == 3).row(0, named=True)
    assert (row["axon_ip"], row["axon_port"], row["axon_protocol"]) == ("127.0.0.1", 8091, 4)
    assert frames(sim, ok.block - 1)["neurons"]["axon_ip"][3] is None
    assert sim.serve_axon(NETUID, "127.0.0.1", 1, sim.keypair("x", 0)).error == \
        "SubtensorModule.HotKeyNotRegisteredInNetwork"
    assert sim.serve_axon(NETUID, "not-an-ip", 1, keys["m1"]).error == "SubtensorModule.InvalidIpAddress"
    assert sim.serve_axon(NETUID, "0.0.0.0", 1, keys["m1"]).error == "SubtensorModule.InvalidIpAddress"
    assert sim.serve_axon(NETUID, "10.0.0.1", 0, keys["m1"]).error == "SubtensorModule.InvalidPort"


# ---------------------------------------------------------------- epochs, emission, parity

def test_epochs_run_at_tempo_boundaries_on_the_pending_emission():
    sim, keys = small_subnet()
    owner = frames(sim, 0)["subnets"]["owner_hotkey"][0]
    at19, at20 = frames(sim, 19), frames(sim, 20)
    assert at19["subnets"]["last_mechanism_step_block"][0] == 0
    assert at19["subnets"]["pending_emission"][0] == 19 * PENDING_PER_BLOCK
    assert at20["subnets"]["last_mechanism_step_block"][0] == 20
    assert at20["subnets"]["pending_emission"][0] == PENDING_PER_BLOCK  # drained, then block 20's own
    # No weights yet: no incentive; validators take the epoch by stake (Alice 1000 : Bob 300).
    n20 = at20["neurons"]
    assert n20["validator_permit"].to_list() == [True, True, False, False, False, False]
    assert sum(n20["emission"]) <= 19 * PENDING_PER_BLOCK
    assert n20["alpha_stake"][0] - at19["neurons"]["alpha_stake"][0] == n20["emission"][0]
    # The owner (not registered) is paid the owner cut of blocks 1..19 at the epoch.
    assert sim.stake_of(NETUID, owner, 19) == (0, 0)
    assert sim.stake_of(NETUID, owner, 20) == (19 * OWNER_CUT_PER_BLOCK, 0)
    sim.advance(19)
    assert frames(sim, 39)["subnets"]["last_mechanism_step_block"][0] == 20
    sim.advance(1)
    assert frames(sim, 40)["subnets"]["last_mechanism_step_block"][0] == 40


def test_stored_epochs_equal_the_recompute_from_the_previous_blocks_snapshot(played):
    """The parity the demo relies on: snapshots at P, through tasks.consensus.inputs and run_epochs,
    give exactly the outputs the sim stored at P + 1, for every epoch of the default scenario."""
    epochs = epoch_blocks(played)
    assert epochs == list(range(20, 201, 20))
    before = [played.snapshot(NETUID, e - 1) for e in epochs]
    after = [played.snapshot(NETUID, e) for e in epochs]
    inputs = epoch_inputs_from_snapshots(*(pl.concat([getattr(s, p) for s in before])
                                           for p in ("subnets", "neurons", "weights", "bonds")))
    assert inputs["epochs"]["emission"].to_list() == [s.subnets["pending_emission"][0] for s in before]
    assert inputs["epochs"]["emission"][1] == 20 * PENDING_PER_BLOCK
    result = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    chain_neurons = pl.concat([s.neurons for s in after])
    parity = chain_parity(result.neurons, chain_neurons, pl.concat([s.subnets for s in after]))
    assert parity.height == len(epochs) * len(PARITY_COLUMNS)
    assert (parity["equal"] == parity["uids"]).all() and parity["max_abs_diff"].max() == 0
    stored_bonds = pl.concat([s.bonds for s in after]).select("block", "validator_uid", "miner_uid", "bond")
    assert result.bonds.select("block", "validator_uid", "miner_uid", "bond").sort(pl.all()).equals(
        stored_bonds.sort(pl.all()))
    assert stored_bonds.height > 0 and chain_neurons["incentive"].sum() > 0
    # Emissions are paid into stake: each uid's alpha grows by exactly its epoch emission.
    for b, a in zip(before, after, strict=True):
        grown = a.neurons["alpha_stake"].cast(pl.Int64) - b.neurons["alpha_stake"].cast(pl.Int64)
        assert grown.to_list() == a.neurons["emission"].cast(pl.Int64).to_list()


def test_a_what_if_kappa_differs_from_the_chain():
    """A recompute with another kappa differs from the chain: the comparison can fail."""
    sim = SimChain.open("sim:4", scenario_tempos=4)
    snap = sim.snapshot(NETUID, 59)
    inputs = epoch_inputs_from_snapshots(snap.subnets.with_columns(pl.lit(10_000, pl.UInt16).alias("kappa")),
                                         snap.neurons, snap.weights, snap.bonds)
    result = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    chain = sim.snapshot(NETUID, 60)
    parity = chain_parity(result.neurons, chain.neurons, chain.subnets)
    assert (parity["equal"] < parity["uids"]).any()


# ---------------------------------------------------------------- registration and deregistration

def test_replacement_follows_the_deregistration_rules():
    sim, keys = small_subnet(max_allowed_uids=6, immunity_period=30)
    alice, bob = keys["alice"], keys["bob"]
    assert sim.serve_axon(NETUID, "10.0.0.2", 8092, bob).ok  # block 21
    # Alice weights Bob (uid 1) a little and miners 2..4 fully; Bob weights miners 2..4; uid 5 nobody.
    assert sim.set_weights(NETUID, [1, 2, 3, 4], [100, 65_535, 65_535, 65_535], 0, alice).ok  # 22
    assert sim.set_weights(NETUID, [2, 3, 4], [65_535] * 3, 0, bob).ok  # 23
    sim.advance(40 - sim.head_block())  # epoch 40: bonds, dividends, incentive
    at40 = frames(sim, 40)
    assert at40["bonds"].filter(pl.col("validator_uid") == 1).height > 0
    emissions = at40["neurons"]["emission"].to_list()
    assert emissions[5] == 0 and min(emissions[:5]) > 0
    # Block 41, subnet full: every uid is past immunity (41 − 1 ≥ 30); the lowest emission is uid 5.
    newcomer = sim.keypair("miner", 10)
    assert sim.register(NETUID, newcomer.ss58_address, sim.keypair("miner", 10, coldkey=True).ss58_address) == 5
    # Epoch 60: the newcomer is immune (61 − 41 < 30); of the rest Bob, with 300 of 1300 stake
    # (≈ 0.5·E·0.23 in dividends), earns less than each miner (≈ 0.5·E/3): Bob's uid 1 goes.
    sim.advance(60 - sim.head_block())
    at60 = frames(sim, 60)
    assert at60["neurons"].filter(pl.col("uid") != 5).sort("emission")["uid"][0] == 1
    second = sim.keypair("miner", 11)
    assert sim.register(NETUID, second.ss58_address, sim.keypair("miner", 11, coldkey=True).ss58_address) == 1
    after = frames(sim, 61)
    row = after["neurons"].row(1, named=True)
    assert row["hotkey"] == second.ss58_address
    assert (row["block_at_registration"], row["last_update"], row["validator_permit"]) == (61, 61, False)
    assert (row["emission"], row["consensus"], row["incentive"], row["dividends"], row["axon_ip"]) == (0, 0, 0, 0, None)
    # Its own weight and bond rows are cleared; incoming weights become 0 and keep their entries.
    assert at60["weights"].filter(pl.col("validator_uid") == 1).height == 3
    assert after["weights"].filter(pl.col("validator_uid") == 1).height == 0
    assert at60["bonds"].filter(pl.col("validator_uid") == 1).height > 0
    assert after["bonds"].filter(pl.col("validator_uid") == 1).height == 0
    assert after["weights"].filter(pl.col("validator_uid") == 0).select("miner_uid", "weight").rows() == [
        (1, 0), (2, 65_535), (3, 65_535), (4, 65_535)]
    # Other validators' bonds in the replaced uid stay until the epoch's mask removes them (spec §6).
    assert after["bonds"].filter(pl.col("validator_uid") != 1).drop("block").equals(
        at60["bonds"].filter(pl.col("validator_uid") != 1).drop("block"))
    with pytest.raises(SimRejected, match="HotKeyAlreadyRegisteredInSubNet"):
        sim.register(NETUID, second.ss58_address, second.ss58_address)


def test_immune_uids_are_spared_while_another_candidate_exists():
    sim, keys = small_subnet(max_allowed_uids=6, immunity_period=1_000)
    n20 = frames(sim, 20)["neurons"]
    assert n20["emission"].to_list()[2:] == [0, 0, 0, 0]  # no weights yet: miners earned nothing
    # Block 21: everyone is immune, so the lowest emission of all goes, lowest uid first: uid 2.
    assert sim.register(NETUID, sim.keypair("miner", 20).ss58_address, sim.keypair("miner", 20).ss58_address) == 2
    sim.set_hyperparameter(NETUID, "immunity_period", 5)  # block 22
    # Block 23: only the newcomer at uid 2 (registered at 21) is immune: uid 3 goes.
    assert sim.register(NETUID, sim.keypair("miner", 21).ss58_address, sim.keypair("miner", 21).ss58_address) == 3


# ---------------------------------------------------------------- persistence and the scenario

def test_a_loaded_sim_continues_exactly_like_one_that_never_stopped(tmp_path):
    path = tmp_path / "chain.json"
    original = SimChain.open("sim:6", scenario_tempos=2)
    original.save(path)
    loaded = SimChain.load(path)
    for sim in (original, loaded):
        sim.advance(7)
        assert sim.set_weights(NETUID, [5, 6, 7], [10, 20, 30], 0, sim.keypair("validator", 0)).ok
        sim.register(NETUID, sim.keypair("late", 1).ss58_address, sim.keypair("late", 1, coldkey=True).ss58_address)
        sim.add_stake(NETUID, sim.keypair("miner", 3).ss58_address, 5 * ALPHA)
        sim.advance(30)
    assert loaded.head_block() == original.head_block() == 80
    for block in (0, 1, 40, 47, 60, 80):
        a, b = frames(original, block), frames(loaded, block)
        for part in a:
            assert a[part].equals(b[part]), (part, block)
        assert original.block_hash(block) == loaded.block_hash(block)


def test_state_file_source_creates_once_then_loads(tmp_path):
    path = tmp_path / "sim" / "state.json"
    first = open_chain(f"sim:9@{path}", scenario_tempos=1)
    assert not path.exists()
    first.advance(3)
    first.close()
    assert path.exists()
    again = open_chain(f"sim:9@{path}")  # loads; no new scenario is played
    assert again.head_block() == 23 and again.source == f"sim:9@{path}"
    assert frames(again, 23)["neurons"].equals(frames(first, 23)["neurons"])
    with pytest.raises(ValueError, match="not a simulated chain state"):
        (tmp_path / "other.json").write_text('{"format": "x"}')
        SimChain.load(tmp_path / "other.json")


def test_default_scenario_has_registrations_replacements_and_weights(played):
    head = played.head_block()
    assert head == 200
    snap = played.snapshot(NETUID, head)
    neurons = snap.neurons
    assert neurons.height == 64 == snap.subnets["max_allowed_uids"][0]
    alice = neurons.row(0, named=True)
    assert alice["hotkey"] == Keypair.create_from_uri("//Alice").ss58_address
    assert alice["alpha_stake"] == neurons["alpha_stake"].max() and alice["validator_permit"]
    hotkeys = set()
    for block in range(0, head + 1, 10):
        hotkeys |= set(played.snapshot(NETUID, block, ("neurons",)).neurons["hotkey"])
    assert len(hotkeys) > 64  # some uids were replaced
    assert neurons["block_at_registration"].n_unique() > 20  # miners registered over time
    assert snap.weights["validator_uid"].unique().sort().to_list() == [0, 1, 2, 3, 4]
    assert snap.weights.height > 5 * 40
    assert (neurons["dividends"][:5] > 0).all() and neurons["incentive"][5:].sum() > 0


def test_after_the_scenario_background_validators_keep_setting_weights_and_parity_holds():
    sim = SimChain.open("sim:8", scenario_tempos=2)
    assert sim.scenario["autopilot"] is True
    sim.advance(41)  # to block 81: epochs 60 and 80
    neurons = frames(sim, 81)["neurons"]
    assert neurons["last_update"].to_list()[1:5] == [65, 68, 71, 74]  # offsets 5, 8, 11, 14 of tempo 60..79
    assert neurons["last_update"][0] == 22  # //Alice is the caller's: untouched since the scenario
    for epoch in (60, 80):
        before, after = sim.snapshot(NETUID, epoch - 1), sim.snapshot(NETUID, epoch)
        inputs = epoch_inputs_from_snapshots(before.subnets, before.neurons, before.weights, before.bonds)
        result = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
        parity = chain_parity(result.neurons, after.neurons, after.subnets)
        assert parity.height == len(PARITY_COLUMNS) and (parity["equal"] == parity["uids"]).all()
    sim.scenario["autopilot"] = False
    sim.advance(20)
    assert frames(sim, 101)["neurons"]["last_update"].to_list()[:5] == [22, 65, 68, 71, 74]


def test_each_open_is_an_independent_chain():
    first, second = open_chain("sim:7", scenario_tempos=1), open_chain("sim:7", scenario_tempos=1)
    assert first.set_weights(NETUID, [5], [1], 0, first.keypair("validator", 0)).ok
    assert (first.head_block(), second.head_block()) == (21, 20)
    with pytest.raises(ChainError, match="block 21 not found"):
        second.snapshot(NETUID, 21)
    assert open_chain("sim:7", scenario_tempos=1).head_block() == 20


# ---------------------------------------------------------------- today's epoch rules on the simulated subnet

def _recompute_parity(sim: SimChain, epochs: list[int]) -> pl.DataFrame:
    before = [sim.snapshot(NETUID, e - 1) for e in epochs]
    after = [sim.snapshot(NETUID, e) for e in epochs]
    inputs = epoch_inputs_from_snapshots(*(pl.concat([getattr(s, p) for s in before])
                                           for p in ("subnets", "neurons", "weights", "bonds")))
    result = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    return chain_parity(result.neurons, pl.concat([s.neurons for s in after]), pl.concat([s.subnets for s in after]))


def _liquid_run(mode: str) -> tuple[SimChain, list[int]]:
    """Liquid alpha (Yuma3, BondsPenalty 65535) with the validators changing their rows every epoch, so the
    consensus of one epoch is not the next one's."""
    sim, keys = small_subnet(liquid_alpha_enabled=True, liquid_alpha_consensus_mode=mode)
    rows = [[60_000, 5_000, 30_000, 1_000], [2_000, 65_535, 10_000, 40_000], [30_000, 30_000, 65_535, 100]]
    for k, row in enumerate(rows):
        assert sim.set_weights(NETUID, [2, 3, 4, 5], row, 0, keys["alice"]).ok
        assert sim.set_weights(NETUID, [2, 3, 4, 5], rows[(k + 1) % 3], 0, keys["bob"]).ok
        sim.advance(20)
    return sim, [b for b in epoch_blocks(sim) if b > 20]


def test_the_sim_plays_liquid_alphas_consensus_modes_and_replays_them_exactly():
    """Each ConsensusMode a subnet can set runs in the sim's epochs; the replay from the snapshots (mode and
    stored consensus read back) equals what the sim stored; Previous moves bonds away from Current, and Auto
    at BondsPenalty 65535 is Previous."""
    runs = {mode: _liquid_run(mode) for mode in ("Current", "Previous", "Auto")}
    for mode, (sim, epochs) in runs.items():
        assert sim.snapshot(NETUID, epochs[-1], ("subnets",)).subnets["liquid_alpha_consensus_mode"][0] == mode
        parity = _recompute_parity(sim, epochs)
        assert (parity["equal"] == parity["uids"]).all(), mode

    def bonds(mode):
        sim, epochs = runs[mode]
        return [frames(sim, e)["bonds"].drop("block").sort(pl.all()) for e in epochs]

    assert all(a.equals(b) for a, b in zip(bonds("Auto"), bonds("Previous"), strict=True))
    assert not all(a.equals(b) for a, b in zip(bonds("Current"), bonds("Previous"), strict=True))
    with pytest.raises(ValueError, match="LiquidAlphaConsensusMode 'Median'"):
        runs["Current"][0].set_hyperparameter(NETUID, "liquid_alpha_consensus_mode", "Median")


def _sniped(commit_reveal_at_epoch: bool) -> tuple[SimChain, int, int, int]:
    """snipe_weight_mask.rs in the sim: alice commits (commit-reveal on), a newcomer registers a block later,
    alice then sets a row that gives it most of her weight directly (commit-reveal briefly off, so her
    last_update is after the registration and the outdated mask does not apply), and the next epoch runs
    with commit-reveal on again (or left off). Returns (sim, epoch block, newcomer uid, commit block)."""
    sim, keys = small_subnet(max_allowed_uids=8)
    sim.set_hyperparameter(NETUID, "commit_reveal_enabled", True)
    sim.advance(5)
    commit = sim.commit_weights(NETUID, [2, 3, 4, 5], [65_535] * 4, 0, keys["alice"])
    assert commit.submission.ok
    newcomer = sim.keypair("miner", 9)
    with sim.block():
        uid = sim.register(NETUID, newcomer.ss58_address, sim.keypair("miner", 9, coldkey=True).ss58_address)
    sim.set_hyperparameter(NETUID, "commit_reveal_enabled", False)
    sim.advance(5)
    assert sim.set_weights(NETUID, [2, uid], [1_000, 65_535], 0, keys["alice"]).ok
    assert sim.set_weights(NETUID, [2, 3], [65_535, 65_535], 0, keys["bob"]).ok
    sim.set_hyperparameter(NETUID, "commit_reveal_enabled", commit_reveal_at_epoch)
    last = epoch_blocks(sim)[-1]
    sim.advance(20)
    (epoch,) = [b for b in epoch_blocks(sim) if b > last][:1]
    return sim, epoch, uid, commit.submission.block


@pytest.mark.parametrize("commit_reveal", [True, False])
def test_the_sim_masks_weights_to_uids_registered_inside_a_pending_commit(commit_reveal):
    """With commit-reveal on at the epoch, alice's unexpired commit predates the newcomer's registration: her
    weight to it is masked and it earns nothing; with it off, it earns alice's weight. The snapshot reads her
    commit block back and the replay masks (or not) alike."""
    sim, epoch, uid, commit_block = _sniped(commit_reveal)
    neurons = frames(sim, epoch - 1)["neurons"]
    assert neurons["commit_block"][0] == commit_block and neurons["commit_block"][1] is None
    assert neurons["block_at_registration"][uid] > commit_block
    incentive = frames(sim, epoch)["neurons"]["incentive"][uid]
    assert (incentive == 0) if commit_reveal else (incentive > 30_000)
    parity = _recompute_parity(sim, [epoch])
    assert (parity["equal"] == parity["uids"]).all()
