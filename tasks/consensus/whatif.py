"""What-if recomputation: a block range of epochs under other hyperparameters (DESIGN.md §5, §8).

A variant replaces some epoch hyperparameters (yuma_spec.md §7: Yuma3, liquid alpha and its bounds,
bonds penalty, κ, bonds moving average) and replays the epochs in block order as the chain would:
the bonds and validator permits an epoch stores (§2.10.5 / §2.9.6, §2.3) are the inputs of the next
epoch, while stakes, weights, registrations and last_update come from history. So epoch k+1 of a
variant can only run after epoch k; but every (variant, subnet) lane is independent, so each step
runs ONE `run_epochs` batch holding the k-th epoch of every lane. A lane gets a synthetic netuid
(`lane`) for the engine and is unpacked to (variant, netuid) afterwards.

Carry rules (what the chain does between two epochs, tasks/simnet/chain.py `_place_neuron`, spec §6):
a uid re-registered after the previous epoch (block_at_registration ≥ that epoch's block) has its
permit cleared, its own bond row removed and its stored consensus zeroed (`clear_neuron`); every
other uid's stored consensus is the lane's previous output (liquid alpha's "previous"); bonds in a
re-registered miner are masked by the engine itself (§2.8). Permits are carried per mechanism (exact for
the usual single mechanism).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from schemas.consensus import (
    CONSENSUS_MODES,
    EPOCH_BONDS,
    EPOCH_NEURONS,
    EPOCH_RESULT_BONDS,
    EPOCH_RESULTS,
    EPOCH_WEIGHTS,
    EPOCHS,
)
from tasks.consensus.epoch import run_epochs
from tasks.consensus.validate import validate_inputs

KEY = ["netuid", "mechid", "block"]
LANE_KEY = ["lane", "mechid"]
BASELINE = "baseline"

# Hyperparameters a variant may override, with their on-chain ranges (yuma_spec.md §3, §7).
HYPERPARAMETER_RANGES: dict[str, tuple[int, int] | type] = {
    "yuma3_enabled": bool,
    "liquid_alpha_enabled": bool,
    "alpha_low": (1638, 65535),  # setter: AlphaLow ≥ 65535/40
    "alpha_high": (1638, 65535),
    "alpha_sigmoid_steepness": (-32768, 32767),  # i16
    "bonds_penalty": (0, 65535),  # u16 / 65535
    "kappa": (0, 65535),  # u16 / 65535
    "bonds_moving_avg": (0, 1_000_000),  # fraction of 10^6; above it the EMA rate is negative
    # the rules after spec 425 (README "Epoch variants")
    "liquid_alpha_consensus_mode": (0, len(CONSENSUS_MODES) - 1),  # by name: current, previous, auto, max
    "commit_reveal_enabled": bool,
}


class VariantError(ValueError):
    """A what-if variant is malformed; the message names the variant, the hyperparameter and the problem."""


@dataclass(frozen=True)
class Variant:
    """A named set of hyperparameter overrides; no overrides = the history's own parameters."""

    name: str
    overrides: dict[str, int | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise VariantError(f"variant name {self.name!r}: expected a non-empty string")
        for key, value in self.overrides.items():
            allowed = HYPERPARAMETER_RANGES.get(key)
            if allowed is None:
                raise VariantError(f"variant {self.name!r}: unknown hyperparameter {key!r}; known: "
                                   f"{', '.join(HYPERPARAMETER_RANGES)}")
            if allowed is bool:
                if not isinstance(value, bool):
                    raise VariantError(f"variant {self.name!r}: {key} = {value!r}, expected true or false")
                continue
            lo, hi = allowed
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise VariantError(f"variant {self.name!r}: {key} = {value!r} is out of range, expected an "
                                   f"integer in {lo}..{hi}")
        low, high = self.overrides.get("alpha_low"), self.overrides.get("alpha_high")
        if low is not None and high is not None and low > high:
            raise VariantError(f"variant {self.name!r}: alpha_low {low} > alpha_high {high}")

    def apply(self, epochs: pl.DataFrame) -> pl.DataFrame:
        """`epochs` with this variant's overrides (EPOCHS types)."""
        schema = EPOCHS.polars_schema()
        return epochs.with_columns([pl.lit(v).cast(schema[k]).alias(k) for k, v in self.overrides.items()])


# Named variants a user can ask for by name alone (`--variant consensus_previous`): liquid alpha with each
# consensus mode the chain's LiquidAlphaConsensusMode offers (README "Epoch variants"), and classic Yuma.
VARIANT_CATALOGUE: dict[str, dict[str, int | bool]] = {
    **{f"consensus_{mode}": {"yuma3_enabled": True, "liquid_alpha_enabled": True,
                             "liquid_alpha_consensus_mode": code}
       for code, mode in enumerate(CONSENSUS_MODES)},
    "classic": {"yuma3_enabled": False},
}


def parse_variant(text: str) -> Variant:
    """`NAME:key=value,key=value` (e.g. `classic:yuma3_enabled=false,bonds_penalty=0`) → Variant; a bare
    NAME of VARIANT_CATALOGUE is that variant. liquid_alpha_consensus_mode takes a mode name."""
    name, colon, spec = text.partition(":")
    if not colon and name.strip() in VARIANT_CATALOGUE:
        return Variant(name.strip(), dict(VARIANT_CATALOGUE[name.strip()]))
    overrides: dict[str, int | bool] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, raw = item.partition("=")
        if not sep:
            raise VariantError(f"variant {name!r}: {item!r} is not key=value")
        low = raw.strip().lower()
        if low in ("true", "false"):
            overrides[key.strip()] = low == "true"
        elif key.strip() == "liquid_alpha_consensus_mode" and low in CONSENSUS_MODES:
            overrides[key.strip()] = CONSENSUS_MODES.index(low)
        else:
            try:
                overrides[key.strip()] = int(raw)
            except ValueError:
                raise VariantError(f"variant {name!r}: {key.strip()} = {raw!r} is not an integer or "
                                   "true/false") from None
    return Variant(name.strip(), overrides)


def _check_variants(variants: list[Variant]) -> None:
    if not variants:
        raise VariantError("no variants given")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise VariantError(f"duplicate variant names: {', '.join(duplicates)}")


class WhatIfOutputs:
    """neurons: EPOCH_RESULTS rows (one per variant, netuid, mechid, block, uid); bonds: EPOCH_RESULT_BONDS
    rows (one per variant and new nonzero bond edge)."""

    def __init__(self, neurons: pl.DataFrame, bonds: pl.DataFrame):
        self.neurons = neurons
        self.bonds = bonds


def run_variants(epoch_inputs: dict[str, pl.DataFrame], variants: list[Variant]) -> WhatIfOutputs:
    """Replay every epoch of `epoch_inputs` (the engine's four tables: "epochs", "neurons", "weights",
    "bonds", any subnets and mechanisms, each lane's epochs in block order) under each variant.

    The first epoch of each (netuid, mechid) starts from its stored bonds and permits; later epochs use
    the variant's own outputs of the epoch before. One engine batch per step holds all lanes.
    """
    _check_variants(variants)
    # The history is checked once under its own keys, so an error names the real netuid, not a lane.
    epochs, neurons, weights, bonds = validate_inputs(
        *(epoch_inputs[name] for name in ("epochs", "neurons", "weights", "bonds")))
    epochs = epochs.sort(KEY)

    subnets = epochs.select("netuid").unique().sort("netuid").with_row_index("subnet_rank")
    lanes = (pl.DataFrame({"variant": [v.name for v in variants]}).with_row_index("variant_rank")
             .join(subnets, how="cross")
             .with_columns((pl.col("variant_rank") * subnets.height + pl.col("subnet_rank")).alias("lane"))
             .select("variant", "netuid", "lane"))
    if lanes.height > 1 << 16:
        raise VariantError(f"{len(variants)} variants × {subnets.height} subnets = {lanes.height} lanes; at most "
                           "65536 fit one batch (the engine's netuid is u16)")

    steps = epochs.with_columns(pl.col("block").rank("ordinal").over("netuid", "mechid").cast(pl.Int64).alias("step")
                                - 1)
    # Each variant's epochs: the history's parameters with its overrides (a loop over the few variants).
    lane_epochs = pl.concat([
        v.apply(steps.join(lanes.filter(pl.col("variant") == v.name), on="netuid")) for v in variants])
    as_lane = [pl.col("lane").cast(pl.UInt16).alias("netuid")]

    def on_lanes(frame: pl.DataFrame, table) -> pl.DataFrame:
        """History rows of the epochs of one step, repeated for every lane, keyed by lane. Lane-major
        order keeps each epoch's rows one sorted run, the layout the engine indexes without sorting."""
        return (lanes.sort("lane").join(frame, on="netuid", maintain_order="left_right")
                .with_columns(as_lane).select(table.columns))

    step_of = steps.select(*KEY, "step")

    def by_step(frame: pl.DataFrame) -> tuple[dict[int, pl.DataFrame], pl.DataFrame]:
        """Rows per step, split once rather than filtered again at every step (order kept), and the
        empty frame for a step without rows."""
        rows = frame.join(step_of, on=KEY, maintain_order="left")
        return {key[0]: part for key, part in rows.partition_by("step", as_dict=True).items()}, rows.head(0)

    (neurons, _), (weights, no_weights), (bonds, no_bonds) = (by_step(f) for f in (neurons, weights, bonds))
    results, result_bonds = [], []
    carried_bonds = carried_permits = previous_block = None
    for step in range(int(steps["step"].max()) + 1):  # inherent: epoch k+1 needs the bonds of epoch k
        step_epochs = lane_epochs.filter(pl.col("step") == step)
        step_neurons = on_lanes(neurons[step], EPOCH_NEURONS)
        step_weights = on_lanes(weights.get(step, no_weights), EPOCH_WEIGHTS)
        if step == 0:
            step_bonds = on_lanes(bonds.get(step, no_bonds), EPOCH_BONDS)
        else:
            step_neurons, step_bonds = _carry(step_epochs, step_neurons, carried_bonds, carried_permits,
                                              previous_block)
        engine_epochs = step_epochs.with_columns(as_lane).select(EPOCHS.columns)
        out = run_epochs(engine_epochs, step_neurons, step_weights, step_bonds)
        results.append(out.neurons)
        result_bonds.append(out.bonds)
        carried_bonds = out.bonds
        carried_permits = out.neurons.select("netuid", "mechid", "uid", "validator_permit", "consensus")
        previous_block = step_epochs.select(pl.col("lane").cast(pl.UInt16).alias("netuid"), "mechid",
                                            pl.col("block").alias("previous_block"))
        # A lane whose subnet has fewer epochs simply has no row at later steps.
    return WhatIfOutputs(_unpack(pl.concat(results), lanes, EPOCH_RESULTS),
                         _unpack(pl.concat(result_bonds), lanes, EPOCH_RESULT_BONDS))


def _carry(step_epochs: pl.DataFrame, step_neurons: pl.DataFrame, carried_bonds: pl.DataFrame,
           carried_permits: pl.DataFrame, previous_block: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """This step's neurons with the permits, and its bonds, left by the lane's previous epoch."""
    block_now = step_epochs.select(pl.col("lane").cast(pl.UInt16).alias("netuid"), "mechid", "block")
    lane_mech = ["netuid", "mechid"]
    reregistered = pl.col("block_at_registration") >= pl.col("previous_block")
    neurons = (step_neurons.join(previous_block, on=lane_mech, how="left", maintain_order="left")
               .join(carried_permits.rename({"validator_permit": "carried"}), on=[*lane_mech, "uid"], how="left",
                     maintain_order="left")
               .with_columns(pl.when(reregistered).then(False).otherwise(pl.col("carried").fill_null(False))
                             .alias("validator_permit"),
                             # the Consensus the lane's previous epoch stored is this one's "previous"
                             pl.when(reregistered).then(0).otherwise(pl.col("consensus"))
                             .cast(pl.UInt16).alias("previous_consensus"))
               .select(EPOCH_NEURONS.columns))
    fresh = neurons.select(*lane_mech, pl.col("uid").alias("validator_uid"), "block_at_registration")
    n = neurons.group_by(lane_mech).agg(pl.len().alias("n"))
    bonds = (carried_bonds.drop("block").join(block_now, on=lane_mech, maintain_order="left")
             .join(previous_block, on=lane_mech, maintain_order="left")
             .join(fresh, on=[*lane_mech, "validator_uid"], how="left", maintain_order="left")
             .join(n, on=lane_mech, maintain_order="left")
             .filter(~(pl.col("block_at_registration") >= pl.col("previous_block")).fill_null(False)
                     & (pl.col("validator_uid").cast(pl.Int64) < pl.col("n"))
                     & (pl.col("miner_uid").cast(pl.Int64) < pl.col("n")))
             .select(EPOCH_BONDS.columns))
    return neurons, bonds


def _unpack(frame: pl.DataFrame, lanes: pl.DataFrame, table) -> pl.DataFrame:
    """Engine rows keyed by lane → rows keyed by (variant, netuid)."""
    return (frame.rename({"netuid": "lane"}).with_columns(pl.col("lane").cast(pl.UInt32))
            .join(lanes, on="lane").select(table.columns))


# ---------------------------------------------------------------- comparison metrics

def gini(x: pl.Expr) -> pl.Expr:
    """Gini coefficient of a group's values (0 = equal, → 1 = one holds all); null if the sum is 0."""
    ordered = x.cast(pl.Float64).sort()
    n = pl.len().cast(pl.Float64)
    rank = pl.int_range(1, pl.len() + 1).cast(pl.Float64)
    total = ordered.sum()
    return pl.when(total > 0).then(((2 * rank - n - 1) * ordered).sum() / (n * total)).otherwise(None)


def top_share(x: pl.Expr, k: int) -> pl.Expr:
    total = x.cast(pl.Float64).sum()
    return pl.when(total > 0).then(x.cast(pl.Float64).sort(descending=True).head(k).sum() / total).otherwise(None)


def validator_dividends(results: pl.DataFrame) -> pl.DataFrame:
    """One row per (variant, netuid, uid) of a validator (a permit or dividends in the range): its total
    validator emission (rao), mean dividends (u16) and dividends per unit stake (Σ dividends / Σ stake
    weight, both u16, over the epochs)."""
    per_uid = results.group_by("variant", "netuid", "uid").agg(
        pl.col("validator_emission").sum().alias("validator_emission_rao"),
        pl.col("dividends").cast(pl.Float64).mean().alias("mean_dividends_u16"),
        (pl.col("dividends").cast(pl.Float64).sum() / pl.col("stake_weight").cast(pl.Float64).sum())
        .alias("dividends_per_stake"),
        (pl.col("validator_permit").any() | (pl.col("dividends") > 0).any()).alias("is_validator"))
    return per_uid.filter("is_validator").drop("is_validator").sort("variant", "netuid", "uid")


def relative_dividends(results: pl.DataFrame, roles: pl.DataFrame) -> pl.DataFrame:
    """One row per (variant, netuid, role): the role's dividends per unit stake over the honest validators'
    average (1 = paid like an honest validator). `roles` has netuid, uid, role; honest = every other
    validator with stake."""
    per_uid = validator_dividends(results).join(roles.select(pl.col("netuid").cast(pl.UInt16),
                                                             pl.col("uid").cast(pl.UInt16), "role"),
                                                on=["netuid", "uid"], how="left")
    honest = (per_uid.filter(pl.col("role").is_null() & pl.col("dividends_per_stake").is_finite())
              .group_by("variant", "netuid").agg(pl.col("dividends_per_stake").mean().alias("honest")))
    return (per_uid.filter(pl.col("role").is_not_null()).join(honest, on=["variant", "netuid"], how="left")
            .select("variant", "netuid", "role", "uid",
                    pl.when(pl.col("honest") > 0).then(pl.col("dividends_per_stake") / pl.col("honest"))
                    .alias("relative_dividends"))
            .sort("variant", "netuid", "role"))


def compare_variants(results: pl.DataFrame, roles: pl.DataFrame | None = None, top_k: int = 3) -> pl.DataFrame:
    """One row per (variant, netuid): incentive concentration over the range (Gini and top-k share of each
    uid's summed incentive), each role's relative dividends (a `<role>_relative_dividends` column, null
    where not defined) and `validator_emission_rao` as {uid: rao} text per validator."""
    per_uid = results.group_by("variant", "netuid", "uid").agg(pl.col("incentive").cast(pl.UInt64).sum())
    table = per_uid.group_by("variant", "netuid").agg(
        gini(pl.col("incentive")).alias("incentive_gini"),
        top_share(pl.col("incentive"), top_k).alias(f"top{top_k}_incentive_share"))
    paid = validator_dividends(results).group_by("variant", "netuid").agg(
        pl.format("{}:{}", "uid", "validator_emission_rao").str.join(" ").alias("validator_emission_rao"))
    table = table.join(paid, on=["variant", "netuid"], how="left")
    if roles is not None and roles.height:
        relative = (relative_dividends(results, roles)
                    .with_columns((pl.col("role") + "_relative_dividends").alias("column"))
                    .pivot(on="column", index=["variant", "netuid"], values="relative_dividends"))
        table = table.join(relative, on=["variant", "netuid"], how="left")
    order = {name: i for i, name in enumerate(results["variant"].unique(maintain_order=True))}
    return (table.with_columns(pl.col("variant").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
            .sort("_order", "netuid").drop("_order"))
