"""The compiled kernels' scalar helpers (tasks/consensus/epoch_kernels.py) equal the exact NumPy column forms
of fixed.py value for value, over the operand ranges the epoch uses (edge cases included). The kernels'
epoch steps are checked against the literal reference by the random-epoch tests, which force the dense
path (test_consensus_engine.test_dense_and_sparse_edge_paths_each_equal_the_reference)."""

from __future__ import annotations

import numpy as np

from tasks.consensus import epoch_kernels as k
from tasks.consensus import fixed

ONE = 1 << 32
rng = np.random.default_rng(16)


def _each(f, *columns):
    return np.array([f(*(int(c[i]) for c in columns)) for i in range(len(columns[0]))], np.int64)


def test_mul_div_and_u16_conversions():
    x = np.r_[rng.integers(-ONE, 2**34, 3000), [0, ONE, -ONE, 2**34]]
    y = np.r_[rng.integers(0, 2**40, 3000), [0, ONE, 1, 2**40 - 1]]
    assert (_each(k.fx_mul, x, y) == fixed.np_fx_mul(x, y)).all()
    num = np.r_[rng.integers(0, 2**47, 3000), [0, 1, 2**47 - 1, 5]]
    den = np.r_[rng.integers(0, 2**47, 3000), [0, 1, 2**47 - 1, 0]]
    den[::7] = num[::7] + rng.integers(0, 1000, len(num[::7]))  # quotients around 1.0, the common case
    small = num <= den * 2**10  # quotients below 2^42
    num, den = num[small], den[small]
    assert (_each(k.fx_div, num, den) == fixed.np_fx_div(num, den)).all()
    bits = np.r_[rng.integers(-ONE, 2 * ONE, 2000), [0, ONE - 1, ONE, -1]]
    assert (_each(k.to_u16, bits) == fixed.np_to_u16(bits).astype(np.int64)).all()
    u = np.arange(0, 65536)
    assert (_each(k.u16_proportion_bits, u) == fixed.np_u16_proportion_bits(u)).all()


def test_wide_multiply_reciprocal_exp_and_the_liquid_alpha_sigmoid():
    x = rng.integers(0, 2**58, 2000)
    y = rng.integers(-(2**36), 2**36, 2000)
    assert (_each(k.mul_wide, x, y) == fixed.np_mul_wide(x, y)).all()
    s = np.r_[rng.integers(2**32, 2**61, 2000), [2**32, 2**33, 2**60, 2**61 - 1]]
    assert (_each(k.two_pow64_over, s) == fixed.np_two_pow64_over(s)).all()
    e = np.r_[rng.integers(-25 * ONE, 25 * ONE, 3000), [0, ONE, -ONE, 20 * ONE, -20 * ONE, 1, -1]]
    assert (_exp_many(e) == fixed.np_exp_safe(e)).all()
    # The next Taylor term over its whole operand range, against Python's exact integers.
    term = np.r_[rng.integers(0, 2**58, 1500), rng.integers(0, 2**36, 1500), [0, 1, 2**58 - 1, 2**32]]
    op = np.r_[rng.integers(0, 20 * ONE + 1, 3000), [20 * ONE, ONE, 0, ONE - 1]]
    for i in range(2, 32):
        got = _each(lambda t, o, i=i: k.next_taylor_term(t, o, i, 1.0 / (i * 2.0**32), i << 32), term, op)
        assert got.tolist() == [int(t) * int(o) // (i << 32) for t, o in zip(term, op, strict=True)]
    n = 3000
    w, b, c = (rng.integers(0, ONE + 1, n) for _ in range(3))
    w[::5] = b[::5]  # ties: w ≥ b takes the buy side
    steep = rng.choice([-(32768 * ONE) // 100, 0, 10 * ONE, (32767 * ONE) // 100], n)
    lo = rng.integers(ONE // 40, ONE, n)
    hi = np.minimum(lo + rng.integers(0, ONE, n), ONE)
    exp_values = _exp_many(_each(k.liquid_alpha_exp_argument, w, b, c, steep))
    alpha = _each(k.liquid_alpha_from_exp, exp_values, lo, hi)
    assert (alpha == fixed.np_liquid_alpha(w, b, c, steep, lo, hi)).all()


def _exp_many(x):
    out, magnitude, term = (np.empty_like(x) for _ in range(3))
    k.exp_safe_many(x, out, magnitude, term)
    return out


def test_stake_normalisation_is_exact_to_the_last_bit_over_the_whole_stake_range():
    """§2.2 with Python's exact integers: U = Â·2^32 + Θ·tw, threshold on ⌊U/2^32⌋ (owner exempt), s = ⌊U·2^32/ΣU⌋,
    StakeWeight = floor(s·65535); stakes up to the 2^63 epoch total, every tao weight shape, ties and zeros."""
    from tasks.consensus import neuron_kernels as nk

    for case in range(300):
        n = int(rng.integers(1, 40))
        scale = int(rng.choice([2**20, 2**40, 2**56, 2**62 // n]))
        alpha = rng.integers(0, scale, n) // rng.choice([1, 3], n)
        tao = rng.integers(0, scale, n) * (rng.random(n) < 0.5)
        if case % 7 == 0:
            alpha[:] = alpha[0]  # ties
        tw = int(rng.choice([0, 1, ONE // 19, ONE - 1, ONE]))
        threshold = [0, scale // 4, 2**64 - 1][case % 3]
        owner = np.zeros(n, np.bool_)
        owner[int(rng.integers(0, n))] = case % 3 == 0
        combined = [int(a) * ONE + int(t) * tw for a, t in zip(alpha, tao, strict=True)]
        combined = [0 if u // ONE < threshold and not o else u for u, o in zip(combined, owner, strict=True)]
        total = sum(combined)
        expected = [u * ONE // total if total else 0 for u in combined]

        bits, weight = np.zeros(n, np.int64), np.zeros(n, np.int64)
        nk.stake(alpha.astype(np.int64), tao.astype(np.int64), tw, np.uint64(threshold), owner, bits, weight)
        assert bits.tolist() == expected, case
        assert weight.tolist() == [min(max(s * 65535 >> 32, 0), 65535) for s in expected]


def test_division_by_a_reciprocal_equals_the_exact_quotient():
    """`div_by` (a float estimate from the divisor's reciprocal and one exact remainder test) equals ⌊X·2^32/S⌋ —
    Python's integers — for 0 ≤ X < 2^47 with quotients below 2^40: sums and maxima of rows and columns as the
    kernels divide by them, exact multiples, quotients just under and over an integer, divisors 1 and 0."""
    s = np.r_[rng.integers(1, 2**47, 2000), rng.integers(1, 2**20, 1000), [1, 2, 3, ONE, ONE + 1, 2**47 - 1, 0]]
    quotient = np.r_[rng.integers(0, 2**40, 1500), rng.integers(0, 2**33, 1507)]
    x = np.minimum(s * quotient // ONE + rng.integers(-2, 3, len(s)), 2**47 - 1).clip(0)
    x[::5] = s[::5]  # X = S: exactly 1.0
    x[1::7] = (s[1::7] * 3) // 2  # an exact multiple of half the divisor
    keep = (s == 0) | ((x * 1.0) * 2**32 / np.maximum(s, 1) < 2**40)
    x, s = x[keep], s[keep]
    got = _each(lambda a, b: k.div_by(a, b, k.reciprocal(b)), x, s)
    assert got.tolist() == [(int(a) << 32) // int(b) if b else 0 for a, b in zip(x, s, strict=True)]
