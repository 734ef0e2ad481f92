"""The epoch's per-neuron steps, compiled (numba): §2.1–§2.4 before the edge steps, dividends and §2.11 after.

Each step is named after the quantity it makes and works on one epoch's rows (uids 0..n−1, a slice of the
batch's `nid` order); `neuron_steps_before_edges` and `neuron_steps_after_edges` run them in the spec's
order over every epoch of the batch (`offset`/`count`: each epoch's first row and n). Same exact integer
recipe as the chain (spec §1), in int64 I32F32 bits; the combined stake, which needs 97 bits, is a pair
(hi, lo) with U = hi·2^32 + lo, and its normalisation divides 128-bit numbers exactly (`stake_share`).
"""

from __future__ import annotations

import numpy as np

from tasks.consensus.epoch_kernels import ONE, _jit, fx_div, fx_mul, to_u16

LOW_32 = (1 << 32) - 1
U64_LOW_32 = np.uint64(LOW_32)
U64_32 = np.uint64(32)


# ---------------------------------------------------------------- §2.1 – §2.4

@_jit
def activity(last_update, activity_cutoff, current_block, active):
    """§2.1: inactive_i ⇔ LU_i + cutoff < b (strict); Active = ¬inactive."""
    for i in range(last_update.shape[0]):
        active[i] = not (last_update[i] + activity_cutoff < current_block)


@_jit
def combined_stake(alpha_stake, tao_stake, tao_weight_bits):
    """§2.2's U = Â·2^32 + Θ·tw (I96F32 bits) as (hi, lo), U = hi·2^32 + lo, lo < 2^32, for Â, Θ < 2^63 and
    tw ≤ 2^32 (hi < 2^63: the epoch's Σ(Â + Θ) is below 2^63, validated). Θ·tw by 32-bit halves of Θ."""
    tao_high, tao_low = tao_stake >> 32, tao_stake & LOW_32
    low_product = np.uint64(tao_low) * np.uint64(tao_weight_bits)  # < 2^64
    return (alpha_stake + tao_high * tao_weight_bits + np.int64(low_product >> U64_32),
            np.int64(low_product & U64_LOW_32))


@_jit
def times_at_most(q, d_hi, d_mid, d_low, n3, n2, n1):
    """Whether q·D ≤ N for q ≤ 2^32, D = d_hi·2^64 + d_mid·2^32 + d_low (each part below 2^32 but d_hi,
    below 2^31) and N = n3·2^96 + n2·2^64 + n1·2^32, compared 32-bit limb by limb."""
    uq = np.uint64(q)
    p0, p1, p2 = uq * np.uint64(d_low), uq * np.uint64(d_mid), uq * np.uint64(d_hi)
    limb0 = p0 & U64_LOW_32
    t = (p0 >> U64_32) + (p1 & U64_LOW_32)
    limb1 = t & U64_LOW_32
    t = (t >> U64_32) + (p1 >> U64_32) + (p2 & U64_LOW_32)
    limb2 = t & U64_LOW_32
    limb3 = (t >> U64_32) + (p2 >> U64_32)
    for mine, theirs in ((limb3, np.uint64(n3)), (limb2, np.uint64(n2)), (limb1, np.uint64(n1)),
                         (limb0, np.uint64(0))):
        if mine != theirs:
            return mine < theirs
    return True


@_jit
def stake_share(hi, lo, total_hi, total_lo):
    """s = ⌊U·2^32 / ΣU⌋ (I64F64 normalisation truncated to I32F32) for U = hi·2^32 + lo ≤ ΣU = total_hi·2^32 +
    total_lo, ΣU > 0: a float estimate is within one of the quotient (≤ 2^32); exact 128-bit products decide."""
    estimate = (float(hi) * 4294967296.0 + float(lo)) / (float(total_hi) * 4294967296.0 + float(total_lo))
    q = min(np.int64(estimate * 4294967296.0), ONE)
    d_hi, d_mid, d_low = total_hi >> 32, total_hi & LOW_32, total_lo
    n3, n2, n1 = hi >> 32, hi & LOW_32, lo
    if not times_at_most(q, d_hi, d_mid, d_low, n3, n2, n1):
        q -= 1
    elif q < ONE and times_at_most(q + 1, d_hi, d_mid, d_low, n3, n2, n1):
        q += 1
    return q


@_jit
def stake(alpha_stake, tao_stake, tao_weight_bits, stake_threshold, is_owner, stake_bits, stake_weight):
    """§2.2: combined stake U = Â·2^32 + Θ·tw; ⌊U⌋ < StakeThreshold → 0 except for the owner;
    s = ⌊U·2^32/ΣU⌋, or 0 if ΣU = 0. StakeWeight = floor(s·65535)."""
    n = alpha_stake.shape[0]
    hi = np.empty(n, np.int64)
    lo = np.empty(n, np.int64)
    total_hi, total_lo = 0, 0
    for i in range(n):
        hi[i], lo[i] = combined_stake(alpha_stake[i], tao_stake[i], tao_weight_bits)
        if np.uint64(hi[i]) < stake_threshold and not is_owner[i]:
            hi[i], lo[i] = 0, 0
        total_hi += hi[i]
        total_lo += lo[i]
    total_hi += total_lo >> 32
    total_lo &= LOW_32
    for i in range(n):
        stake_bits[i] = stake_share(hi[i], lo[i], total_hi, total_lo) if total_hi > 0 or total_lo > 0 else 0
        stake_weight[i] = to_u16(stake_bits[i])


@_jit
def validator_permits(validator_permit, is_owner, stake_bits, max_allowed_validators, permit_mask, new_permit):
    """§2.3: this epoch masks with the stored permit P' (owner forced on); the new permits NP are the top-K
    nonzero stakes: stable ascending sort (ties in uid order), the first n−K lose; owner forced."""
    n = stake_bits.shape[0]
    order = np.argsort(stake_bits, kind="mergesort")
    for position in range(n):
        i = order[position]
        new_permit[i] = (stake_bits[i] != 0 and position >= n - max_allowed_validators) or is_owner[i]
    for i in range(n):
        permit_mask[i] = validator_permit[i] or is_owner[i]


@_jit
def normalize(values):
    """`inplace_normalize`: x ⊘ Σx, the vector unchanged where the sum is 0; returns the new sum."""
    total = 0
    for i in range(values.shape[0]):
        total += values[i]
    if total == 0:
        return 0
    new_total = 0
    for i in range(values.shape[0]):
        values[i] = fx_div(values[i], total)
        new_total += values[i]
    return new_total


@_jit
def active_stake(stake_bits, active, permit_mask, active_stake_bits):
    """§2.4: a_i = s_i if active and permitted (P'), else 0; then a ⊘ Σa (skipped if Σa = 0)."""
    for i in range(stake_bits.shape[0]):
        active_stake_bits[i] = stake_bits[i] if active[i] and permit_mask[i] else 0
    normalize(active_stake_bits)


@_jit
def median_stake(active_stake_bits, median_stake_bits):
    """§2.6: the median's stake σ = a ⊘ Σa over V = {a > 0} (re-normalised once more); returns S = Σσ."""
    median_stake_bits[:] = active_stake_bits
    total = normalize(median_stake_bits)
    if total == 0:  # nothing to normalise: S is the sum of the unchanged vector
        for i in range(median_stake_bits.shape[0]):
            total += median_stake_bits[i]
    return total


@_jit
def neuron_steps_before_edges(offset, count, current_block, activity_cutoff, tao_weight_bits, stake_threshold,
                              max_allowed_validators, owner_uid, last_update, alpha_stake, tao_stake,
                              validator_permit, active, is_owner, stake_bits, stake_weight, permit_mask,
                              new_permit, active_stake_bits, median_stake_bits, median_total_bits):
    """§2.1–§2.4 (and the median's stake of §2.6) for every epoch e, rows offset[e]..offset[e]+count[e]−1."""
    for e in range(offset.shape[0]):
        rows = slice(offset[e], offset[e] + count[e])
        for i in range(count[e]):
            is_owner[offset[e] + i] = i == owner_uid[e]
        activity(last_update[rows], activity_cutoff[e], current_block[e], active[rows])
        stake(alpha_stake[rows], tao_stake[rows], tao_weight_bits[e], stake_threshold[e], is_owner[rows],
              stake_bits[rows], stake_weight[rows])
        validator_permits(validator_permit[rows], is_owner[rows], stake_bits[rows], max_allowed_validators[e],
                          permit_mask[rows], new_permit[rows])
        active_stake(stake_bits[rows], active[rows], permit_mask[rows], active_stake_bits[rows])
        median_total_bits[rows] = median_stake(active_stake_bits[rows], median_stake_bits[rows])


# ---------------------------------------------------------------- dividends, §2.11 emission

@_jit
def rao_share(share_bits, emission_rao):
    """⌊σ·E⌋ in I96F32: σ·e₁ + ⌊σ·e₀/2^32⌋ for E = e₁·2^32 + e₀ (σ ≤ 2^32, E < 2^63)."""
    return share_bits * (emission_rao >> 32) + fx_mul(share_bits, emission_rao & LOW_32)


@_jit
def emission(incentive_bits, dividend_bits, active_stake_bits, stake_bits, emission_rao, server_emission,
             validator_emission, combined_emission):
    """§2.11: c = I ⊕ D. If Σc ≠ 0: server σS = I ⊘ Σc, validator σV = D ⊘ Σc, combined σC = c ⊘ Σc.
    Else (emergency) σS = I, σV = σC = a if Σa ≠ 0, else s. Rao: ⌊σ·E⌋ each."""
    n = incentive_bits.shape[0]
    total, active_total = 0, 0
    for i in range(n):
        total += incentive_bits[i] + dividend_bits[i]
        active_total += active_stake_bits[i]
    for i in range(n):
        if total != 0:
            server = fx_div(incentive_bits[i], total)
            validator = fx_div(dividend_bits[i], total)
            combined = fx_div(incentive_bits[i] + dividend_bits[i], total)
        else:
            server = incentive_bits[i]
            validator = combined = active_stake_bits[i] if active_total != 0 else stake_bits[i]
        server_emission[i] = rao_share(server, emission_rao)
        validator_emission[i] = rao_share(validator, emission_rao)
        combined_emission[i] = rao_share(combined, emission_rao)


@_jit
def neuron_steps_after_edges(offset, count, emission_rao, incentive_bits, raw_dividend_bits, active_stake_bits,
                             stake_bits, dividend_bits, server_emission, validator_emission, combined_emission):
    """§2.9.5 / §2.10.4 dividends D = d ⊘ Σd (each epoch's d comes from one bond model), then §2.11, per epoch."""
    dividend_bits[:] = raw_dividend_bits
    for e in range(offset.shape[0]):
        rows = slice(offset[e], offset[e] + count[e])
        normalize(dividend_bits[rows])
        emission(incentive_bits[rows], dividend_bits[rows], active_stake_bits[rows], stake_bits[rows],
                 emission_rao[e], server_emission[rows], validator_emission[rows], combined_emission[rows])
