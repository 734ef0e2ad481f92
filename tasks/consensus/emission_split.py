"""The alpha emission split around the epoch, in exact integers (yuma_spec.md §5.1, §5.2.1, §5.3).

Three steps, each a columnar Polars transform:

1. `alpha_block_split`: per block, the subnet's alpha emission is split into owner cut, server
   (miner), validator and root alpha, accumulated into the chain's Pending* counters (§5.1 steps 3–6).
   `epoch_pending_emission` sums those counters over the blocks an epoch drains (§5.2.1).
2. `split_mechanism_emission`: the epoch emission E is split over the subnet's mechanisms (§5.3).
3. `aggregate_mechanisms`: the per-mechanism epoch outputs are folded into netuid-level values with
   the emission weights ω_k = E_k/E (§5.3).

Fixed point (spec §1) is emulated on integer "bits": a U96F32 value x is X = x·2^32 and a U64F64
value is X = x·2^64, held in Polars Int128 columns. Every product is floored and every quotient is
truncated exactly as substrate-fixed does; intermediate products are split into halves wherever they
could pass 2^127. No floats are used except the `*_float` derived views.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from schemas import SchemaError, validate_frame
from schemas.consensus import EPOCH_NEURONS_OUT

U16_MAX = 65535
U64_MAX = 2**64 - 1
TOTAL_SUPPLY_RAO = 21_000_000_000_000_000          # TotalSupply: 21M TAO, also caps alpha issuance
DEFAULT_BLOCK_EMISSION_RAO = 1_000_000_000          # DefaultBlockEmission: 1 alpha per block
MAX_MECHANISMS = 16                                 # MAX_MECHANISM_COUNT_PER_SUBNET (hard cap)

_F32 = 2**32   # one in U96F32 bits
_F64 = 2**64   # one in U64F64 bits


def _int(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.Int128)


def _wide(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int128)


def _floor_mul_shift(x: pl.Expr, y: pl.Expr, shift_bits: int) -> pl.Expr:
    """⌊x·y / 2^shift⌋ for 0 ≤ x ≤ 2^64 and 0 ≤ y ≤ 2^shift ≤ 2^64, without passing 2^127.

    x is split as x_hi·2^32 + x_lo; then x·y/2^s = (x_hi·y)·2^32/2^s + x_lo·y/2^s, and the carry of
    the high part's low bits is folded into the low part before the final floor.
    """
    half = _F32
    x_hi, x_lo = x // half, x % half
    a, b = x_hi * y, x_lo * y                    # each ≤ 2^96
    if shift_bits <= 32:
        return a * _int(2 ** (32 - shift_bits)) + b // _int(2**shift_bits)
    s = 2 ** (shift_bits - 32)
    return a // _int(s) + ((a % _int(s)) * half + b) // _int(2**shift_bits)


def _floor_ratio(num: pl.Expr, den: pl.Expr, frac_bits: int) -> pl.Expr:
    """⌊num·2^frac / den⌋ for 0 ≤ num ≤ den < 2^96 (a proportion in fixed point), 0 when den = 0.

    Two-stage long division keeps every intermediate below 2^(96 + frac/2).
    """
    half = _int(2 ** (frac_bits // 2))
    q1 = (num * half) // den
    r1 = (num * half) % den
    q2 = (r1 * half) // den
    return pl.when(den == 0).then(_int(0)).otherwise(q1 * half + q2)


def _require(frame: pl.DataFrame, table: str, columns: dict[str, pl.DataType],
             optional: dict[str, pl.DataType] | None = None) -> None:
    """Check names and exact types; no silent casts (a Float64 stake is an error, not a rounding)."""
    for col in columns:
        if col not in frame.columns:
            raise SchemaError(f"{table}: missing column {col!r}; expected columns {', '.join(columns)}")
    for col, dtype in {**columns, **(optional or {})}.items():
        if col in frame.columns and frame.schema[col] != dtype:
            raise SchemaError(f"{table}: column {col!r} has type {frame.schema[col]}, expected {dtype}")
        if col in frame.columns and col in columns and frame[col].null_count():
            raise SchemaError(f"{table}: column {col!r} has {frame[col].null_count()} null value(s)")


def _check_unique(frame: pl.DataFrame, table: str, key: Sequence[str]) -> None:
    dup = frame.group_by(list(key)).len().filter(pl.col("len") > 1)
    if dup.height:
        row = dup.row(0, named=True)
        raise SchemaError(f"{table}: duplicate key {({k: row[k] for k in key})} ({row['len']} rows); "
                          f"one row per ({', '.join(key)}) expected")


# ------------------------------------------------------------------------------------------------
# §5.1 step 3: alpha emission per block (the halving schedule applied to the subnet's alpha issuance)
# ------------------------------------------------------------------------------------------------

def _halving_thresholds() -> list[int]:
    """Issuance (rao) at which the alpha block emission halves for the k-th time, k = 1, 2, ….

    `get_block_emission_for_issuance` computes, in I96F32, q = I/(2·10.5e15) (bits ⌊I·2^32/2.1e16⌋),
    y = 1/(1 − q) (bits Y = ⌊2^64/(2^32 − q_bits)⌋), k = ⌊log2 y⌋ and emission ⌊1e9/2^k⌋.
    substrate-fixed's log2 counts halvings with *rounding* right shifts while x ≥ 2, so after m
    halvings x = ⌈Y/2^m⌉ and k ≥ j ⇔ Y > (2^33 − 1)·2^(j−1). Solving that for the issuance gives one
    exact integer threshold per j; k is then the number of thresholds the issuance has reached.
    """
    thresholds = []
    for j in range(1, 64):
        m = (2**33 - 1) * 2 ** (j - 1) + 1            # Y ≥ m
        max_den = 2**64 // m                           # 2^32 − q_bits ≤ max_den
        min_q = _F32 - max_den                         # q_bits ≥ min_q
        if max_den < 1:
            break
        issuance = -((-min_q * 2 * 10_500_000_000_000_000) // _F32)   # ⌈min_q·2.1e16/2^32⌉
        if issuance >= TOTAL_SUPPLY_RAO:
            break
        thresholds.append(issuance)
    return thresholds


HALVING_ISSUANCE_THRESHOLDS_RAO: list[int] = _halving_thresholds()


def alpha_emission_for_issuance(alpha_issuance: pl.Expr) -> pl.Expr:
    """Alpha block emission in rao for an issuance column (spec §5.1 steps 1 and 3), exact.

    10^9 rao halved once per threshold reached (10.5M, 15.75M, … alpha); 0 at or above TotalSupply.
    """
    issuance = alpha_issuance.cast(pl.Int128)
    halvings = pl.sum_horizontal([(issuance >= t).cast(pl.Int64) for t in HALVING_ISSUANCE_THRESHOLDS_RAO])
    emission = pl.lit(DEFAULT_BLOCK_EMISSION_RAO, dtype=pl.Int64) // (pl.lit(2, dtype=pl.Int64).pow(halvings))
    return (pl.when(issuance >= TOTAL_SUPPLY_RAO).then(pl.lit(0, dtype=pl.Int64)).otherwise(emission)
            .cast(pl.UInt64))


# ------------------------------------------------------------------------------------------------
# §5.1 steps 4–6: owner cut, root proportion and the server / validator / root split of one block
# ------------------------------------------------------------------------------------------------

BLOCK_SPLIT_INPUT = {
    "netuid": pl.UInt16, "block": pl.UInt64,
    "root_tao": pl.UInt64,            # SubnetTAO of the root subnet (rao)
    "tao_weight": pl.UInt64,          # global TaoWeight, raw u64 (÷ 2^64 − 1)
    "subnet_owner_cut": pl.UInt16,    # global SubnetOwnerCut (÷ 65535)
    "owner_cut_enabled": pl.Boolean,  # OwnerCutEnabled of the subnet
    "root_sell_flag": pl.Boolean,     # Σ EMA prices of emitting subnets > 1 (network-wide, per block)
}
BLOCK_SPLIT_OPTIONAL = {
    "alpha_issuance": pl.UInt64,     # SubnetAlphaIn + SubnetAlphaOut before the block's emission
    "alpha_out": pl.UInt64,          # the block's alpha emission, if known (overrides the halving)
    "root_proportion_alpha_issuance": pl.UInt64,  # issuance read by root_proportion (default alpha_issuance)
}


def alpha_block_split(blocks: pl.DataFrame) -> pl.DataFrame:
    """Split each block's alpha emission as `emit_to_subnets` does (spec §5.1 steps 3–6).

    Row grain, in and out: one row per (netuid, block) of a subnet's block history.

    Inputs (types exact, see BLOCK_SPLIT_INPUT / BLOCK_SPLIT_OPTIONAL): `root_tao`, `tao_weight`,
    `subnet_owner_cut`, `owner_cut_enabled`, `root_sell_flag`, and either `alpha_out` (the block's
    alpha emission, SubnetAlphaOutEmission) or `alpha_issuance` (from which the halving schedule
    derives it). The root proportion reads the subnet's issuance *after* this block's pool injection
    and alpha mint on chain; pass that as `root_proportion_alpha_issuance` for exact results. Without
    it `alpha_issuance` is used, and rp is off by about (alpha minted this block)/(issuance),
    relative, which can move the floored rao by one or more.

    Outputs, all rao (UInt64) unless noted:
    - `alpha_out`: the block's alpha emission before the owner cut;
    - `owner_cut`: ⌊alpha_out·cut⌋ added to PendingOwnerCut, cut = SubnetOwnerCut/65535 in U96F32;
    - `root_proportion_bits` (UInt64, U96F32 bits) and `root_proportion_float` (derived view):
      rp = (root_tao·tw)/(root_tao·tw + issuance), 0 when the denominator is 0 (so 0 when tw = 0);
    - `pending_server` = ⌊0.5·A⌋, `pending_validator` = ⌊(A − 0.5·A) − rp·A·0.5⌋ (saturating at 0),
      where A = alpha_out − cut in U96F32;
    - `pending_root_alpha` = ⌊rp·A·0.5⌋ if `root_sell_flag`, else 0, in which case the same amount is
      reported as `recycled_root_alpha`.
    """
    table = "alpha_block_split input"
    _require(blocks, table, BLOCK_SPLIT_INPUT, BLOCK_SPLIT_OPTIONAL)
    if "alpha_out" not in blocks.columns and "alpha_issuance" not in blocks.columns:
        raise SchemaError(f"{table}: needs column 'alpha_out' (the block's alpha emission) or "
                          "'alpha_issuance' (to derive it by the halving schedule)")
    rp_issuance_col = next((c for c in ("root_proportion_alpha_issuance", "alpha_issuance")
                            if c in blocks.columns), None)
    if rp_issuance_col is None:
        raise SchemaError(f"{table}: the root proportion needs 'alpha_issuance' or "
                          "'root_proportion_alpha_issuance'")
    for col in ("alpha_out", "alpha_issuance", rp_issuance_col):
        if col in blocks.columns and blocks[col].null_count():
            raise SchemaError(f"{table}: column {col!r} has {blocks[col].null_count()} null value(s)")
    _check_unique(blocks, table, ("netuid", "block"))

    alpha_out = (pl.col("alpha_out") if "alpha_out" in blocks.columns
                 else alpha_emission_for_issuance(pl.col("alpha_issuance")))
    # U96F32 constants: cut = SubnetOwnerCut ⊘ 65535, tw = TaoWeight ⊘ (2^64 − 1).
    cut_bits = pl.when(pl.col("owner_cut_enabled")).then(
        (_wide("subnet_owner_cut") * _F32) // U16_MAX).otherwise(_int(0))
    tw_bits = (_wide("tao_weight") * _F32) // U64_MAX
    # root_tao ⊗ tw: an integer times a fixed value, so the product is exact (no fractional loss).
    weighted_root_bits = _wide("root_tao") * tw_bits
    issuance_bits = _wide(rp_issuance_col) * _F32

    out = blocks.with_columns(alpha_out.cast(pl.UInt64).alias("alpha_out")).with_columns(
        owner_cut_bits=_wide("alpha_out") * cut_bits,                     # alpha_out ⊗ cut, exact
        root_proportion_bits=_floor_ratio(weighted_root_bits, weighted_root_bits + issuance_bits, 32),
    ).with_columns(
        remaining_bits=_wide("alpha_out") * _F32 - pl.col("owner_cut_bits"),
    ).with_columns(
        # rp ⊗ A floored at 32 fractional bits, then ⊗ 0.5 (bits 2^31) floored again.
        root_alpha_bits=_floor_mul_shift(pl.col("remaining_bits"), pl.col("root_proportion_bits"), 32) // 2,
        server_bits=pl.col("remaining_bits") // 2,
    ).with_columns(
        validator_bits=(pl.col("remaining_bits") - pl.col("server_bits") - pl.col("root_alpha_bits"))
        .clip(lower_bound=0),
    )

    def to_rao(bits: str) -> pl.Expr:
        return (pl.col(bits) // _F32).cast(pl.UInt64)

    return out.select(
        *[c for c in blocks.columns if c != "alpha_out"],
        "alpha_out",
        to_rao("owner_cut_bits").alias("owner_cut"),
        pl.col("root_proportion_bits").cast(pl.UInt64),
        (pl.col("root_proportion_bits").cast(pl.Float64) / _F32).alias("root_proportion_float"),
        to_rao("server_bits").alias("pending_server"),
        to_rao("validator_bits").alias("pending_validator"),
        pl.when(pl.col("root_sell_flag")).then(to_rao("root_alpha_bits")).otherwise(pl.lit(0, pl.UInt64))
        .alias("pending_root_alpha"),
        pl.when(pl.col("root_sell_flag")).then(pl.lit(0, pl.UInt64)).otherwise(to_rao("root_alpha_bits"))
        .alias("recycled_root_alpha"),
    )


# ------------------------------------------------------------------------------------------------
# §5.2.1: what the epoch drains
# ------------------------------------------------------------------------------------------------

PENDING_COLUMNS = ("pending_server", "pending_validator", "pending_root_alpha", "owner_cut")


def epoch_pending_emission(block_split: pl.DataFrame, epoch_blocks: pl.DataFrame) -> pl.DataFrame:
    """Sum the per-block Pending* counters over the blocks each epoch drains (spec §5.2.1).

    Row grain of the output: one row per (netuid, block) of `epoch_blocks`, where `block` is the
    block at which the epoch ran (drain happens after that block's own emission, so the window is
    (previous epoch block, block]). `block_split` is `alpha_block_split`'s output.

    Output columns: `first_block`, `blocks` (count of block rows summed), the four pending sums in rao,
    `epoch_emission` = server + validator + root alpha (the E the epoch runs on; the owner cut is
    excluded), and `complete`: the window holds every block from the previous epoch block + 1 to
    `block` (false for each subnet's first listed epoch, whose window start is unknown, and where the
    history has gaps). Blocks after the last listed epoch are still pending and are not reported.
    """
    _require(epoch_blocks, "epoch_blocks", {"netuid": pl.UInt16, "block": pl.UInt64})
    _require(block_split, "block split", {"netuid": pl.UInt16, "block": pl.UInt64,
                                          **{c: pl.UInt64 for c in PENDING_COLUMNS}})
    _check_unique(epoch_blocks, "epoch_blocks", ("netuid", "block"))
    epochs = (epoch_blocks.select("netuid", "block").sort("netuid", "block")
              .with_columns(previous_epoch_block=pl.col("block").shift(1).over("netuid"),
                            epoch_block=pl.col("block")))
    assigned = (block_split.select("netuid", "block", *PENDING_COLUMNS).sort("netuid", "block")
                .join_asof(epochs.select("netuid", "block", "epoch_block").sort("netuid", "block"),
                           on="block", by="netuid", strategy="forward", check_sortedness=False)
                .drop_nulls("epoch_block"))
    sums = assigned.group_by("netuid", "epoch_block").agg(
        # Sums in Int128 so that a u64 overflow cannot wrap; the chain's counters saturate.
        *[_wide(c).sum().clip(upper_bound=U64_MAX).cast(pl.UInt64) for c in PENDING_COLUMNS],
        pl.col("block").min().alias("first_block"), pl.len().cast(pl.UInt64).alias("blocks"),
    )
    out = epochs.join(sums, on=["netuid", "epoch_block"], how="left").with_columns(
        pl.col("blocks").fill_null(0), *[pl.col(c).fill_null(0) for c in PENDING_COLUMNS],
    ).with_columns(
        epoch_emission=(_wide("pending_server") + _wide("pending_validator") + _wide("pending_root_alpha"))
        .clip(upper_bound=U64_MAX).cast(pl.UInt64),
        complete=(pl.col("previous_epoch_block").is_not_null()
                  & (pl.col("first_block") == pl.col("previous_epoch_block") + 1)
                  & (pl.col("blocks") == pl.col("block") - pl.col("previous_epoch_block"))).fill_null(False),
    )
    return out.select("netuid", "block", "first_block", "blocks", *PENDING_COLUMNS, "epoch_emission",
                      "complete").sort("netuid", "block")


# ------------------------------------------------------------------------------------------------
# §5.3: mechanisms (sub-subnets)
# ------------------------------------------------------------------------------------------------

def split_mechanism_emission(epoch_emission: pl.DataFrame) -> pl.DataFrame:
    """Split each epoch's emission E over the subnet's mechanisms (spec §5.3, `split_emissions`).

    Input grain: one row per (netuid, block) epoch with `emission` (UInt64 rao, E), `mechanism_count`
    (UInt8, 1..16) and optionally `mechanism_emission_split` (List[UInt16], MechanismEmissionSplit;
    null or absent = even split).
    Output grain: one row per (netuid, mechid, block) with `emission` = E_k in rao, the value the
    EPOCHS table's `emission` column takes for that mechanism.

    E_k = ⌊E·s_k/65535⌋ (k beyond the split's length gets 0; a longer split is cut to the count, as
    the chain's `resize` does), or ⌊E/M⌋ without a split; the rounding remainder
    E − ΣE_k (saturating at 0) goes to mechanism 0.
    """
    table = "split_mechanism_emission input"
    _require(epoch_emission, table, {"netuid": pl.UInt16, "block": pl.UInt64, "emission": pl.UInt64,
                                     "mechanism_count": pl.UInt8},
             {"mechanism_emission_split": pl.List(pl.UInt16)})
    _check_unique(epoch_emission, table, ("netuid", "block"))
    count = pl.col("mechanism_count")
    bad = epoch_emission.filter((count < 1) | (count > MAX_MECHANISMS))
    if bad.height:
        row = bad.row(0, named=True)
        key = {"netuid": row["netuid"], "block": row["block"]}
        raise SchemaError(f"{table}: mechanism_count {row['mechanism_count']} out of range "
                          f"[1, {MAX_MECHANISMS}] at key {key}")
    frame = epoch_emission
    if "mechanism_emission_split" not in frame.columns:
        frame = frame.with_columns(mechanism_emission_split=pl.lit(None, dtype=pl.List(pl.UInt16)))
    per_mechanism = (
        frame.select("netuid", "block", "emission", "mechanism_count", "mechanism_emission_split")
        .with_columns(mechid=pl.int_ranges(0, pl.col("mechanism_count"), dtype=pl.UInt8))
        .explode("mechid")
        .with_columns(
            share=pl.col("mechanism_emission_split").list.get(pl.col("mechid").cast(pl.Int64),
                                                              null_on_oob=True),
        ).with_columns(
            emission_k=pl.when(pl.col("mechanism_emission_split").is_null())
            .then(_wide("emission") // _wide("mechanism_count"))
            .otherwise(_wide("emission") * _wide("share").fill_null(0) // U16_MAX),
        ).with_columns(
            remainder=(_wide("emission") - pl.col("emission_k").sum().over("netuid", "block"))
            .clip(lower_bound=0),
        )
    )
    return per_mechanism.select(
        "netuid", "mechid", "block",
        pl.when(pl.col("mechid") == 0).then(pl.col("emission_k") + pl.col("remainder"))
        .otherwise(pl.col("emission_k")).clip(upper_bound=U64_MAX).cast(pl.UInt64).alias("emission"),
    ).sort("netuid", "block", "mechid")


def mechanism_emission_weights(mechanism_emission: pl.DataFrame) -> pl.DataFrame:
    """ω_k = E_k/E in U64F64 bits, E = Σ_k E_k (spec §5.3); mechanism 0 gets 1 when E = 0.

    Grain: one row per (netuid, mechid, block); input columns netuid, mechid, block, emission (E_k).
    """
    total = _wide("emission").sum().over("netuid", "block")
    return mechanism_emission.select(
        "netuid", "mechid", "block",
        pl.when(total == 0).then(pl.when(pl.col("mechid") == 0).then(_int(_F64)).otherwise(_int(0)))
        .otherwise(_floor_ratio(_wide("emission"), total, 64)).alias("weight_bits"),
    )


U16_TERMS = ("stake_weight", "consensus", "dividends", "validator_trust")


def aggregate_mechanisms(neurons_out: pl.DataFrame | Sequence[pl.DataFrame],
                         mechanism_emission: pl.DataFrame) -> pl.DataFrame:
    """Fold per-mechanism epoch outputs into the netuid-level values the chain stores (spec §5.3).

    `neurons_out`: the engine's EPOCH_NEURONS_OUT rows (one frame with a `mechid` column, or a list of
    frames, one per mechanism). `mechanism_emission`: E_k per (netuid, mechid, block), e.g. the
    EPOCHS table or `split_mechanism_emission`'s output.

    Output grain: one row per (netuid, block, uid). `server_emission` and `validator_emission` are
    summed (saturating). StakeWeight, Consensus, Dividends, ValidatorTrust (u16) and Emission (rao)
    are accumulated over mechanisms in order as ⌊prev + value·ω_k⌋; as prev is an integer this is
    Σ_k ⌊value_k·ω_k⌋, saturated at the type's maximum. Active and ValidatorPermit are OR-ed.
    Incentive is not aggregated: the chain stores it per mechanism.
    """
    frames = [neurons_out] if isinstance(neurons_out, pl.DataFrame) else list(neurons_out)
    if not frames:
        raise SchemaError("aggregate_mechanisms: no epoch_neurons_out frames given")
    neurons = validate_frame(pl.concat(frames, how="vertical"), EPOCH_NEURONS_OUT,
                             where="aggregate_mechanisms")
    _require(mechanism_emission, "mechanism emission", {"netuid": pl.UInt16, "mechid": pl.UInt8,
                                                        "block": pl.UInt64, "emission": pl.UInt64})
    _check_unique(mechanism_emission, "mechanism emission", ("netuid", "mechid", "block"))
    weights = mechanism_emission_weights(mechanism_emission.select("netuid", "mechid", "block", "emission"))
    joined = neurons.join(weights, on=["netuid", "mechid", "block"], how="left")
    missing = joined.filter(pl.col("weight_bits").is_null())
    if missing.height:
        row = missing.row(0, named=True)
        key = {k: row[k] for k in ("netuid", "mechid", "block")}
        raise SchemaError(f"aggregate_mechanisms: no emission row for mechanism key {key} "
                          "of epoch_neurons_out")

    def weighted_sum(col: str, cap: int) -> pl.Expr:
        term = _floor_mul_shift(_wide(col), pl.col("weight_bits"), 64)
        return term.sum().clip(upper_bound=cap)

    agg = joined.group_by("netuid", "block", "uid").agg(
        *[weighted_sum(c, U16_MAX).cast(pl.UInt16).alias(c) for c in U16_TERMS],
        weighted_sum("emission", U64_MAX).cast(pl.UInt64).alias("emission"),
        *[_wide(c).sum().clip(upper_bound=U64_MAX).cast(pl.UInt64).alias(c)
          for c in ("server_emission", "validator_emission")],
        pl.col("active").any(), pl.col("validator_permit").any(),
        mechanisms=pl.len().cast(pl.UInt8),
    )
    return agg.select("netuid", "block", "uid", "stake_weight", "active", "validator_permit", "consensus",
                      "dividends", "validator_trust", "server_emission", "validator_emission", "emission",
                      "mechanisms").sort("netuid", "block", "uid")
