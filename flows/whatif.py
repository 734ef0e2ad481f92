"""Flow `whatif`: recompute a block range (or a built-in scenario) under hyperparameter variants.

Source: either a subnet's stored snapshots (`netuid`, blocks `start_block..end_block`: every epoch the
chain ran there, i.e. a block b whose snapshot has last_mechanism_step_block = b, recomputed from the
snapshot at b − 1; both snapshots must be stored), or a named scenario of tasks/consensus/scenarios.py.
Every variant (the `baseline`, the source's own parameters, is always included) carries its bonds and
permits forward epoch by epoch (tasks/consensus/whatif.py). Results go to `epoch_results` and
`epoch_result_bonds` under the variant's name (`<scenario>/<variant>` for a scenario); the comparison
table is returned and published as a Prefect table artifact.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.consensus import read_snapshots
from tasks.consensus.inputs import epoch_inputs_from_snapshots
from tasks.consensus.scenarios import scenario as catalogue_scenario
from tasks.consensus.whatif import BASELINE, Variant, VariantError, compare_variants, parse_variant, run_variants
from warehouse import Warehouse

CHAIN_VARIANT = "chain"  # reserved for the exact replay of flows/consensus.py


def with_baseline(variants: list[Variant | str]) -> list[Variant]:
    """Parsed variants, the baseline (no overrides) first; `chain` is reserved for the exact replay."""
    parsed = [v if isinstance(v, Variant) else parse_variant(v) for v in variants]
    for v in parsed:
        if v.name == CHAIN_VARIANT:
            raise VariantError(f"variant name {CHAIN_VARIANT!r} is reserved for the exact replay (flow consensus)")
        if v.name == BASELINE and v.overrides:
            raise VariantError(f"variant {BASELINE!r} is the source's own parameters; it takes no overrides")
    return [Variant(BASELINE)] + [v for v in parsed if v.name != BASELINE]


@task(name="whatif-inputs-from-warehouse", cache_policy=NO_CACHE)
def warehouse_inputs(wh: Warehouse, netuid: int, start_block: int, end_block: int) -> dict[str, pl.DataFrame]:
    """Engine inputs of the epochs the chain ran at blocks start_block..end_block of `netuid`."""
    first = max(start_block, 1) - 1
    snaps = read_snapshots.fn(wh, netuid, first, end_block)
    ran = snaps["subnets"].filter((pl.col("last_mechanism_step_block") == pl.col("block"))
                                  & (pl.col("block") >= start_block)).select("block")
    inputs_at = ran.select(pl.col("block") - 1)
    inputs = epoch_inputs_from_snapshots(*(snaps[n].join(inputs_at, on="block", how="semi")
                                           for n in ("subnets", "neurons", "weights", "bonds")))
    if inputs["epochs"].height == 0:
        raise ValueError(f"the warehouse {wh.root} holds no epoch of netuid {netuid} in blocks {start_block}.."
                         f"{end_block} with its input snapshot (a block b with last_mechanism_step_block = b, "
                         "and the snapshot at b − 1); run `yumaflow backfill` over the range first")
    return inputs


@task(name="run-variants", cache_policy=NO_CACHE)
def recompute_variants(inputs: dict[str, pl.DataFrame], variants: list[Variant]):
    return run_variants(inputs, variants)


@task(name="store-whatif-results", cache_policy=NO_CACHE)
def store(wh: Warehouse, outputs, prefix: str) -> None:
    name = (pl.lit(prefix) + pl.col("variant")).alias("variant")
    neurons = outputs.neurons.with_columns(name)
    scopes = neurons.select("variant", "netuid", "mechid", "block").unique()
    wh.write_many({"epoch_results": neurons, "epoch_result_bonds": outputs.bonds.with_columns(name)},
                  replace={"epoch_result_bonds": scopes})


@flow(name="whatif", log_prints=True)
def whatif_flow(warehouse: str, variants: list[str], netuid: int | None = None, start_block: int | None = None,
                end_block: int | None = None, scenario: str | None = None, epochs: int | None = None,
                copier_uid: int | None = None, tiny_uid: int | None = None) -> dict:
    """Variants (`NAME:key=value,...`, e.g. `classic:yuma3_enabled=false`) of a stored block range of
    `netuid`, or of the catalogue `scenario`; returns {"comparison", "dividends", "epochs", "variants"}."""
    chosen = with_baseline(variants)
    wh = Warehouse(Path(warehouse))
    if scenario is not None:
        if netuid is not None:
            raise ValueError("give either a scenario or a netuid and block range, not both")
        source = catalogue_scenario(scenario, epochs)
        inputs, roles, prefix = source.inputs, source.roles, f"{scenario}/"
    else:
        if netuid is None or start_block is None or end_block is None:
            raise ValueError("a warehouse what-if needs netuid, start_block and end_block (or a scenario)")
        if end_block < start_block:
            raise ValueError(f"end block {end_block} is before start block {start_block}")
        inputs, prefix = warehouse_inputs(wh, netuid, start_block, end_block), ""
        roles = pl.DataFrame([{"netuid": netuid, "uid": uid, "role": role}
                              for role, uid in (("copier", copier_uid), ("tiny", tiny_uid)) if uid is not None],
                             schema={"netuid": pl.UInt16, "uid": pl.UInt16, "role": pl.String})
    outputs = recompute_variants(inputs, chosen)
    store(wh, outputs, prefix)
    comparison = compare_variants(outputs.neurons, roles)
    n_epochs = inputs["epochs"].height
    label = scenario or f"netuid {netuid}, blocks {start_block}..{end_block}"
    create_table_artifact(
        key=f"whatif-{(scenario or f'netuid-{netuid}').replace('_', '-')}",
        table=comparison.to_dicts(),
        description=f"what-if {label}: {n_epochs} epochs × {len(chosen)} variants; incentive Gini and top-3 "
                    "share, relative dividends per unit stake (1 = honest average), validator emission (rao)")
    return {"comparison": comparison, "epochs": n_epochs, "variants": [prefix + v.name for v in chosen],
            "dividends": outputs.neurons.group_by("variant", "netuid", "uid").agg(
                pl.col("validator_emission").sum()).sort("variant", "netuid", "uid")}
