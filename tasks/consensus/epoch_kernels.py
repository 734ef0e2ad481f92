"""Compiled kernels for the epoch's edge steps on a dense grid (numba): one pass per step and epoch instead
of many whole-array NumPy passes, the same exact integer recipe (fixed.py) entry for entry.

Every helper here is the scalar form of its NumPy counterpart in `fixed.py`, with the same operand ranges
(I32F32 bits in int64; 16-bit limb splits keep every intermediate below 2^63). `dense_epoch_terms` runs
§2.5–§2.10 of `epoch_dense.dense_edge_steps` for each epoch of a grid chunk. The kernels release the GIL
(`nogil`), so chunks run in parallel on the engine's own threads (`epoch.EDGE_STEP_THREADS`) with no
threading layer of numba's (whose default one may not be entered from two threads at once). Compiled once
per machine (`cache=True`: a second process loads the compiled code).
"""

from __future__ import annotations

import numba as nb
import numpy as np

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
def exp_safe(x):
    """subtensor `exp_safe` (`np_exp_safe`): clamp to [−20, 20]; exp(0) = 1, exp(1) = e as I9F23; else the
    Taylor sum on |x| (terms i = 2..31, each ⌊term ⊗ |x|⌋ / i) and, for x < 0, its reciprocal."""
    if x > EXP_ARG_LIMIT:
        x = EXP_ARG_LIMIT
    elif x < -EXP_ARG_LIMIT:
        x = -EXP_ARG_LIMIT
    if x == 0:
        return ONE
    if x == ONE:
        return EXP_ONE_BITS
    op = -x if x < 0 else x
    result = op + ONE
    term = op
    for i in range(2, TAYLOR_LAST_TERM + 1):
        term = mul_wide(term, op) // i
        if term == 0:
            break  # every later term is 0 too
        result += term
    if x < 0:
        return two_pow64_over(result)
    return result


@_jit
def liquid_alpha(w, b, c, k, lo, hi):
    """The per-edge EMA rate α of §3 (`np_liquid_alpha`)."""
    if w >= b:
        delta = w - c
    else:
        delta = b - w
    delta = 0 if delta < 0 else ONE if delta > ONE else delta
    sig = two_pow64_over(ONE + exp_safe(mul_wide(k, delta - HALF)))
    span = hi - lo
    alpha = lo + ((sig * (span >> 16) + ((sig * (span & 0xFFFF)) >> 16)) >> 16)
    return lo if alpha < lo else hi if alpha > hi else alpha


# ---------------------------------------------------------------- §2.5–§2.10 on a dense grid

@_jit
def dense_epoch_terms(rows, cols, raw_w, w_present, raw_b, b_present,
                      last_update, registered, permit_mask, is_owner, commit_block, last_tempo,
                      median_stake, active_stake, liquid_source, previous_consensus,
                      median_total, kappa, beta, yuma3, liquid_enabled, ema_alpha, steepness, alpha_low,
                      alpha_high, consensus_out, trust_out, incentive_out, dividend_out, stored_out):
    """Per epoch e of the grid: `rows`/`cols` the grid's uids; raw_w/raw_b [E, R, C] the stored
    u16 weights and bonds with their presence; per-neuron inputs [E, n]; per-epoch inputs [E]. Writes the
    consensus, validator trust, incentive and raw dividend bits per neuron [E, n] and the stored u16 bonds
    [E, R, C] (before the new-permit mask)."""
    n_epochs, n_rows, n_cols = raw_w.shape
    n = last_update.shape[1]
    row_bits = 1
    while (1 << row_bits) < n_rows:
        row_bits += 1
    for e in range(n_epochs):
        w = np.zeros((n_rows, n_cols), np.int64)
        present = np.zeros((n_rows, n_cols), np.bool_)
        # §2.5: masked (permit rows, diagonal but the owner's, outdated, commit-reveal), row-normalised.
        for r in range(n_rows):
            i = rows[r]
            total = 0
            for c in range(n_cols):
                j = cols[c]
                reg = registered[e, j]
                p = (w_present[e, r, c] and permit_mask[e, i] and last_update[e, i] > reg
                     and commit_block[e, i] >= reg and (i != j or is_owner[e, i]))
                present[r, c] = p
                if p:
                    w[r, c] = raw_w[e, r, c]
                    total += raw_w[e, r, c]
            scale = reciprocal(total)
            for c in range(n_cols):
                w[r, c] = div_by(w[r, c], total, scale)

        # §2.6 consensus: the stake-weighted median of each column over V (rows with σ > 0).
        packed = np.empty(n_rows, np.int64)
        for c in range(n_cols):
            for r in range(n_rows):
                score = w[r, c] if median_stake[e, rows[r]] > 0 else 0
                packed[r] = (score << row_bits) | r
            packed.sort()
            minority = median_total[e] - kappa[e]
            running = 0
            for r in range(n_rows):
                if (packed[r] >> row_bits) > 0:
                    running += median_stake[e, rows[packed[r] & ((1 << row_bits) - 1)]]
            zero_mass = median_total[e] - running
            median = packed[n_rows - 1] >> row_bits
            running = 0
            for r in range(n_rows):
                score = packed[r] >> row_bits
                if score > 0:
                    running += median_stake[e, rows[packed[r] & ((1 << row_bits) - 1)]]
                    if running + zero_mass - minority > 0:
                        median = score
                        break
            if zero_mass > 0 and zero_mass > minority:
                median = 0
            consensus_out[e, cols[c]] = median

        # §2.7 clipping, trust, rank, incentive (normalised over the epoch's n uids).
        clipped = np.empty((n_rows, n_cols), np.int64)
        rank = np.zeros(n, np.int64)
        for r in range(n_rows):
            i = rows[r]
            trust = 0
            for c in range(n_cols):
                v = min(w[r, c], consensus_out[e, cols[c]])
                clipped[r, c] = v
                trust += v
                rank[cols[c]] += fx_mul(v, active_stake[e, i])
            trust_out[e, i] = trust
        rank_total = 0
        for j in range(n):
            rank_total += rank[j]
        for j in range(n):
            incentive_out[e, j] = fx_div(rank[j], rank_total) if rank_total > 0 else rank[j]

        # §2.8 bond weights W^B (with their entries) and the masked stored bonds.
        b_e = beta[e]
        wb = np.zeros((n_rows, n_cols), np.int64)
        wb_present = np.zeros((n_rows, n_cols), np.bool_)
        old = np.zeros((n_rows, n_cols), np.int64)
        for r in range(n_rows):
            i = rows[r]
            for c in range(n_cols):
                j = cols[c]
                if present[r, c]:
                    cj = consensus_out[e, j]
                    kept = w[r, c] == 0 or cj != 0
                    interpolated = w[r, c] + fx_mul((clipped[r, c] if kept else 0) - w[r, c], b_e)
                    if b_e == 0:
                        wb_present[r, c] = True
                        wb[r, c] = w[r, c]
                    elif b_e == ONE:
                        wb_present[r, c] = kept
                        wb[r, c] = clipped[r, c] if kept else 0
                    elif interpolated > 0:
                        wb_present[r, c] = True
                        wb[r, c] = interpolated
                if b_present[e, r, c] and last_tempo[e, i] > registered[e, j]:
                    old[r, c] = raw_b[e, r, c]

        ema = np.zeros((n_rows, n_cols), np.int64)
        col_sum = np.zeros(n_cols, np.int64)
        if not yuma3[e]:
            # §2.9 classic: B = colnorm(raw u16); ΔB = colnorm(W^B ∘ a); E = colnorm(max(0, α_b ΔB + (1 − α_b) B)).
            a_b = ema_alpha[e]
            old_sum = np.zeros(n_cols, np.int64)
            for r in range(n_rows):
                for c in range(n_cols):
                    old_sum[c] += old[r, c]
                    ema[r, c] = fx_mul(wb[r, c], active_stake[e, rows[r]])  # ΔB before normalising
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
                    if ema[r, c] > col_max[c]:
                        col_max[c] = ema[r, c]
            for c in range(n_cols):
                old_scale[c] = reciprocal(col_max[c])
            for r in range(n_rows):
                d = 0
                for c in range(n_cols):
                    d += fx_mul(ema[r, c], incentive_out[e, cols[c]])
                    stored_out[e, r, c] = to_u16(div_by(ema[r, c], col_max[c], old_scale[c]))
                dividend_out[e, rows[r]] = d
        else:
            # §2.10 Yuma3: B = u16 ⊘ 65535; liquid α per W^B entry (§3) or α_b; Ê = colnorm(E); d = (Ê·I) ⊗ a.
            any_consensus = False
            for j in range(n):
                if consensus_out[e, j] > 0:
                    any_consensus = True
            liquid = liquid_enabled[e] and any_consensus
            a_b = ema_alpha[e]
            for r in range(n_rows):
                for c in range(n_cols):
                    b_v = u16_proportion_bits(old[r, c])
                    if liquid:
                        if wb_present[r, c]:
                            j = cols[c]
                            source = liquid_source[e, j]
                            cj = consensus_out[e, j]
                            if source == 1 or source == 2 and previous_consensus[e, j] > cj:
                                cj = previous_consensus[e, j]
                            alpha = liquid_alpha(wb[r, c], b_v, cj, steepness[e], alpha_low[e], alpha_high[e])
                            gain = fx_mul(alpha, wb[r, c])
                            v = fx_mul(b_v, ONE - alpha) + (gain if gain > 0 else 0)
                            v = ONE if v > ONE else v
                        else:
                            v = 0
                    else:
                        v = fx_mul(wb[r, c], a_b) + fx_mul(b_v, ONE - a_b)
                    v = v if v > 0 else 0
                    ema[r, c] = v
                    col_sum[c] += v
            sum_scale = np.empty(n_cols)
            for c in range(n_cols):
                sum_scale[c] = reciprocal(col_sum[c])
            for r in range(n_rows):
                value = 0
                for c in range(n_cols):
                    value += fx_mul(div_by(ema[r, c], col_sum[c], sum_scale[c]), incentive_out[e, cols[c]])
                    stored_out[e, r, c] = to_u16(ema[r, c])
                dividend_out[e, rows[r]] = fx_mul(value, active_stake[e, rows[r]])
