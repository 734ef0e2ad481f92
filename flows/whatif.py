"""Flow `whatif`: recompute a block range (or a built-in scenario) under hyperparameter variants.

Source: either a subnet's stored snapshots (`netuid`, blocks `start_block..end_block`: every epoch the
chain ran there, i.e. a block b whose snapshot has last_mechanism_step_block = b, recomputed from the
snapshot at b − 1; both snapshots must be stored), or a named scenario of tasks/consensus/scenarios.py.
Every variant (the `baseline`, the source's own parameters, is always included) carries its bonds and
permits forward epoch by epoch (tasks/consensus/whatif.py). Results go to `epoch_results` and
`epoch_result_bonds` under the variant's name (`<scenario>/<variant>` for a scenario); the comparison
table is returned and published as a Prefect table artifact.

Chunks: bonds carry forward within a variant, so a variant's block range stays one chain of epochs;
the work is cut by variant (and subnet) instead. The variants are split into as many chunks as the
flow's task runner runs at once (flows/runners.py), or `variants_per_chunk` each; a chunk is one task
that reads its own inputs, replays its variants and writes their rows. Variants batched together or
apart give identical results (tests/test_whatif.py), so the chunking never changes an output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.consensus import read_snapshots
from flows.runners import (
    CHUNK_LOCK_TIMEOUT_S,
    concurrency_limit,
    configured_task_runner,
    runs_in_flow_process,
    submit_windowed,
)
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


def warehouse_inputs(wh: Warehouse, netuid: int, start_block: int, end_block: int) -> dict[str, pl.DataFrame]:
    """Engine inputs of the epochs the chain ran at blocks start_block..end_block of `netuid`."""
    first = max(start_block, 1) - 1
    snaps = read_snapshots(wh, netuid, first, end_block)
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


def store(wh: Warehouse, outputs, prefix: str) -> None:
    name = (pl.lit(prefix) + pl.col("variant")).alias("variant")
    neurons = outputs.neurons.with_columns(name)
    scopes = neurons.select("variant", "netuid", "mechid", "block").unique()
    wh.write_many({"epoch_results": neurons, "epoch_result_bonds": outputs.bonds.with_columns(name)},
                  replace={"epoch_result_bonds": scopes})


@dataclass(frozen=True)
class WhatifSource:
    """Where a chunk reads its history: the stored epochs of `netuid` in start_block..end_block, or the
    catalogue `scenario` (over `epochs` epochs). Plain values, so a chunk can run in any process."""

    warehouse: str
    netuid: int | None = None
    start_block: int | None = None
    end_block: int | None = None
    scenario: str | None = None
    epochs: int | None = None
    prefix: str = ""  # of the stored variant names: "<scenario>/" for a scenario

    def inputs(self, netuid: int) -> dict[str, pl.DataFrame]:
        """The engine inputs of subnet `netuid` of this source."""
        if self.scenario is not None:
            inputs = catalogue_scenario(self.scenario, self.epochs).inputs
            return {name: frame.filter(pl.col("netuid") == netuid) for name, frame in inputs.items()}
        return warehouse_inputs(Warehouse(Path(self.warehouse)), netuid, self.start_block, self.end_block)


@task(name="whatif-chunk", cache_policy=NO_CACHE)
def whatif_chunk(source: WhatifSource, netuid: int, variants: list[Variant], roles: pl.DataFrame) -> dict:
    """Replay `variants` over subnet `netuid` of `source` and store them; the chunk's comparison rows."""
    inputs = source.inputs(netuid)
    outputs = run_variants(inputs, variants)
    store(Warehouse(Path(source.warehouse), lock_timeout_s=CHUNK_LOCK_TIMEOUT_S), outputs, source.prefix)
    return {"epochs": inputs["epochs"].height, "comparison": compare_variants(outputs.neurons, roles),
            "dividends": outputs.neurons.group_by("variant", "netuid", "uid").agg(pl.col("validator_emission").sum())}


@flow(name="whatif", log_prints=True, task_runner=configured_task_runner())
def whatif_flow(warehouse: str, variants: list[str], netuid: int | None = None, start_block: int | None = None,
                end_block: int | None = None, scenario: str | None = None, epochs: int | None = None,
                copier_uid: int | None = None, tiny_uid: int | None = None,
                variants_per_chunk: int | None = None, concurrency: int | None = None) -> dict:
    """Variants (`NAME:key=value,...`, e.g. `classic:yuma3_enabled=false`) of a stored block range of
    `netuid`, or of the catalogue `scenario`; returns {"comparison", "dividends", "epochs", "variants"}.

    Chunks of `variants_per_chunk` variants per subnet (default: on the thread pool all variants in one
    batch per subnet; on Dask, or with `concurrency` given, spread over the chunks run at once).
    """
    chosen = with_baseline(variants)
    if scenario is not None:
        if netuid is not None:
            raise ValueError("give either a scenario or a netuid and block range, not both")
        source_scenario = catalogue_scenario(scenario, epochs)  # built here too: its subnets and roles
        source = WhatifSource(warehouse, scenario=scenario, epochs=epochs, prefix=f"{scenario}/")
        netuids, roles = source_scenario.inputs["epochs"]["netuid"].unique().sort().to_list(), source_scenario.roles
    else:
        if netuid is None or start_block is None or end_block is None:
            raise ValueError("a warehouse what-if needs netuid, start_block and end_block (or a scenario)")
        if end_block < start_block:
            raise ValueError(f"end block {end_block} is before start block {start_block}")
        source = WhatifSource(warehouse, netuid=netuid, start_block=start_block, end_block=end_block)
        netuids = [netuid]
        roles = pl.DataFrame([{"netuid": netuid, "uid": uid, "role": role}
                              for role, uid in (("copier", copier_uid), ("tiny", tiny_uid)) if uid is not None],
                             schema={"netuid": pl.UInt16, "uid": pl.UInt16, "role": pl.String})
    limit = concurrency_limit(concurrency)
    if variants_per_chunk is not None and variants_per_chunk < 1:
        raise ValueError(f"variants_per_chunk must be at least 1, got {variants_per_chunk}")
    if variants_per_chunk is None and concurrency is None and runs_in_flow_process():
        # one process: every variant in one engine batch per subnet (the batched path is the fast one)
        per_chunk = len(chosen)
    else:
        per_chunk = variants_per_chunk or math.ceil(len(chosen) / max(1, limit // len(netuids)))
    groups = [chosen[i:i + per_chunk] for i in range(0, len(chosen), per_chunk)]
    chunks = [(n, group) for n in netuids for group in groups]
    done = list(submit_windowed(chunks, lambda c: whatif_chunk.submit(source, c[0], c[1], roles), limit))
    order = {v.name: i for i, v in enumerate(chosen)}
    rank = pl.col("variant").replace_strict(order, return_dtype=pl.Int64)
    comparison = (pl.concat([r["comparison"] for _c, r in done], how="diagonal")
                  .sort(rank, pl.col("netuid")))
    n_epochs = sum(r["epochs"] for (_n, group), r in done if group is groups[0])
    label = scenario or f"netuid {netuid}, blocks {start_block}..{end_block}"
    create_table_artifact(
        key=f"whatif-{(scenario or f'netuid-{netuid}').replace('_', '-')}",
        table=comparison.to_dicts(),
        description=f"what-if {label}: {n_epochs} epochs × {len(chosen)} variants; incentive Gini and top-3 "
                    "share, relative dividends per unit stake (1 = honest average), validator emission (rao)")
    return {"comparison": comparison, "epochs": n_epochs, "variants": [source.prefix + v.name for v in chosen],
            "dividends": pl.concat([r["dividends"] for _c, r in done]).sort("variant", "netuid", "uid"),
            "chunks": len(chunks)}
