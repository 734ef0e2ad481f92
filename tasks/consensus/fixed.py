"""I32F32 fixed-point arithmetic on Int64 "bits" columns (yuma_spec.md §1).

A value x is held as its bits X = x·2^32 in an Int64 column. The chain's operations are:

- ``a ⊗ b``  (`fx_mul`): ⌊X·Y / 2^32⌋, floor toward −∞ (the i128 product shifted right).
- ``a ⊘ b``  (`fx_div`): trunc(X·2^32 / Y), and 0 when Y = 0 (`safe_div`).
- ``floor(x·65535)`` (`to_u16`): `fixed_proportion_to_u16`, clamped to [0, 65535].
- ``u ⊘ 65535`` (`u16_proportion_bits`): ⌊u·2^32 / 65535⌋.

Everything stays exact in Int64 by the 16-bit limb split of spec §1: no intermediate reaches 2^63
for the operand ranges documented on each helper. Polars `//` and `%` are floor division and
non-negative modulo (Python semantics), which is what the limb identities need for negative operands.

Two forms: Polars expressions (`fx_*`) for the per-neuron steps, and NumPy functions (`np_fx_*`) for
edge columns of tens of millions of rows, where shifts and a float-estimate-plus-exact-remainder
division are several times faster than Polars' generic integer `//`. Both are checked against Python
big-int definitions in tests/test_consensus_engine.py. The liquid-alpha transcendental
(`np_exp_safe`, `np_two_pow64_over`) iterates 30 Taylor terms over whole columns in cache-sized chunks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

ONE = 1 << 32  # 1.0 in I32F32 bits
HALF = 1 << 31
U16_MAX = 65535
_LIMB = 1 << 16

# exp(1) as substrate-fixed v0.6.0 returns it: the constant e stored as I9F23 (23 fractional bits),
# widened to 32 fractional bits (spec §0 pitfall 7; yuma_vectors.md §4.2 `test_math_exp_safe`).
EXP_ONE_BITS = 22802600 << 9
EXP_ARG_LIMIT = 20 * ONE  # exp_safe clamps its argument to [-20, 20]
TAYLOR_LAST_TERM = 31  # `for i in 2..D::frac_nbits()`: terms i = 2..31


def _e(x) -> pl.Expr:
    return pl.col(x) if isinstance(x, str) else x if isinstance(x, pl.Expr) else pl.lit(x, pl.Int64)


def fx_mul(x, y) -> pl.Expr:
    """a ⊗ b = ⌊X·Y/2^32⌋ (spec §1), for |X| ≤ 2^34 and |Y| < 2^40 (all epoch products of values ≤ 1).

    Y = y₁·2^16 + y₀ with 0 ≤ y₀ < 2^16, then ⌊X·Y/2^32⌋ = ⌊(X·y₁ + ⌊X·y₀/2^16⌋)/2^16⌋ (exact floor,
    also for negative X or Y).
    """
    x, y = _e(x), _e(y)
    return (x * (y // _LIMB) + (x * (y % _LIMB)) // _LIMB) // _LIMB


def fx_div(x, s) -> pl.Expr:
    """a ⊘ b = trunc(X·2^32/S), 0 where S = 0 (`safe_div`, spec §1), for 0 ≤ X < 2^47 and 0 ≤ S < 2^47.

    Two-stage long division: r = X·2^16, q₁ = ⌊r/S⌋, q₂ = ⌊(r mod S)·2^16/S⌋, result q₁·2^16 + q₂.
    """
    x, s = _e(x), _e(s)
    r = x * _LIMB
    return pl.when(s > 0).then((r // s) * _LIMB + ((r % s) * _LIMB) // s).otherwise(0)


def fx_normalize(x, total) -> pl.Expr:
    """`inplace_normalize`: x ⊘ Σx, leaving the vector unchanged where the sum is 0 (spec §0 pitfall 13)."""
    x, total = _e(x), _e(total)
    return pl.when(total > 0).then(fx_div(x, total)).otherwise(x)


def to_u16(x) -> pl.Expr:
    """`fixed_proportion_to_u16`: ⌊X·65535/2^32⌋ clamped to [0, 65535] (spec §1, §0 pitfall 2)."""
    return ((_e(x) * U16_MAX) // ONE).clip(0, U16_MAX).cast(pl.UInt16)


def u16_proportion_bits(u) -> pl.Expr:
    """`u16_proportion_to_fixed` / `x ⊘ 65535` of a u16: ⌊u·2^32/65535⌋ bits (spec §1)."""
    return (_e(u).cast(pl.Int64) * ONE) // U16_MAX


def rao_share(share_bits, emission_rao) -> pl.Expr:
    """⌊σ·E⌋ in I96F32 (spec §2.11): ⌊Σbits·E/2^32⌋ exactly, for 0 ≤ Σbits ≤ 2^33 and E < 2^63 rao.

    E = e₁·2^32 + e₀ gives ⌊σ·E/2^32⌋ = σ·e₁ + ⌊σ·e₀/2^32⌋, the last by the 16-bit split.
    """
    s, e = _e(share_bits), _e(emission_rao)
    return s * (e // ONE) + fx_mul(s, e % ONE)


# ---- NumPy kernels for the liquid-alpha sigmoid (whole columns at once) ----

def np_mul_wide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """⌊X·Y/2^32⌋ on Int64 arrays for |X·Y| < 2^94 and |Y| < 2^46, e.g. Taylor terms < 2^58 times
    |x| ≤ 20 (< 2^37), or k ⊗ (Δ − ½). Three limbs of X: X = x₂·2^32 + x₁·2^16 + x₀, so
    ⌊X·Y/2^32⌋ = x₂·Y + ⌊(x₁·Y + ⌊x₀·Y/2^16⌋)/2^16⌋ (exact floor, also for negative X or Y)."""
    return (x >> 32) * y + ((((x >> 16) & 0xFFFF) * y + (((x & 0xFFFF) * y) >> 16)) >> 16)


def np_two_pow64_over(s: np.ndarray) -> np.ndarray:
    """⌊2^64 / S⌋ = 1 ⊘ s in I32F32 bits, for 2^32 ≤ S < 2^61.

    A float64 estimate is corrected with the exact remainder r = 2^64 − q·S, computed in wrapping Int64
    arithmetic (2^64 ≡ 0); |r| stays far below 2^63, so the wrapped value is the true one. The estimate's
    relative error is below 2^−51 and the quotient at most 2^32, so it is off by at most one: one
    correction step suffices (checked below).
    """
    s = s.astype(np.int64, copy=False)
    q = np.floor(18446744073709551616.0 / s.astype(np.float64)).astype(np.int64)
    with np.errstate(over="ignore"):
        r = -(q * s)  # = 2^64 - q·S modulo 2^64
        q = q - (r < 0) + (r >= s)
        r = -(q * s)
    assert not ((r < 0) | (r >= s)).any(), "1/x correction did not converge"
    return q


def np_exp_safe(x: np.ndarray) -> np.ndarray:
    """subtensor `exp_safe` in I32F32 bits (spec §0 pitfall 7, §3): clamp to [−20, 20], then
    substrate-fixed v0.6.0 `exp`: exp(0) = 1, exp(1) = e as I9F23; otherwise on |x| the Taylor sum
    1 + x + Σ_{i=2..31} term_i with term_i = ⌊term_{i−1} ⊗ x⌋ ⊘ i (each step truncated), and for x < 0
    the reciprocal 1 ⊘ exp(|x|). No term overflows for |x| ≤ 20, so the error branch never fires.

    The steps run over cache-sized chunks of the column, so their temporaries stay in cache. A long
    column is first ordered by |x| (a radix sort of its top bits): each chunk then holds similar |x|, and
    `_taylor_exp` stops at the last term that can be nonzero in the chunk (small |x| need few terms).
    """
    x = np.clip(np.asarray(x, dtype=np.int64), -EXP_ARG_LIMIT, EXP_ARG_LIMIT)
    magnitude = np.abs(x)
    order = None
    if len(x) > _CHUNK:
        order = np.argsort((magnitude >> 27).astype(np.uint16), kind="stable")  # |x| < 2^37: 10 bits
        magnitude = magnitude[order]
    result = np.empty_like(x)
    for lo in range(0, len(x), _CHUNK):
        result[lo:lo + _CHUNK] = _taylor_exp(magnitude[lo:lo + _CHUNK])
    if order is not None:
        result[order] = result.copy()
    neg = x < 0
    if neg.any():
        result[neg] = np_two_pow64_over(result[neg])
    result[x == 0] = ONE
    result[x == ONE] = EXP_ONE_BITS
    return result


_CHUNK = 1 << 15


def _taylor_exp(op: np.ndarray) -> np.ndarray:
    """1 + op + Σ_{i=2..31} term_i, term_i = ⌊⌊term_{i−1}·op/2^32⌋ / i⌋ (`np_mul_wide` written in place).

    When the chunk's terms stay small enough, op is split instead (op = h·2^16 + l, fixed over the loop):
    ⌊T·op/2^32⌋ = ⌊(T·h + ⌊T·l/2^16⌋)/2^16⌋, exact while T·h < 2^63. Every truncated term is at most
    2^32·m^i/i! for m = max(op)/2^32, which bounds T before the loop (with a factor-2 margin for floats)."""
    result = op + ONE
    term = op.copy()
    part = np.empty_like(op)
    m = float(op.max()) / ONE if len(op) else 0.0
    peak = bound = m
    last = 1  # terms after `last` are 0 in the whole chunk (bound < 1/4, and they only shrink)
    for i in range(2, TAYLOR_LAST_TERM + 1):
        bound = bound * m / i
        peak = max(peak, bound)
        if bound * ONE >= 0.25:
            last = i
    high = op >> 16
    if len(op) and (peak + 1.0) * ONE * (float(high.max()) + 1.0) < 2.0 ** 62:
        low = op & 0xFFFF
        for i in range(2, last + 1):
            np.multiply(term, low, out=part)
            part >>= 16
            term *= high
            term += part
            term //= i << 16  # ⌊⌊v/2^16⌋/i⌋ = ⌊v/(2^16·i)⌋ for v ≥ 0
            result += term
        return result
    low = np.empty_like(op)
    for i in range(2, last + 1):
        np.right_shift(term, 16, out=part)
        np.bitwise_and(part, 0xFFFF, out=part)
        part *= op
        np.bitwise_and(term, 0xFFFF, out=low)
        low *= op
        low >>= 16
        part += low
        part >>= 16
        term >>= 32
        term *= op
        term += part
        term //= i
        result += term
    return result


def np_liquid_alpha(w: np.ndarray, b: np.ndarray, c: np.ndarray, k: np.ndarray,
                    lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per-edge EMA rate α (spec §3, subtensor `alpha_sigmoid`), all arguments I32F32 bits per edge
    (arrays that broadcast together, e.g. per-epoch k, lo, hi against a grid of edges).

    Δbuy = clamp(w − c, 0, 1), Δsell = clamp(b − w, 0, 1), Δ = Δbuy if w ≥ b else Δsell;
    sig = 1 ⊘ (1 ⊕ exp_safe(k ⊗ (Δ − ½))); α = clamp(lo ⊕ sig ⊗ (hi − lo), lo, hi).
    """
    diff_buy = np.clip(w - c, 0, ONE)
    diff_sell = np.clip(b - w, 0, ONE)
    delta = np.where(w >= b, diff_buy, diff_sell)
    x = np_mul_wide(k, delta - HALF)
    sig = np_two_pow64_over(ONE + np_exp_safe(x.ravel()).reshape(x.shape))
    span = hi - lo
    # sig ⊗ (hi − lo) by the 16-bit split (both ≤ 2^32).
    prod = (sig * (span >> 16) + ((sig * (span & 0xFFFF)) >> 16)) >> 16
    return np.clip(lo + prod, lo, hi)


# ---- The same operations on NumPy Int64 arrays, for edge columns (tens of millions of rows) ----
# Shifts are floor divisions by powers of two and `& 0xFFFF` the non-negative remainder, so these are
# the identities above.

def np_fx_mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """a ⊗ b = ⌊X·Y/2^32⌋ for |X| ≤ 2^34, |Y| < 2^40 (as `fx_mul`)."""
    return (x * (y >> 16) + ((x * (y & 0xFFFF)) >> 16)) >> 16


def np_fx_div(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a ⊘ b = trunc(X·2^32/S), 0 where S = 0, for 0 ≤ X, S < 2^47 and a quotient below 2^50.

    A float64 estimate of the quotient is off by at most one; the exact remainder X·2^32 − q·S is small,
    so its value in wrapping Int64 arithmetic is the true one and corrects q (integer division is slow).
    """
    positive = s > 0
    all_positive = bool(positive.all())
    if not all_positive:
        x, s = np.where(positive, x, 0), np.where(positive, s, 1)
    q = (x.astype(np.float64) * 4294967296.0 / s).astype(np.int64)  # truncation of a value ≥ 0
    with np.errstate(over="ignore"):
        r = (x << 32) - q * s  # exact: |r| ≤ 2·S
    q += r >= s
    q -= r < 0
    return q


def np_fx_div_by(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """`np_fx_div` where `s` is a small array broadcast over `x` (a sum or maximum per row or column of a
    grid), for 0 ≤ X < 2^47, 0 ≤ S < 2^47 and quotients Q = X·2^32/S below 2^40 (normalisations: ≤ 2^32).

    The reciprocal is taken once per divisor and scaled down by (1 − 2^−45), so each entry costs a
    multiplication instead of a division and the estimate is always a little low: with the float
    roundings (relative error < 3·2^−53) it lies in (Q − 2^−4, Q) for 0 < Q < 2^40 (and is 0 for Q = 0),
    so its truncation is ⌊Q⌋ or ⌊Q⌋ − 1, and one exact remainder test corrects it. The remainder
    X·2^32 − q·S is small, so its value in wrapping Int64 arithmetic is the true one."""
    positive = s > 0
    divisor = np.where(positive, s, 1)
    with np.errstate(over="ignore", invalid="ignore"):  # entries over S = 0 are discarded below
        q = (x.astype(np.float64) * ((4294967296.0 * (1.0 - 2.0 ** -45)) / divisor)).astype(np.int64)
        r = (x << 32) - q * divisor  # exact: 0 ≤ r < 2·S
    q += r >= divisor
    if not positive.all():
        q *= positive
    return q


def np_fx_normalize(x: np.ndarray, total: np.ndarray) -> np.ndarray:
    """x ⊘ Σx where the sum is > 0, else x unchanged (as `fx_normalize`)."""
    return np.where(total > 0, np_fx_div(x, total), x)


def np_int_normalize(v: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Normalise integer-valued entries (raw u16 weights or classic bonds, from_int(v)): the 2^32 factor
    cancels, so (v·2^32) ⊘ (Σv·2^32) = ⌊v·2^32/Σv⌋ (spec §1), the same quotient as v ⊘ Σv; 0 where
    Σv = 0 (then every v is 0)."""
    return np_fx_div(v, total)


def np_to_u16(x: np.ndarray) -> np.ndarray:
    """floor(x·65535) clamped to [0, 65535] (as `to_u16`)."""
    return np.clip((x * U16_MAX) >> 32, 0, U16_MAX).astype(np.uint16)


def np_u16_proportion_bits(u: np.ndarray) -> np.ndarray:
    """⌊u·2^32/65535⌋ (as `u16_proportion_bits`) for 0 ≤ u ≤ 65535, without a division: 2^32 = 65535·65537 + 1,
    so ⌊u·2^32/65535⌋ = u·65537 + ⌊u/65535⌋, and ⌊u/65535⌋ is 1 only at u = 65535."""
    u = u.astype(np.int64)
    return u * 65537 + (u == U16_MAX)
