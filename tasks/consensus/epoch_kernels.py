"""Compiled kernels for the epoch's edge steps on a dense grid (numba): one pass per step and epoch instead
of many whole-array NumPy passes, the same exact integer recipe (fixed.py) entry for entry.

Every helper here is the scalar form of its NumPy counterpart in `fixed.py`, with the same operand ranges
(I32F32 bits in int64; 16-bit limb splits keep every intermediate below 2^63), or an exact rewrite of it
without integer division (a float estimate and one exact remainder test: `div_by`, `next_taylor_term`),
tested against it value for value. `dense_epoch_terms` runs §2.5–§2.10 for each epoch of a grid chunk,
each step a named function where it is more than a loop (`weighted_median_columns`,
`classic_bonds_and_dividends`, `liquid_alpha_bonds`, `yuma3_dividends`). The last section is the batch
reader's compiled passes (validate.index_batch). The kernels release the GIL (`nogil`), so chunks run in
parallel on the engine's own threads (`epoch.EDGE_STEP_THREADS`) with no threading layer of numba's (whose
default one may not be entered from two threads at once). Compiled once per machine (`cache=True`: a
second process loads the compiled code; the first compile costs ~10 s, benchmarks/consensus_scaling.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from tasks.consensus.epoch_liquid_alpha import LIQUID_MAX, LIQUID_PREVIOUS

ONE = 1 << 32
HALF = 1 << 31
U16_MAX = 65535
EXP_ONE_BITS = 22802600 << 9  # e as substrate-fixed's I9F23 constant (fixed.EXP_ONE_BITS)
EXP_ARG_LIMIT = 20 * ONE
TAYLOR_LAST_TERM = 31
U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)

_jit = nb.njit(cache=True, nogil=True)


# ---------------------------------------------------------------- §1 the numeric model, one value at a time

@_jit
def fx_mul(x, y):
    """a ⊗ b = ⌊X·Y/2^32⌋ for |X| ≤ 2^34, |Y| < 2^40 (`np_fx_mul`)."""
    return (x * (y >> 16) + ((x * (y & 0xFFFF)) >> 16)) >> 16


@_jit
def fx_div(x, s):
    """a ⊘ b = trunc(X·2^32/S), 0 where S = 0, for 0 ≤ X, S < 2^47 and quotients below 2^47 (`np_fx_div`):
    two-stage long division, r = X·2^16, then ⌊r/S⌋·2^16 + ⌊(r mod S)·2^16/S⌋."""
    if s <= 0:
        return 0
    r = x << 16
    q = r // s
    return (q << 16) + (((r - q * s) << 16) // s)


@_jit
def reciprocal(s):
    """The scale `div_by` multiplies by for divisor S (0 for S = 0): 2^32/S lowered by (1 − 2^−45)."""
    return (4294967296.0 * (1.0 - 2.0 ** -45)) / s if s > 0 else 0.0


@_jit
def div_by(x, s, recip):
    """`fx_div(x, s)` for 0 ≤ X < 2^47 and quotients below 2^40, from the divisor's `reciprocal` (`np_fx_div_by`):
    the float estimate is ⌊Q⌋ or ⌊Q⌋ − 1 and one exact remainder test corrects it; no integer division."""
    if s <= 0:
        return 0
    q = np.int64(x * recip)
    if (x << 32) - q * s >= s:
        q += 1
    return q


@_jit
def to_u16(x):
    """floor(x·65535) clamped to [0, 65535] (`np_to_u16`)."""
    v = (x * U16_MAX) >> 32
    return 0 if v < 0 else U16_MAX if v > U16_MAX else v


@_jit
def u16_proportion_bits(u):
    """⌊u·2^32/65535⌋ for 0 ≤ u ≤ 65535 (`np_u16_proportion_bits`)."""
    return u * 65537 + (1 if u == U16_MAX else 0)


@_jit
def mul_wide(x, y):
    """⌊X·Y/2^32⌋ for |X·Y| < 2^94 and |Y| < 2^46 (`np_mul_wide`)."""
    return (x >> 32) * y + ((((x >> 16) & 0xFFFF) * y + (((x & 0xFFFF) * y) >> 16)) >> 16)


@_jit
def two_pow64_over(s):
    """⌊2^64 / S⌋ for 2^32 ≤ S < 2^61 (`np_two_pow64_over`): ⌊(2^64 − 1)/S⌋, plus one where S divides 2^64."""
    us = np.uint64(s)
    q = U64_MAX // us
    if U64_MAX - q * us == us - np.uint64(1):
        q += np.uint64(1)
    return np.int64(q)


@_jit
def exp_safe_many(x, out, magnitude, term):
    """subtensor `exp_safe` of every value of `x` into `out` (`np_exp_safe`; `magnitude`, `term` are scratch of
    x's length): clamp to [−20, 20]; exp(0) = 1, exp(1) = e as I9F23; else the Taylor sum on |x| (terms i = 2..31,
    each ⌊term ⊗ |x|⌋ / i, `next_taylor_term`) and, for x < 0, its reciprocal. One term for all values at a
    time, so the loop runs in vector lanes; it stops once every term is 0 (every later term is 0 too)."""
    m = x.shape[0]
    for k in range(m):
        v = min(max(x[k], -EXP_ARG_LIMIT), EXP_ARG_LIMIT)
        magnitude[k] = -v if v < 0 else v
        term[k] = magnitude[k]
        out[k] = magnitude[k] + ONE
    for i in range(2, TAYLOR_LAST_TERM + 1):
        scale = 1.0 / (i * 4294967296.0)
        unit = np.int64(i) << 32
        any_left = 0
        for k in range(m):
            t = next_taylor_term(term[k], magnitude[k], i, scale, unit)
            term[k] = t
            out[k] += t
            any_left |= t
        if any_left == 0:
            break
    for k in range(m):
        v = x[k]
        if v == 0:
            out[k] = ONE
        elif v == ONE:
            out[k] = EXP_ONE_BITS
        elif v < 0:
            out[k] = two_pow64_over(out[k])


SHIFT_32 = np.uint64(32)


@_jit
def next_taylor_term(term, op, i, scale, unit):
    """⌊term·op / (i·2^32)⌋ (= ⌊⌊term ⊗ op⌋ / i⌋, the chain's next Taylor term) for 0 ≤ term < 2^58,
    0 ≤ op ≤ 20·2^32 and 2 ≤ i ≤ 31 (`scale` = 1/(i·2^32), `unit` = i·2^32), without an integer division: a
    float estimate q̂ is within 2^7 + 1 of the quotient, so the remainder term·op − q̂·i·2^32 is below 2^45
    in size and exact from wrapping 64-bit products; a float step on it and one exact test finish."""
    q = np.int64(np.float64(term) * np.float64(op) * scale)
    d = np.int64(np.uint64(term) * np.uint64(op) - ((np.uint64(q) * np.uint64(i)) << SHIFT_32))
    step = np.int64(np.float64(d) * scale)
    q += step
    d -= step * unit
    return q + (d >= unit) - (d < 0)


@_jit
def liquid_alpha_exp_argument(w, b, c, k):
    """§3's sigmoid argument k ⊗ (Δ − ½): Δ = clamp(w − c, 0, 1) if w ≥ b (buying), else clamp(b − w, 0, 1)."""
    if w >= b:
        delta = w - c
    else:
        delta = b - w
    delta = 0 if delta < 0 else ONE if delta > ONE else delta
    return mul_wide(k, delta - HALF)


@_jit
def liquid_alpha_from_exp(exp_value, lo, hi):
    """§3's α from exp_safe of the argument: sig = 1 ⊘ (1 ⊕ exp); α = clamp(lo ⊕ sig ⊗ (hi − lo), lo, hi)."""
    sig = two_pow64_over(ONE + exp_value)
    span = hi - lo
    alpha = lo + ((sig * (span >> 16) + ((sig * (span & 0xFFFF)) >> 16)) >> 16)
    return lo if alpha < lo else hi if alpha > hi else alpha


# ---------------------------------------------------------------- §2.5–§2.10 on a dense grid

@_jit
def dense_epoch_terms(rows, cols, row_at, col_at,
                      w_validator, w_miner, w_value, w_start, w_stop,
                      b_validator, b_miner, b_value, b_start, b_stop,
                      last_update, registered, permit_mask, new_permit, is_owner, commit_block, last_tempo,
                      median_stake, active_stake, liquid_source, previous_consensus,
                      median_total, kappa, beta, yuma3, liquid_enabled, ema_alpha, steepness, alpha_low,
                      alpha_high, consensus_out, trust_out, incentive_out, dividend_out, stored_out):
    """Per epoch e of the grid: `rows`/`cols` the grid's uids (`row_at`/`col_at`: a uid's row or column);
    the stored weight and bond edges (validator uid, miner uid, u16 value; epoch e's rows start[e]..stop[e]);
    per-neuron inputs [E, n]; per-epoch inputs [E]. Writes the consensus, validator trust, incentive and raw
    dividend bits per neuron [E, n] and the stored u16 bonds [E, R, C] (0 in rows without a new permit)."""
    n_epochs, n_rows, n_cols = stored_out.shape
    n = last_update.shape[1]
    # The stored u16 values stay u16 on the grid: at n in the thousands the per-epoch grids leave the CPU
    # caches, and each pass's bytes are what it costs.
    raw_w = np.zeros((n_rows, n_cols), np.uint16)
    w_present = np.zeros((n_rows, n_cols), np.bool_)
    raw_b = np.zeros((n_rows, n_cols), np.uint16)
    b_present = np.zeros((n_rows, n_cols), np.bool_)
    w = np.zeros((n_rows, n_cols), np.int64)
    present = np.zeros((n_rows, n_cols), np.bool_)
    wb = np.zeros((n_rows, n_cols), np.int64)
    wb_present = np.zeros((n_rows, n_cols), np.bool_)
    old = np.zeros((n_rows, n_cols), np.int64)
    ema = np.zeros((n_rows, n_cols), np.int64)
    exp_scratch = np.zeros((4, n_rows * n_cols), np.int64)
    consensus = np.zeros(n_cols, np.int64)
    rank_col = np.zeros(n_cols, np.int64)
    registered_col = np.zeros(n_cols, np.int64)
    for e in range(n_epochs):
        # The epoch's sparse matrices on the grid: an absent entry is 0 and not present.
        scatter_edges(w_validator, w_miner, w_value, w_start[e], w_stop[e], row_at, col_at, raw_w, w_present)
        scatter_edges(b_validator, b_miner, b_value, b_start[e], b_stop[e], row_at, col_at, raw_b, b_present)

        for c in range(n_cols):
            registered_col[c] = registered[e, cols[c]]

        # §2.5 weights: masked (rows without the permit P'; entries outdated, LU_i ≤ R_j, or, with commit-reveal,
        # c_i < R_j: kept iff R_j ≤ min(LU_i − 1, c_i); the diagonal but the owner's), row-normalised.
        for r in range(n_rows):
            i = rows[r]
            total = 0
            if permit_mask[e, i]:
                newest = min(last_update[e, i] - 1, commit_block[e, i])
                for c in range(n_cols):
                    p = w_present[r, c] & (registered_col[c] <= newest)
                    present[r, c] = p
                    w[r, c] = np.int64(raw_w[r, c]) if p else 0
                    total += w[r, c]
                diagonal = col_at[i]
                if diagonal >= 0 and not is_owner[e, i] and present[r, diagonal]:
                    total -= w[r, diagonal]
                    present[r, diagonal] = False
                    w[r, diagonal] = 0
            else:
                present[r, :] = False
                w[r, :] = 0
            scale = reciprocal(total)
            for c in range(n_cols):
                w[r, c] = div_by(w[r, c], total, scale)

        # §2.6 consensus.
        weighted_median_columns(w, median_stake[e], rows, median_total[e], kappa[e], consensus)
        for c in range(n_cols):
            consensus_out[e, cols[c]] = consensus[c]

        # §2.7 clipping w̄ = min(w, C_j), validator trust, rank, incentive (normalised over the epoch's n uids).
        rank_col[:] = 0
        for r in range(n_rows):
            i = rows[r]
            trust = 0
            a_i = active_stake[e, i]
            for c in range(n_cols):
                v = min(w[r, c], consensus[c])
                trust += v
                rank_col[c] += fx_mul(v, a_i)
            trust_out[e, i] = trust
        rank_total = 0
        for c in range(n_cols):
            rank_total += rank_col[c]
        incentive_out[e, :] = 0  # a uid outside the grid's columns has rank 0
        for c in range(n_cols):
            incentive_out[e, cols[c]] = fx_div(rank_col[c], rank_total) if rank_total > 0 else rank_col[c]

        # §2.8 bond weights W^B (with their entries; an entry with w > C_j = 0 is removed from W̄) and the
        # masked stored bonds (kept iff R_j < t*).
        b_e = beta[e]
        for r in range(n_rows):
            if b_e == 0:
                for c in range(n_cols):
                    wb_present[r, c] = present[r, c]
                    wb[r, c] = w[r, c]
            elif b_e == ONE:
                for c in range(n_cols):
                    kept = (w[r, c] == 0) | (consensus[c] != 0)
                    wb_present[r, c] = present[r, c] & kept
                    wb[r, c] = min(w[r, c], consensus[c]) if kept else 0
            else:
                for c in range(n_cols):
                    kept = (w[r, c] == 0) | (consensus[c] != 0)
                    interpolated = w[r, c] + fx_mul((min(w[r, c], consensus[c]) if kept else 0) - w[r, c], b_e)
                    positive = present[r, c] & (interpolated > 0)
                    wb_present[r, c] = positive
                    wb[r, c] = interpolated if positive else 0
            last_tempo_i = last_tempo[e, rows[r]]
            for c in range(n_cols):
                old[r, c] = np.int64(raw_b[r, c]) if b_present[r, c] & (registered_col[c] < last_tempo_i) else 0

        if not yuma3[e]:
            classic_bonds_and_dividends(wb, old, active_stake[e], incentive_out[e], ema_alpha[e], rows, cols, ema,
                                        stored_out[e], dividend_out[e])
        else:
            any_consensus = False
            for j in range(n):
                if consensus_out[e, j] > 0:
                    any_consensus = True
            if liquid_enabled[e] and any_consensus:
                liquid_alpha_bonds(wb, wb_present, old, consensus, liquid_source[e], previous_consensus[e], cols,
                                   steepness[e], alpha_low[e], alpha_high[e], exp_scratch, ema)
            else:
                a_b = ema_alpha[e]
                for r in range(n_rows):
                    for c in range(n_cols):
                        v = fx_mul(wb[r, c], a_b) + fx_mul(u16_proportion_bits(old[r, c]), ONE - a_b)
                        ema[r, c] = v if v > 0 else 0
            yuma3_dividends(ema, active_stake[e], incentive_out[e], rows, cols, stored_out[e], dividend_out[e])
        # §2.12: only validators with a new permit keep bonds.
        for r in range(n_rows):
            if not new_permit[e, rows[r]]:
                stored_out[e, r, :] = 0


@_jit
def weighted_median_columns(w, median_stake, rows, median_total, kappa, consensus):
    """§2.6: C_c = the stake-weighted median of column c over V (rows with σ > 0): the smallest positive w
    with σ-mass(0 < w' ≤ w) + zero-mass > S − κ (zero-mass = S − σ-mass of the positive entries); the
    column's largest w if none is; 0 if a positive zero-mass alone exceeds S − κ, the smallest positive w
    if a zero zero-mass passes the test (κ ≥ S). Found by bisection on the value (≤ 2^32: at most 33
    rounds) over the column's V entries, copied out contiguously first, instead of a sort per column: each
    round is one vectorised pass over a few hundred bytes in cache."""
    n_rows, n_cols = w.shape
    minority = median_total - kappa
    in_v = np.empty(n_rows, np.int64)
    m = 0
    for r in range(n_rows):
        if median_stake[rows[r]] > 0:
            in_v[m] = r
            m += 1
    sigma = np.empty(m, np.int64)
    columns = np.empty((n_cols, m), np.int64)
    for k in range(m):
        r = in_v[k]
        sigma[k] = median_stake[rows[r]]
        for c in range(n_cols):
            columns[c, k] = w[r, c]
    for c in range(n_cols):
        values = columns[c]
        positive_mass, largest, smallest = 0, 0, ONE + 1
        for k in range(m):
            v = values[k]
            positive_mass += sigma[k] if v > 0 else 0
            largest = max(largest, v)
            smallest = min(smallest, v if v > 0 else ONE + 1)
        zero_mass = median_total - positive_mass
        if largest == 0 or zero_mass > 0 and zero_mass > minority:
            consensus[c] = 0
        elif zero_mass > minority:
            consensus[c] = smallest
        else:
            lo, hi = smallest, largest
            need = minority - zero_mass  # σ-mass(0 < v ≤ x) must exceed this
            while lo < hi:
                mid = (lo + hi) >> 1
                mass = 0
                for k in range(m):
                    v = values[k]
                    mass += sigma[k] if (v > 0) & (v <= mid) else 0
                if mass > need:
                    hi = mid
                else:
                    lo = mid + 1
            consensus[c] = lo


@_jit
def classic_bonds_and_dividends(wb, old, active_stake, incentive, a_b, rows, cols, ema, stored, dividend):
    """§2.9 classic: B = colnorm(raw u16); ΔB = colnorm(W^B ∘ a); E = colnorm(max(0, α_b ΔB + (1 − α_b) B));
    d_i = Σ_j I_j ⊗ E_ij; stored E ⊘ max_i E (column max-upscale) as u16."""
    n_rows, n_cols = wb.shape
    col_sum = np.zeros(n_cols, np.int64)
    old_sum = np.zeros(n_cols, np.int64)
    for r in range(n_rows):
        a_i = active_stake[rows[r]]
        for c in range(n_cols):
            old_sum[c] += old[r, c]
            ema[r, c] = fx_mul(wb[r, c], a_i)  # ΔB before normalising
            col_sum[c] += ema[r, c]
    col_ema = np.zeros(n_cols, np.int64)
    sum_scale = np.empty(n_cols)
    old_scale = np.empty(n_cols)
    for c in range(n_cols):
        sum_scale[c] = reciprocal(col_sum[c])
        old_scale[c] = reciprocal(old_sum[c])
    for r in range(n_rows):
        for c in range(n_cols):
            v = (fx_mul(div_by(ema[r, c], col_sum[c], sum_scale[c]), a_b)
                 + fx_mul(div_by(old[r, c], old_sum[c], old_scale[c]), ONE - a_b))
            v = v if v > 0 else 0
            ema[r, c] = v
            col_ema[c] += v
    col_max = np.zeros(n_cols, np.int64)
    for c in range(n_cols):
        sum_scale[c] = reciprocal(col_ema[c])
    for r in range(n_rows):
        for c in range(n_cols):
            ema[r, c] = div_by(ema[r, c], col_ema[c], sum_scale[c])
            col_max[c] = max(col_max[c], ema[r, c])
    for c in range(n_cols):
        old_scale[c] = reciprocal(col_max[c])
    for r in range(n_rows):
        d = 0
        for c in range(n_cols):
            d += fx_mul(ema[r, c], incentive[cols[c]])
            stored[r, c] = to_u16(div_by(ema[r, c], col_max[c], old_scale[c]))
        dividend[rows[r]] = d


@_jit
def liquid_alpha_bonds(wb, wb_present, old, consensus, source, previous_consensus, cols, k, lo, hi, scratch, ema):
    """§2.10 with liquid alpha (§3): E = min(1, (1 − α) ⊗ B ⊕ max(0, α ⊗ W^B)) with B = u16 ⊘ 65535 and α per
    W^B entry, read from the consensus `source` says (epoch_liquid_alpha's LIQUID_*); 0 off W^B's
    entries. The sigmoid's exp runs over all entries at once (`exp_safe_many`)."""
    n_rows, n_cols = wb.shape
    argument, exp_value = scratch[0], scratch[1]
    for r in range(n_rows):
        for c in range(n_cols):
            j = cols[c]
            cj = consensus[c]
            if source[j] == LIQUID_PREVIOUS or source[j] == LIQUID_MAX and previous_consensus[j] > cj:
                cj = previous_consensus[j]
            argument[r * n_cols + c] = liquid_alpha_exp_argument(wb[r, c], u16_proportion_bits(old[r, c]), cj, k)
    exp_safe_many(argument, exp_value, scratch[2], scratch[3])
    for r in range(n_rows):
        for c in range(n_cols):
            v = 0
            if wb_present[r, c]:
                alpha = liquid_alpha_from_exp(exp_value[r * n_cols + c], lo, hi)
                gain = fx_mul(alpha, wb[r, c])
                v = fx_mul(u16_proportion_bits(old[r, c]), ONE - alpha) + (gain if gain > 0 else 0)
                v = ONE if v > ONE else v if v > 0 else 0
            ema[r, c] = v


@_jit
def yuma3_dividends(ema, active_stake, incentive, rows, cols, stored, dividend):
    """§2.10.4: Ê = colnorm(E); d_i = (Σ_j Ê_ij ⊗ I_j) ⊗ a_i; stored floor(E·65535)."""
    n_rows, n_cols = ema.shape
    col_sum = np.zeros(n_cols, np.int64)
    for r in range(n_rows):
        for c in range(n_cols):
            col_sum[c] += ema[r, c]
    sum_scale = np.empty(n_cols)
    for c in range(n_cols):
        sum_scale[c] = reciprocal(col_sum[c])
    for r in range(n_rows):
        value = 0
        for c in range(n_cols):
            value += fx_mul(div_by(ema[r, c], col_sum[c], sum_scale[c]), incentive[cols[c]])
            stored[r, c] = to_u16(ema[r, c])
        dividend[rows[r]] = fx_mul(value, active_stake[rows[r]])


# ---------------------------------------------------------------- the dense grid's layout

@_jit
def scatter_edges(validator, miner, value, start, stop, row_at, col_at, values, present):
    """The edges in stored rows start..stop−1 on a grid: each value into the cell [row of its validator,
    column of its miner]; every other cell 0 and not present (a full grid is overwritten whole: no clearing)."""
    if stop - start != values.size:
        values[:] = 0
        present[:] = False
    for k in range(start, stop):
        r, c = row_at[validator[k]], col_at[miner[k]]
        values[r, c] = value[k]
        present[r, c] = True


@_jit
def nonzero_bonds(stored, rows, cols, counts):
    """The grid's nonzero stored bonds as edge columns (validator uid, miner uid, u16 bond) in (epoch, row,
    column) order, and each epoch's count."""
    total = 0
    for e in range(stored.shape[0]):
        for r in range(stored.shape[1]):
            for c in range(stored.shape[2]):
                counts[e] += stored[e, r, c] > 0
        total += counts[e]
    validator = np.empty(total, np.uint16)
    miner = np.empty(total, np.uint16)
    bond = np.empty(total, np.uint16)
    k = 0
    for e in range(stored.shape[0]):
        for r in range(stored.shape[1]):
            for c in range(stored.shape[2]):
                if stored[e, r, c] > 0:
                    validator[k], miner[k], bond[k] = rows[r], cols[c], stored[e, r, c]
                    k += 1
    return validator, miner, bond


@_jit
def mark_uids(validator, miner, start, stop, is_row, is_col):
    """Which uids are the validator (`is_row`) or the miner (`is_col`) of any edge of the epochs' rows."""
    for e in range(start.shape[0]):
        for k in range(start[e], stop[e]):
            is_row[validator[k]] = True
            is_col[miner[k]] = True


# ---------------------------------------------------------------- reading the batch (validate.index_batch)

@_jit
def key_run_starts(netuid, mechid, block):
    """The rows where the epoch key (netuid, mechid, block) differs from the row before: each run's first row."""
    m = netuid.shape[0]
    starts = np.empty(m, np.int64)
    count = 0
    for k in range(m):
        if k == 0 or netuid[k] != netuid[k - 1] or mechid[k] != mechid[k - 1] or block[k] != block[k - 1]:
            starts[count] = k
            count += 1
    return starts[:count]


@_jit
def check_edge_runs(validator, miner, bounds, run_n):
    """Over the edge rows of each run of one epoch (rows bounds[r]..bounds[r+1]−1, n = run_n[r]): the first row
    whose validator (column 0) or miner (column 1) uid is not below n, as (row, column), or (−1, 0); and whether
    (validator, miner) increases strictly inside every run."""
    ordered = True
    for r in range(run_n.shape[0]):
        n = run_n[r]
        for k in range(bounds[r], bounds[r + 1]):
            if validator[k] >= n:
                return k, 0, ordered
            if miner[k] >= n:
                return k, 1, ordered
            if k > bounds[r] and (validator[k] < validator[k - 1]
                                  or validator[k] == validator[k - 1] and miner[k] <= miner[k - 1]):
                ordered = False
    return -1, 0, ordered
