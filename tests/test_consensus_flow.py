"""Flow `consensus` on a real warehouse: snapshots in, epoch_results and a chain parity table out.

The "chain" here is the epoch_logs vector `test_validators_weight_two_distinct_servers`
(yuma_vectors.md §1): its inputs stored as the snapshot at block 0 and its asserted outputs as the
chain's snapshot at block 1, the block the epoch ran in.
"""

from __future__ import annotations

import polars as pl
import pytest

from schemas.chain import NEURONS, SUBNETS, WEIGHTS
from warehouse import Warehouse

M = 65535
CHAIN_OUTPUTS = {  # asserted by the chain's test (yuma_vectors.md §1)
    "consensus": [0, 0, 0, 65535, 0], "validator_trust": [65535, 0, 65535, 0, 0],
    "incentive": [0, 0, 0, 65535, 0], "dividends": [32767, 0, 32767, 0, 0],
    "emission": [250_000_000, 0, 250_000_000, 500_000_000, 0],
}


def subnet(block: int, last_step: int) -> pl.DataFrame:
    return pl.DataFrame([{
        "netuid": 1, "block": block, "subnetwork_n": 5, "tempo": 10, "owner_hotkey": None, "owner_uid": None,
        "kappa": 32767, "bonds_penalty": 65535, "bonds_moving_avg": 900_000, "yuma3_enabled": False,
        "liquid_alpha_enabled": False, "alpha_low": 45875, "alpha_high": 58982, "alpha_sigmoid_steepness": 1000,
        "activity_cutoff": 5000, "activity_cutoff_factor_milli": 13889, "max_allowed_validators": 64,
        "max_allowed_uids": 256, "min_allowed_weights": 1, "max_weight_limit": M, "weights_version": 0,
        "weights_rate_limit": 0, "immunity_period": 0, "commit_reveal_enabled": False,
        "last_mechanism_step_block": last_step, "mechanism_count": 1, "tao_weight": 0, "stake_threshold": 0,
        "pending_emission": 1_000_000_000 if block == 0 else 0,
    }], schema=SUBNETS.polars_schema())


def neurons(block: int, outputs: dict[str, list[int]] | None) -> pl.DataFrame:
    zeros = [0] * 5
    out = outputs or {}
    return pl.DataFrame({
        "netuid": 1, "block": block, "uid": range(5), "hotkey": [f"hot{u}" for u in range(5)],
        "coldkey": [f"cold{u}" for u in range(5)], "alpha_stake": [10**9] * 3 + [0, 0], "tao_stake": zeros,
        "total_stake": [10**9] * 3 + [0, 0], "emission": out.get("emission", zeros),
        "consensus": out.get("consensus", zeros), "incentive": out.get("incentive", zeros),
        "dividends": out.get("dividends", zeros), "validator_trust": out.get("validator_trust", zeros),
        "active": [True] * 5, "validator_permit": [True] * 3 + [False] * 2, "last_update": [1] * 5,
        "block_at_registration": zeros, "axon_ip": None, "axon_port": None, "axon_protocol": None,
        "commit_block": None,
    }, schema=NEURONS.polars_schema())


def weights(block: int) -> pl.DataFrame:
    rows = [(0, 3, M), (0, 4, 0), (1, 3, 0), (1, 4, M), (2, 3, M), (2, 4, 0)]
    return pl.DataFrame([(1, 0, block, v, m, w) for v, m, w in rows], orient="row",
                        schema=WEIGHTS.polars_schema())


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(tmp_path / "wh")
    wh.write_many({"subnets": pl.concat([subnet(0, 0), subnet(1, 1)]),
                   "neurons": pl.concat([neurons(0, None), neurons(1, CHAIN_OUTPUTS)]),
                   "weights": pl.concat([weights(0), weights(1)])})
    return wh


def test_recompute_from_snapshots_matches_the_chain_exactly(warehouse, prefect_api):
    from flows.consensus import consensus_flow

    result = consensus_flow(netuid=1, start_block=1, end_block=1, warehouse=str(warehouse.root))
    assert result["epochs"] == 1 and result["compared_epochs"] == 1
    parity = {row["column"]: row for row in result["parity"].iter_rows(named=True)}
    for column in ("consensus", "validator_trust", "incentive", "dividends", "emission", "active",
                   "validator_permit"):
        assert (parity[column]["equal"], parity[column]["uids"], parity[column]["max_abs_diff"]) == (5, 5, 0)
    stored = warehouse.read("epoch_results").sort("uid")
    assert stored["variant"].unique().to_list() == ["chain"]
    assert stored["block"].unique().to_list() == [1]
    for column, values in CHAIN_OUTPUTS.items():
        assert stored[column].to_list() == values
    assert warehouse.read("epoch_result_bonds").select("validator_uid", "miner_uid", "bond").rows() == [
        (0, 3, M), (2, 3, M)]


def test_parity_names_a_chain_value_that_differs(warehouse, prefect_api):
    from flows.consensus import consensus_flow

    wrong = {**CHAIN_OUTPUTS, "dividends": [32766, 0, 32767, 0, 0]}
    warehouse.write("neurons", neurons(1, wrong))
    result = consensus_flow(netuid=1, start_block=1, end_block=1, warehouse=str(warehouse.root))
    row = result["parity"].filter(pl.col("column") == "dividends").row(0, named=True)
    assert (row["equal"], row["uids"], row["max_abs_diff"]) == (4, 5, 1)


def test_an_empty_range_is_refused_with_the_remedy(tmp_path, prefect_api):
    from flows.consensus import consensus_flow

    with pytest.raises(ValueError, match="holds no snapshot of netuid 7.*yumaflow snapshot"):
        consensus_flow(netuid=7, start_block=10, end_block=20, warehouse=str(tmp_path / "empty"))
