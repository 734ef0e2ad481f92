"""A literal, scalar emulation of one Yuma epoch, for checking the engine (tasks/consensus).

Written straight from ../shared/yuma_spec.md (§1 numeric model, §2 sparse on-chain path
`epoch_mechanism`, §3 liquid alpha) with loops, lists and Python ints, on purpose slow and plain:
every I32F32 value is held as its integer "bits" X = x·2^32. It must not import tasks.consensus, so
that it stays an independent second implementation.

Where the spec summarises library code, the helper below follows the public source it names:
- substrate-fixed v0.6.0 `transcendental::exp` (encointer/substrate-fixed, src/transcendental.rs):
  0 -> 1; exactly 1 -> the constant E held as I9F23; x < 0 -> 1/exp(|x|); otherwise
  result = 1 + x and `for i in 2..frac_nbits` (i = 2..31 for I32F32) term = term*x, term = term/i,
  result += term, each step checked (overflow is an error).
- subtensor `exp_safe` (pallets/subtensor/src/epoch/math.rs): clamp the input to [-20, 20], call exp,
  on error return 0 (input <= 0) or I32F32::MAX.
- subtensor `liquid_alpha_sigmoid` / `liquid_alpha_matrix_sparse` and `mat_ema_alpha_sparse`
  (pallets/subtensor/src/epoch/run_epoch.rs, math.rs): sigmoid = 1 / (1 + exp_safe((steepness / -100)
  * (diff - 0.5))), alpha = clamp(low + sigmoid*(high - low), low, high); forward merge lookups.
- subtensor `weighted_median` (math.rs): the iterative pivot search with the iteration cap.

Inputs of `run_epoch` are plain Python structures with the meaning of the file contract
(DESIGN.md §5, schemas/consensus.py); `run_frames` is a thin adapter to and from Polars frames.
"""

from __future__ import annotations

import struct
from fractions import Fraction

FRAC_BITS = 32
ONE = 1 << FRAC_BITS  # I32F32 1.0
HALF = 1 << (FRAC_BITS - 1)
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U16_MAX = 65535
U64_MAX = (1 << 64) - 1
# e as substrate-fixed's I9F23 constant (consts::E >> 103 = floor(e·2^23) = 22802600), widened to
# I32F32: the value `exp` returns for exactly 1.0 (spec §0 pitfall 7: 2.7182817459, bits 11674931200).
E_I9F23_AS_I32F32 = 22802600 << (FRAC_BITS - 23)


class FixedOverflow(ArithmeticError):
    """A checked I32F32 operation overflowed (substrate-fixed returns Err / None)."""


# ---------------------------------------------------------------------------------------------
# §1 numeric model: I32F32 as integer bits
# ---------------------------------------------------------------------------------------------

def saturate(x: int) -> int:
    return I64_MAX if x > I64_MAX else I64_MIN if x < I64_MIN else x


def fmul(x: int, y: int) -> int:
    """a ⊗ b: the exact product shifted right by 32, i.e. floor toward −∞ (saturating)."""
    return saturate((x * y) >> FRAC_BITS)


def fmul_checked(x: int, y: int) -> int:
    r = (x * y) >> FRAC_BITS
    if r > I64_MAX or r < I64_MIN:
        raise FixedOverflow("I32F32 multiplication overflow")
    return r


def _trunc_quotient(x: int, y: int) -> int:
    """trunc(X·2^32 / Y) toward zero (the fixed-point division of substrate-fixed)."""
    num = x * ONE
    q = abs(num) // abs(y)
    return -q if (num < 0) != (y < 0) else q


def fdiv(x: int, y: int) -> int:
    """a ⊘ b (`safe_div`): truncated quotient; 0 if y = 0 or the quotient overflows (§0 pitfall 13)."""
    if y == 0:
        return 0
    q = _trunc_quotient(x, y)
    return 0 if (q > I64_MAX or q < I64_MIN) else q


def fdiv_saturating(x: int, y: int) -> int:
    """`saturating_div` (used by the liquid-alpha sigmoid); y is never 0 there."""
    return saturate(_trunc_quotient(x, y))


def fdiv_checked(x: int, y: int) -> int:
    if y == 0:
        raise FixedOverflow("I32F32 division by zero")
    q = _trunc_quotient(x, y)
    if q > I64_MAX or q < I64_MIN:
        raise FixedOverflow("I32F32 division overflow")
    return q


def fadd_checked(x: int, y: int) -> int:
    r = x + y
    if r > I64_MAX or r < I64_MIN:
        raise FixedOverflow("I32F32 addition overflow")
    return r


def from_int(k: int) -> int:
    return k << FRAC_BITS


def from_f64(v: float) -> int:
    """I32F32::from_num(f64): round to nearest, ties to even (test inputs only)."""
    return round(Fraction(v) * ONE)


def from_f32(v: float) -> int:
    """I32F32::from_num(f32 literal): the value is first an f32, then rounded to nearest even."""
    (as_f32,) = struct.unpack("<f", struct.pack("<f", v))
    return round(Fraction(as_f32) * ONE)


def to_float(x: int) -> float:
    return x / ONE


def to_num_floor(x: int) -> int:
    """`to_num` / `saturating_to_num` for integers: floor of the fixed value."""
    return x >> FRAC_BITS


def round_half_away(x: int) -> int:
    """I32F32 `round()`: half away from zero, returned as an integer."""
    return (x + HALF) >> FRAC_BITS if x >= 0 else -((-x + HALF) >> FRAC_BITS)


def fixed_proportion_to_u16(x: int) -> int:
    """floor(x·65535) clamped to [0, 65535] (spec §1)."""
    v = to_num_floor(fmul(x, from_int(U16_MAX)))
    return max(0, min(U16_MAX, v))


def u16_proportion_to_fixed(u: int) -> int:
    """(u·2^32) ⊘ (65535·2^32) = ⌊u·2^32/65535⌋ bits."""
    return fdiv(from_int(u), from_int(U16_MAX))


def normalize(values: list[int]) -> list[int]:
    """`inplace_normalize`: divide by the sum, skipped when the sum is 0."""
    total = sum(values)
    if total == 0:
        return list(values)
    return [fdiv(v, total) for v in values]


def vec_max_upscale_to_u16(values: list[int]) -> list[int]:
    """math.rs `vec_max_upscale_to_u16` (weight ingestion, spec §6; vectors §4.1)."""
    if not values:
        return []
    u16_max = from_int(U16_MAX)
    mx = max(values)
    if mx == 0:
        return [max(0, min(U16_MAX, to_num_floor(fmul(v, u16_max)))) for v in values]
    if mx > from_int(32768):
        scale = fdiv(u16_max, mx)
        return [max(0, min(U16_MAX, round_half_away(fmul(v, scale)))) for v in values]
    return [max(0, min(U16_MAX, round_half_away(fdiv(fmul(v, u16_max), mx)))) for v in values]


def bonds_moving_average_alpha(bonds_moving_avg: int) -> int:
    """α_b = 1 − ρ, ρ = BMA/10^6 in I64F64 truncated to I32F32 (spec §2.9.3)."""
    rho_i64f64 = (bonds_moving_avg << 64) // 1_000_000
    rho = rho_i64f64 >> 32  # I64F64 -> I32F32 drops the extra fractional bits (floor)
    return saturate(ONE - rho)


# ---------------------------------------------------------------------------------------------
# §0 pitfall 7 / §3: exp and the liquid-alpha sigmoid
# ---------------------------------------------------------------------------------------------

def exp_taylor(x: int) -> int:
    """substrate-fixed v0.6.0 `transcendental::exp::<I32F32, I32F32>` (see module docstring)."""
    if x == 0:
        return ONE
    if x == ONE:
        return E_I9F23_AS_I32F32
    neg = x < 0
    if neg:
        x = -x
    result = x + ONE
    term = x
    for i in range(2, FRAC_BITS):  # `for i in 2..D::frac_nbits()`: i = 2 … 31
        term = fmul_checked(term, x)
        term = fdiv_checked(term, from_int(i))
        result = fadd_checked(result, term)
    if neg:
        result = fdiv_checked(ONE, result)
    return result


def exp_safe(x: int) -> int:
    """subtensor math.rs `exp_safe`: input clamped to [−20, 20]."""
    lo, hi = from_int(-20), from_int(20)
    safe = lo if x < lo else hi if hi < x else x
    try:
        return exp_taylor(safe)
    except FixedOverflow:
        return 0 if safe <= 0 else I64_MAX


def clamp_value(value: int, low: int, high: int) -> int:
    """math.rs `clamp_value` / `clamp_i32f32`: min(high) first, then max(low)."""
    return max(min(value, high), low)


def liquid_alpha_sigmoid(consensus: int, weight: int, bond: int, alpha_low: int, alpha_high: int,
                         steepness: int) -> int:
    """Spec §3, one edge. `steepness` is I32F32 from the i16 storage value."""
    diff_buy = clamp_value(weight - consensus, 0, ONE)
    diff_sell = clamp_value(bond - weight, 0, ONE)
    combined_diff = diff_buy if weight >= bond else diff_sell
    k = fdiv_saturating(steepness, from_int(-100))
    sigmoid = fdiv_saturating(ONE, saturate(ONE + exp_safe(fmul(k, combined_diff - HALF))))
    alpha = saturate(alpha_low + fmul(sigmoid, alpha_high - alpha_low))
    return clamp_value(alpha, alpha_low, alpha_high)


def liquid_alpha_matrix_sparse(weights_for_bonds: list[list[tuple[int, int]]],
                               bonds: list[list[tuple[int, int]]], consensus: list[int],
                               alpha_low: int, alpha_high: int, steepness: int) -> list[list[int]]:
    """Dense α_ij for j < n, reading each sparse row with one forward merge (§3 sparse quirk)."""
    alphas = []
    for w_row, b_row in zip(weights_for_bonds, bonds, strict=True):
        row_alphas = []
        wi = bi = 0
        for j, c in enumerate(consensus):
            weight = 0
            while wi < len(w_row):
                col, val = w_row[wi]
                if col < j:
                    wi += 1
                    continue
                if col == j:
                    weight = val
                break
            bond = 0
            while bi < len(b_row):
                col, val = b_row[bi]
                if col < j:
                    bi += 1
                    continue
                if col == j:
                    bond = val
                break
            row_alphas.append(liquid_alpha_sigmoid(c, weight, bond, alpha_low, alpha_high, steepness))
        alphas.append(row_alphas)
    return alphas


def mat_ema_alpha_sparse(new: list[list[tuple[int, int]]], old: list[list[tuple[int, int]]],
                         alpha: list[list[int]]) -> list[list[tuple[int, int]]]:
    """E_ij = min(1, (1 − α_ij)⊗old + max(0, α_ij⊗new)) over the entries of `new` only (§2.10.2)."""
    result = []
    for new_row, old_row, alpha_row in zip(new, old, alpha, strict=True):
        decayed = [0] * len(alpha_row)
        for j, old_val in old_row:
            if j < len(alpha_row):
                decayed[j] = fmul(ONE - alpha_row[j], old_val)
        out_row = []
        for j, new_val in new_row:
            if j < len(alpha_row):
                inc = max(fmul(alpha_row[j], new_val), 0)
                val = min(saturate(decayed[j] + inc), ONE)
                if val > 0:
                    out_row.append((j, val))
        result.append(out_row)
    return result


def mat_ema_sparse(new: list[list[tuple[int, int]]], old: list[list[tuple[int, int]]], alpha: int,
                   columns: int) -> list[list[tuple[int, int]]]:
    """E_ij = α⊗new + (1 − α)⊗old over the union of entries, keeping > 0, ascending j."""
    one_minus_alpha = ONE - alpha
    result = []
    for new_row, old_row in zip(new, old, strict=True):
        acc = [0] * columns
        for j, v in new_row:
            if j < columns:
                acc[j] = saturate(acc[j] + fmul(alpha, v))
        for j, v in old_row:
            if j < columns:
                acc[j] = saturate(acc[j] + fmul(one_minus_alpha, v))
        result.append([(j, v) for j, v in enumerate(acc) if v > 0])
    return result


def col_normalize_sparse(matrix: list[list[tuple[int, int]]], columns: int) -> list[list[tuple[int, int]]]:
    col_sum = [0] * columns
    for row in matrix:
        for j, v in row:
            if j < columns:
                col_sum[j] = saturate(col_sum[j] + v)
    return [[(j, fdiv(v, col_sum[j]) if j < columns and col_sum[j] != 0 else v) for j, v in row]
            for row in matrix]


def col_max_upscale_sparse(matrix: list[list[tuple[int, int]]], columns: int) -> list[list[tuple[int, int]]]:
    col_max = [0] * columns
    for row in matrix:
        for j, v in row:
            if j < columns and col_max[j] < v:
                col_max[j] = v
    return [[(j, fdiv(v, col_max[j]) if j < columns and col_max[j] != 0 else v) for j, v in row]
            for row in matrix]


def interpolate_sparse(mat1: list[list[tuple[int, int]]], mat2: list[list[tuple[int, int]]], columns: int,
                       ratio: int) -> list[list[tuple[int, int]]]:
    """Result = A + ratio⊗(B − A) (§2.8): ratio 0 -> A, ratio 1 -> B, else dense over j, keep > 0."""
    if ratio == 0:
        return [list(r) for r in mat1]
    if ratio == ONE:
        return [list(r) for r in mat2]
    result = []
    for row1, row2 in zip(mat1, mat2, strict=True):
        dense1 = [0] * columns
        dense2 = [0] * columns
        for j, v in row1:
            if j < columns:
                dense1[j] = v
        for j, v in row2:
            if j < columns:
                dense2[j] = v
        out = []
        for j in range(columns):
            interp = saturate(dense1[j] + fmul(ratio, dense2[j] - dense1[j]))
            if interp > 0:
                out.append((j, interp))
        result.append(out)
    return result


# ---------------------------------------------------------------------------------------------
# §2.6 the weighted median (exact pivot search)
# ---------------------------------------------------------------------------------------------

def weighted_median(stake: list[int], score: list[int], partition: list[int], minority: int,
                    partition_lo: int, partition_hi: int) -> int:
    """The deterministic mid-pivot search of §2.6, step for step (strict < first, then ≤)."""
    current = list(partition)
    iteration_limit = len(partition)
    iterations = 0
    lo, hi = partition_lo, partition_hi
    while True:
        if len(current) == 0:
            return 0
        if len(current) == 1:
            return score[current[0]]
        pivot = score[current[len(current) // 2]]
        lower: list[int] = []
        upper: list[int] = []
        lo_stake = hi_stake = 0
        for idx in current:  # sub-lists keep the original order
            if score[idx] == pivot:
                continue
            if score[idx] < pivot:
                lo_stake = saturate(lo_stake + stake[idx])
                lower.append(idx)
            else:
                hi_stake = saturate(hi_stake + stake[idx])
                upper.append(idx)
        if minority < saturate(lo + lo_stake) and lower:
            current = lower
            hi = saturate(lo + lo_stake)
        elif saturate(hi - hi_stake) <= minority and upper:
            current = upper
            lo = saturate(hi - hi_stake)
        else:
            return pivot
        iterations += 1
        if iterations > iteration_limit:  # never needed in practice (§2.6 step 4)
            return 0


def weighted_median_col_sparse(stake: list[int], score: list[list[tuple[int, int]]], columns: int,
                               kappa: int) -> list[int]:
    """C_j per column: positive stakes renormalised, μ = Σσ − κ, lo = 0, hi = Σσ (§2.6)."""
    use_stake = normalize([s for s in stake if s > 0])
    stake_sum = sum(use_stake)
    minority = saturate(stake_sum - kappa)
    use_score = [[0] * len(use_stake) for _ in range(columns)]
    k = 0
    for s, row in zip(stake, score, strict=True):
        if s > 0:
            for c, val in row:
                if c < columns:
                    use_score[c][k] = val
            k += 1
    partition = list(range(len(use_stake)))
    return [weighted_median(use_stake, col, partition, minority, 0, stake_sum) for col in use_score]


# ---------------------------------------------------------------------------------------------
# §2.3 top-k permits
# ---------------------------------------------------------------------------------------------

def is_topk(values: list[int], k: int, nonzero: bool = True) -> list[bool]:
    """`is_topk_nonzero` (nonzero=True, the epoch's) or plain `is_topk`: stable ascending sort."""
    n = len(values)
    result = [v != 0 for v in values] if nonzero else [True] * n
    if n < k:
        return result
    order = sorted(range(n), key=lambda i: values[i])  # Python's sort is stable
    for idx in order[: n - k]:
        result[idx] = False
    return result


# ---------------------------------------------------------------------------------------------
# Liquid alpha's consensus (RaoFoundation/subtensor run_epoch.rs `compute_consensus_for_liquid_alpha`)
# ---------------------------------------------------------------------------------------------

def previous_consensus_u16(neurons: list[dict]) -> list[int]:
    """The stored `Consensus` vector before the epoch: the uids' values up to the last one given (a
    missing value inside it reads 0); [] when none is given (nothing stored)."""
    values = [nd.get("previous_consensus") for nd in neurons]
    while values and values[-1] is None:
        values.pop()
    return [0 if v is None else v for v in values]


def consensus_for_liquid_alpha(params: dict, consensus: list[int], previous_u16: list[int]) -> list[int]:
    """mode Current -> C; Previous -> P; Auto -> P iff the raw BondsPenalty u16 is 65535, else C;
    Max (opentensor test only) -> max(C_j, P_j). P = stored u16 ⊘ 65535, resized to len(C) (0-padded
    or truncated); an empty stored vector gives C."""
    mode = params.get("liquid_alpha_consensus_mode") or MODE_CURRENT
    if mode == MODE_CURRENT:
        return list(consensus)
    if mode == MODE_AUTO and params["bonds_penalty"] != U16_MAX:
        return list(consensus)
    if not previous_u16:
        return list(consensus)
    previous = [fdiv(from_int(v), from_int(U16_MAX)) for v in previous_u16]
    previous = (previous + [0] * len(consensus))[: len(consensus)]
    if mode == MODE_MAX:
        return [max(c, p) for c, p in zip(consensus, previous, strict=True)]
    return previous


# ---------------------------------------------------------------------------------------------
# §2 one epoch
# ---------------------------------------------------------------------------------------------

EPOCH_PARAM_NAMES = (
    "block", "tempo", "last_mechanism_step_block", "owner_uid", "kappa", "bonds_penalty",
    "bonds_moving_avg", "yuma3_enabled", "liquid_alpha_enabled", "alpha_low", "alpha_high",
    "alpha_sigmoid_steepness", "activity_cutoff_factor_milli", "max_allowed_validators",
    "stake_threshold", "tao_weight", "emission",
    "commit_reveal_enabled", "liquid_alpha_consensus_mode", "epoch_consensus",
)
NEURON_FIELDS = ("alpha_stake", "tao_stake", "last_update", "block_at_registration", "validator_permit",
                 "previous_consensus", "commit_block")
# liquid_alpha_consensus_mode codes (schemas.consensus.CONSENSUS_MODES, restated: this file imports no engine)
MODE_CURRENT, MODE_PREVIOUS, MODE_AUTO, MODE_MAX = 0, 1, 2, 3
OUTPUT_FIELDS = ("stake_weight", "active", "validator_permit", "consensus", "incentive", "dividends",
                 "validator_trust", "server_emission", "validator_emission", "emission")


def run_epoch(params: dict, neurons: list[dict], weights: dict[int, list[tuple[int, int]]],
              bonds: dict[int, list[tuple[int, int]]]) -> dict:
    """One epoch of one mechanism, spec §2 in order.

    params: the `epochs` row (EPOCH_PARAM_NAMES; `block` is the current block b).
    neurons: one dict per uid 0..n−1 with NEURON_FIELDS.
    weights / bonds: validator uid -> [(miner uid, u16)], a row in stored order.
    Returns {"outputs": {field: [value per uid]}, "bonds": {validator: {miner: u16 != 0}},
    "trace": {intermediate I32F32 vectors, for trace-level vectors}}.
    """
    n = len(neurons)
    b = params["block"]
    tempo = params["tempo"]
    owner = params["owner_uid"]
    if owner is not None and owner >= n:
        owner = None
    registered = [nd["block_at_registration"] for nd in neurons]
    last_update = [nd["last_update"] for nd in neurons]

    # §2.1 activity
    cutoff = max(1, params["activity_cutoff_factor_milli"] * tempo // 1000)
    inactive = [lu + cutoff < b for lu in last_update]
    active = [not x for x in inactive]

    # §2.2 stake: U_i = Â_i·2^32 + Θ_i·tw_bits (exact), threshold, I64F64 normalise, truncate
    tw_bits = params["tao_weight"] * ONE // U64_MAX
    combined = []
    for i, nd in enumerate(neurons):
        u = nd["alpha_stake"] * ONE + nd["tao_stake"] * tw_bits
        if i != owner and (u >> FRAC_BITS) < params["stake_threshold"]:
            u = 0
        combined.append(u)
    total = sum(combined)
    stake = [u * ONE // total if total else 0 for u in combined]

    # §2.3 permits: this epoch uses the stored ones (owner forced on); new ones are top-k
    permit = [bool(nd["validator_permit"]) for nd in neurons]
    if owner is not None:
        permit[owner] = True
    new_permit = is_topk(stake, params["max_allowed_validators"], nonzero=True)
    if owner is not None:
        new_permit[owner] = True

    # §2.4 active stake
    active_stake = normalize([s if (active[i] and permit[i]) else 0 for i, s in enumerate(stake)])

    # §2.5 weights: load (j < n), permit rows, diagonal (owner kept), outdated, row-normalise
    w: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for i, row in weights.items():
        if i < n:
            w[i] = [(j, from_int(v)) for j, v in row if j < n]
    w = [row if permit[i] else [] for i, row in enumerate(w)]
    w = [[(j, v) for j, v in row if j != i or (owner is not None and i == owner)] for i, row in enumerate(w)]
    w = [[(j, v) for j, v in row if not last_update[i] <= registered[j]] for i, row in enumerate(w)]
    # §2.5.5 commit-reveal: commit_blocks[i] = earliest unexpired commit (u64::MAX: none), mask cb < reg
    if params.get("commit_reveal_enabled"):
        commit_blocks = [U64_MAX if nd.get("commit_block") is None else nd["commit_block"] for nd in neurons]
        w = [[(j, v) for j, v in row if not commit_blocks[i] < registered[j]] for i, row in enumerate(w)]
    normalized = []
    for row in w:
        row_sum = sum(v for _, v in row)
        normalized.append([(j, fdiv(v, row_sum)) for j, v in row] if row_sum > 0 else list(row))
    w = normalized

    # §2.6 consensus
    kappa = fdiv(from_int(params["kappa"]), from_int(U16_MAX))
    consensus = weighted_median_col_sparse(active_stake, w, n, kappa)

    # §2.7 clipping, validator trust, incentive
    clipped = []
    for row in w:
        out = []
        for j, v in row:
            th = consensus[j]
            if th < v:
                if th > 0:
                    out.append((j, th))
            else:
                out.append((j, v))
        clipped.append(out)
    validator_trust = [sum(v for _, v in row) for row in clipped]
    ranks = [0] * n
    for i, row in enumerate(clipped):
        for j, v in row:
            ranks[j] = saturate(ranks[j] + fmul(active_stake[i], v))
    incentive = normalize(ranks)

    # §2.8 bond weights and old-bond masking
    beta = fdiv(from_int(params["bonds_penalty"]), from_int(U16_MAX))
    weights_for_bonds = interpolate_sparse(w, clipped, n, beta)
    lms = params["last_mechanism_step_block"]
    last_tempo = lms + 1 if lms > 0 else max(b - tempo, 0)
    old_bonds: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for i, row in bonds.items():
        if i < n:
            # rows as the chain stores them: ascending miner uid (the merge of §3 relies on it)
            old_bonds[i] = sorted(row)
    old_bonds = [[(j, v) for j, v in row if not (j < n and last_tempo <= registered[j]) and j < n]
                 for row in old_bonds]
    alpha_b = bonds_moving_average_alpha(params["bonds_moving_avg"])

    trace: dict = {"stake": stake, "active_stake": active_stake, "weights": w, "consensus": consensus,
                   "clipped_weights": clipped, "weights_for_bonds": weights_for_bonds,
                   "incentive": incentive, "validator_trust": validator_trust}

    if params["yuma3_enabled"]:
        # §2.10 Yuma3: absolute bonds in [0, 1]
        b_fixed = [[(j, u16_proportion_to_fixed(v)) for j, v in row] for row in old_bonds]
        liquid = params["liquid_alpha_enabled"] and any(c != 0 for c in consensus)
        if liquid:
            lo = fdiv(from_int(params["alpha_low"]), from_int(U16_MAX))
            hi = fdiv(from_int(params["alpha_high"]), from_int(U16_MAX))
            previous = previous_consensus_u16(neurons)
            consensus_alpha = consensus_for_liquid_alpha(params, consensus, previous)
            trace["consensus_for_liquid_alpha"] = consensus_alpha
            alphas = liquid_alpha_matrix_sparse(weights_for_bonds, b_fixed, consensus_alpha, lo, hi,
                                                from_int(params["alpha_sigmoid_steepness"]))
            ema = mat_ema_alpha_sparse(weights_for_bonds, b_fixed, alphas)
            trace["alphas"] = alphas
        else:
            ema = mat_ema_sparse(weights_for_bonds, b_fixed, alpha_b, n)
        ema_norm = col_normalize_sparse(ema, n)
        bond_value = []
        for row in ema_norm:
            acc = 0
            for j, v in row:
                prod = fmul(v, incentive[j])
                if prod != 0:
                    acc = saturate(acc + prod)
            bond_value.append(acc)
        dividends_raw = []
        for v, a in zip(bond_value, active_stake, strict=True):
            try:
                dividends_raw.append(fmul_checked(v, a))
            except FixedOverflow:
                dividends_raw.append(0)
        dividends = normalize(dividends_raw)
        stored = ema
        trace.update(ema_bonds=ema, ema_bonds_norm=ema_norm)
    else:
        # §2.9 classic Yuma: raw u16 bonds, column-normalised
        b_fixed = col_normalize_sparse([[(j, from_int(v)) for j, v in row] for row in old_bonds], n)
        delta = [[(j, fmul(v, active_stake[i])) for j, v in row] for i, row in enumerate(weights_for_bonds)]
        delta = col_normalize_sparse(delta, n)
        ema = col_normalize_sparse(mat_ema_sparse(delta, b_fixed, alpha_b, n), n)
        dividends_raw = []
        for row in ema:
            acc = 0
            for j, v in row:
                acc = saturate(acc + fmul(incentive[j], v))
            dividends_raw.append(acc)
        dividends = normalize(dividends_raw)
        stored = col_max_upscale_sparse(ema, n)
        trace.update(bonds_delta=delta, ema_bonds=ema, old_bonds_norm=b_fixed)

    # §2.11 emission
    combined_emission = [saturate(i_ + d_) for i_, d_ in zip(incentive, dividends, strict=True)]
    emission_sum = sum(combined_emission)
    if emission_sum != 0:
        norm_server = [fdiv(x, emission_sum) for x in incentive]
        norm_validator = [fdiv(x, emission_sum) for x in dividends]
    else:
        norm_server, norm_validator = list(incentive), list(dividends)
    norm_combined = normalize(combined_emission)
    if emission_sum == 0:
        fallback = stake if sum(active_stake) == 0 else active_stake
        norm_validator = list(fallback)
        norm_combined = list(fallback)
    rao = params["emission"]

    def to_rao(x: int) -> int:
        return max(0, min(U64_MAX, (x * rao) >> FRAC_BITS))

    trace.update(dividends=dividends, normalized_server_emission=norm_server,
                 normalized_validator_emission=norm_validator, normalized_combined_emission=norm_combined)

    outputs = {
        "stake_weight": [fixed_proportion_to_u16(x) for x in stake],
        "active": active,
        "validator_permit": new_permit,
        "consensus": [fixed_proportion_to_u16(x) for x in consensus],
        "incentive": [fixed_proportion_to_u16(x) for x in incentive],
        "dividends": [fixed_proportion_to_u16(x) for x in dividends],
        "validator_trust": [fixed_proportion_to_u16(x) for x in validator_trust],
        "server_emission": [to_rao(x) for x in norm_server],
        "validator_emission": [to_rao(x) for x in norm_validator],
        "emission": [to_rao(x) for x in norm_combined],
    }
    # §2.12 bonds: rows of new permit holders, as stored u16; all other rows empty. The file
    # contract keeps only nonzero entries.
    new_bonds: dict[int, dict[int, int]] = {}
    for i, row in enumerate(stored):
        if new_permit[i]:
            entries = {j: fixed_proportion_to_u16(v) for j, v in row}
            entries = {j: v for j, v in entries.items() if v != 0}
            if entries:
                new_bonds[i] = entries
    return {"outputs": outputs, "bonds": new_bonds, "trace": trace}


# ---------------------------------------------------------------------------------------------
# Thin adapter to and from the file contract's Polars frames (schemas.consensus)
# ---------------------------------------------------------------------------------------------

def run_frames(epochs, neurons, weights, bonds):
    """Run `run_epoch` for every epoch row; return (neurons_out, bonds_out) frames of the contract.

    Epochs are grouped by (netuid, mechid, block); within a validator the weight rows keep their
    frame order (the contract's ascending miner_uid), bond rows are sorted by miner uid.
    """
    import polars as pl

    from schemas.consensus import EPOCH_BONDS_OUT, EPOCH_KEY, EPOCH_NEURONS_OUT

    key_of = lambda row: tuple(row[k] for k in EPOCH_KEY)  # noqa: E731
    neurons_by: dict = {}
    for row in neurons.iter_rows(named=True):
        neurons_by.setdefault(key_of(row), []).append(row)
    weights_by: dict = {}
    for row in weights.iter_rows(named=True):
        weights_by.setdefault(key_of(row), {}).setdefault(row["validator_uid"], []).append(
            (row["miner_uid"], row["weight"]))
    bonds_by: dict = {}
    for row in bonds.iter_rows(named=True):
        bonds_by.setdefault(key_of(row), {}).setdefault(row["validator_uid"], []).append(
            (row["miner_uid"], row["bond"]))

    out_rows, bond_rows = [], []
    for ep in epochs.iter_rows(named=True):
        key = key_of(ep)
        rows = sorted(neurons_by.get(key, []), key=lambda r: r["uid"])
        params = {name: ep.get(name) for name in EPOCH_PARAM_NAMES if name != "block"}
        params["block"] = ep["block"]
        result = run_epoch(params, rows, weights_by.get(key, {}), bonds_by.get(key, {}))
        keyd = dict(zip(EPOCH_KEY, key, strict=True))
        for uid in range(len(rows)):
            out_rows.append({**keyd, "uid": uid, **{f: result["outputs"][f][uid] for f in OUTPUT_FIELDS}})
        for i in sorted(result["bonds"]):
            for j in sorted(result["bonds"][i]):
                bond_rows.append({**keyd, "validator_uid": i, "miner_uid": j, "bond": result["bonds"][i][j]})
    neurons_out = pl.DataFrame(out_rows, schema=EPOCH_NEURONS_OUT.polars_schema())
    bonds_out = pl.DataFrame(bond_rows, schema=EPOCH_BONDS_OUT.polars_schema())
    return neurons_out, bonds_out
