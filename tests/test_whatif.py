"""What-if recomputation (tasks/consensus/whatif.py, scenarios.py, flows/whatif.py).

The "chain" is the simulated subnet (tasks/simnet/chain.py), which runs and stores its own epochs; the
spec's numbers are the Yuma3 test vectors (yuma_vectors.md §2.7).
"""

from __future__ import annotations

import polars as pl
import pytest

from flows.ingest import store_snapshots
from tasks.consensus.inputs import PARITY_COLUMNS
from tasks.consensus.scenarios import CATALOGUE, scenario
from tasks.consensus.whatif import Variant, VariantError, compare_variants, parse_variant, run_variants
from tasks.simnet.chain import SimChain
from warehouse import Warehouse

NETUID = 1
EPOCH_BLOCKS = list(range(20, 201, 20))  # the default scenario's tempo is 20; ten epochs in blocks 1..200

VARIANTS = [
    Variant("baseline"),
    Variant("classic", {"yuma3_enabled": False, "bonds_penalty": 65535, "bonds_moving_avg": 900_000}),
    Variant("liquid", {"liquid_alpha_enabled": True, "alpha_low": 6553, "alpha_high": 19660}),
    Variant("low_kappa", {"kappa": 16384, "bonds_penalty": 0}),
]


@pytest.fixture(scope="module")
def sim_warehouse(tmp_path_factory) -> Warehouse:
    """Snapshots at b − 1 and b of every epoch block b of the default simulated subnet."""
    sim = SimChain.open("sim:0")
    wh = Warehouse(tmp_path_factory.mktemp("whatif") / "wh")
    blocks = sorted({b for e in EPOCH_BLOCKS for b in (e - 1, e)})
    store_snapshots(wh, [sim.snapshot(NETUID, b) for b in blocks], "sim:0")
    return wh


def sim_inputs(wh: Warehouse) -> dict[str, pl.DataFrame]:
    from flows.whatif import warehouse_inputs

    return warehouse_inputs(wh, NETUID, EPOCH_BLOCKS[0], EPOCH_BLOCKS[-1])


def test_baseline_reproduces_the_chain_exactly(sim_warehouse):
    inputs = sim_inputs(sim_warehouse)
    assert inputs["epochs"]["block"].to_list() == EPOCH_BLOCKS
    out = run_variants({**inputs, "bonds": inputs["bonds"].filter(pl.col("block") == EPOCH_BLOCKS[0])},
                       [Variant("baseline")])
    chain = sim_warehouse.read("neurons", netuid=NETUID).filter(pl.col("block").is_in(EPOCH_BLOCKS))
    ours = out.neurons.select("block", "uid", *PARITY_COLUMNS).sort("block", "uid")
    assert ours.height == chain.height
    assert ours.equals(chain.select("block", "uid", *PARITY_COLUMNS).sort("block", "uid"))
    # The carried bonds are the chain's stored bonds after every epoch, edge for edge.
    chain_bonds = (sim_warehouse.read("bonds", netuid=NETUID).filter(pl.col("block").is_in(EPOCH_BLOCKS))
                   .select("block", "validator_uid", "miner_uid", "bond").sort(pl.all()))
    assert out.bonds.select("block", "validator_uid", "miner_uid", "bond").sort(pl.all()).equals(chain_bonds)
    assert chain_bonds.filter(pl.col("block") == EPOCH_BLOCKS[-1]).height > 0


def test_batching_across_variants_equals_each_variant_alone(sim_warehouse):
    inputs = sim_inputs(sim_warehouse)
    # Two subnets: the stored one and a copy of it under another netuid.
    two = {name: pl.concat([f, f.with_columns(pl.lit(7, pl.UInt16).alias("netuid"))]) for name, f in inputs.items()}
    batched = run_variants(two, VARIANTS)
    assert batched.neurons.select("variant", "netuid").unique().height == len(VARIANTS) * 2
    for variant in VARIANTS:
        alone = run_variants(inputs, [variant])
        for netuid in (NETUID, 7):
            got = batched.neurons.filter((pl.col("variant") == variant.name) & (pl.col("netuid") == netuid))
            assert got.drop("netuid").equals(alone.neurons.drop("netuid"))
            got_bonds = batched.bonds.filter((pl.col("variant") == variant.name) & (pl.col("netuid") == netuid))
            assert got_bonds.drop("netuid").equals(alone.bonds.drop("netuid"))
    # The variants do differ from the baseline (the overrides reached the engine).
    baseline = batched.neurons.filter(pl.col("variant") == "baseline")["dividends"]
    assert not batched.neurons.filter(pl.col("variant") == "classic")["dividends"].equals(baseline)


def test_kappa_moves_first_matches_the_yuma3_vector():
    """yuma_vectors.md §2.7 `test_yuma_3_kappa_moves_first`: derived exact u16 dividends, bonds carried."""
    out = run_variants(scenario("kappa_moves_first").inputs, [Variant("baseline")])
    dividends = (out.neurons.filter(pl.col("uid") < 3).sort("block", "uid")
                 .group_by("block", maintain_order=True).agg("dividends")["dividends"].to_list())
    assert dividends == [[52428, 6553, 6553], [65535, 0, 0], [61486, 4048, 0], [57796, 5068, 2669],
                         [56122, 5531, 3881], [55170, 5795, 4569]]


def test_yuma3_copier_earns_less_than_honest_validators_and_tiny_stake_is_paid_fairly():
    s = scenario("weight_copier")
    out = run_variants(s.inputs, VARIANTS[:2])
    table = compare_variants(out.neurons, s.roles).rows_by_key("variant", named=True, unique=True)
    # Yuma3 (spec §2.10): a copier buys the new miner one epoch late, so its bond share lags.
    assert table["baseline"]["copier_relative_dividends"] < 0.7
    # Dividends are proportional to stake × bond share: a 1 % honest validator is paid like the others.
    assert table["baseline"]["tiny_relative_dividends"] == pytest.approx(1.0, abs=1e-3)
    assert table["classic"]["copier_relative_dividends"] < 1.0


def test_liquid_alpha_accrues_bonds_faster_from_the_first_epoch():
    """First epoch of a fresh subnet, all on miner 0 (yuma_vectors.md §2.7): with liquid alpha the
    rate is ≈ alpha_low = 0.1 (bond 6640 = .1013), without it α_b = 1 − 0.975 (bond 1638 = .0250)."""
    s = scenario("all_validators_switch")
    out = run_variants(s.inputs, [Variant("baseline"), Variant("fixed", {"liquid_alpha_enabled": False})])
    first = out.bonds.filter(pl.col("block") == s.inputs["epochs"]["block"].min())
    for variant, bond in (("baseline", 6640), ("fixed", 1638)):
        assert first.filter(pl.col("variant") == variant)["bond"].to_list() == [bond] * 3


def test_every_catalogue_scenario_runs_under_every_variant():
    for name in CATALOGUE:
        s = scenario(name)
        out = run_variants(s.inputs, VARIANTS)
        assert out.neurons.select("variant", "block").unique().height == len(VARIANTS) * s.inputs["epochs"].height
        table = compare_variants(out.neurons, s.roles)
        assert table["variant"].to_list() == [v.name for v in VARIANTS]
        assert table["incentive_gini"].is_between(0, 1).all()


@pytest.mark.parametrize(("variant", "message"), [
    (lambda: Variant("x", {"kapa": 1}), "variant 'x': unknown hyperparameter 'kapa'"),
    (lambda: Variant("x", {"kappa": 70000}), r"kappa = 70000 is out of range, expected an integer in 0..65535"),
    (lambda: Variant("x", {"bonds_moving_avg": 1_000_001}), "bonds_moving_avg = 1000001 is out of range"),
    (lambda: Variant("x", {"alpha_low": 100}), r"alpha_low = 100 is out of range, expected an integer in 1638"),
    (lambda: Variant("x", {"yuma3_enabled": 1}), "yuma3_enabled = 1, expected true or false"),
    (lambda: Variant("x", {"alpha_low": 20000, "alpha_high": 10000}), "alpha_low 20000 > alpha_high 10000"),
    (lambda: parse_variant("y:kappa=high"), "variant 'y': kappa = 'high' is not an integer"),
    (lambda: run_variants(scenario("weight_copier").inputs, [Variant("a"), Variant("a")]),
     "duplicate variant names: a"),
])
def test_a_bad_variant_is_refused_with_a_clear_error(variant, message):
    with pytest.raises(VariantError, match=message):
        variant()


def test_parse_variant():
    assert parse_variant("classic:yuma3_enabled=false,bonds_penalty=0") == Variant(
        "classic", {"yuma3_enabled": False, "bonds_penalty": 0})


def test_flow_stores_variants_and_returns_the_comparison(sim_warehouse, prefect_api):
    from flows.whatif import whatif_flow

    result = whatif_flow(warehouse=str(sim_warehouse.root), variants=["classic:yuma3_enabled=false"],
                         netuid=NETUID, start_block=EPOCH_BLOCKS[0], end_block=EPOCH_BLOCKS[-1])
    assert result["variants"] == ["baseline", "classic"] and result["epochs"] == len(EPOCH_BLOCKS)
    assert result["comparison"]["variant"].to_list() == ["baseline", "classic"]
    stored = sim_warehouse.read("epoch_results", pl.col("variant") == "classic", netuid=NETUID)
    assert sorted(stored["block"].unique().to_list()) == EPOCH_BLOCKS
    # The stored baseline is the chain's own epoch outputs.
    baseline = sim_warehouse.read("epoch_results", pl.col("variant") == "baseline", netuid=NETUID)
    chain = sim_warehouse.read("neurons", netuid=NETUID).filter(pl.col("block").is_in(EPOCH_BLOCKS))
    assert baseline.select("block", "uid", "dividends").sort("block", "uid").equals(
        chain.select("block", "uid", "dividends").sort("block", "uid"))

    scen = whatif_flow(warehouse=str(sim_warehouse.root), variants=["classic:yuma3_enabled=false"],
                       scenario="weight_copier")
    copier = scen["comparison"]["copier_relative_dividends"].to_list()
    assert copier[0] < 0.7 and len(copier) == 2
    assert set(sim_warehouse.read("epoch_results")["variant"].unique()) == {
        "baseline", "classic", "weight_copier/baseline", "weight_copier/classic"}

    # A catalogue variant by name alone, over the stored history: liquid alpha reading the previous consensus.
    named = whatif_flow(warehouse=str(sim_warehouse.root), variants=["consensus_previous"], netuid=NETUID,
                        start_block=EPOCH_BLOCKS[0], end_block=EPOCH_BLOCKS[-1])
    assert named["variants"] == ["baseline", "consensus_previous"]
    previous = sim_warehouse.read("epoch_results", pl.col("variant") == "consensus_previous", netuid=NETUID)
    assert sorted(previous["block"].unique().to_list()) == EPOCH_BLOCKS
    assert not previous.sort("block", "uid")["dividends"].equals(baseline.sort("block", "uid")["dividends"])


def test_bad_history_is_refused_under_its_own_netuid():
    from tasks.consensus import ConsensusInputError

    inputs = scenario("weight_copier").inputs
    bad = inputs["weights"].with_columns(pl.lit(99, pl.UInt16).alias("miner_uid")).head(1)
    with pytest.raises(ConsensusInputError, match=r"epoch_weights: at \(netuid=1, .*miner_uid 99 is not a neuron"):
        run_variants({**inputs, "weights": pl.concat([inputs["weights"], bad])}, VARIANTS)


def test_consensus_mode_variants_read_the_lanes_own_previous_consensus():
    """The catalogue's consensus-mode variants: the first epoch has nothing stored (the scenario starts a
    subnet), so every mode reads the current consensus and all agree; from the second epoch on, `previous`
    reads the consensus its own lane stored the epoch before, and the lanes part."""
    from tasks.consensus.scenarios import scenario
    from tasks.consensus.whatif import VARIANT_CATALOGUE

    s = scenario("kappa_moves_first")
    variants = [parse_variant(name) for name in ("consensus_current", "consensus_previous", "consensus_max")]
    assert variants[1] == Variant("consensus_previous", VARIANT_CATALOGUE["consensus_previous"])
    assert parse_variant("p:liquid_alpha_consensus_mode=previous") == Variant("p", {"liquid_alpha_consensus_mode": 1})
    out = run_variants(s.inputs, variants).neurons
    first = out["block"].min()

    def dividends(name, early):
        rows = out.filter((pl.col("variant") == name) & ((pl.col("block") == first) == early))
        return rows.sort("block", "uid")["dividends"].to_list()

    assert dividends("consensus_current", True) == dividends("consensus_previous", True) == dividends(
        "consensus_max", True)
    assert dividends("consensus_current", False) != dividends("consensus_previous", False)
    with pytest.raises(VariantError, match="liquid_alpha_consensus_mode = 'median' is not an integer"):
        parse_variant("x:liquid_alpha_consensus_mode=median")
