"""The engine's columnar stake-weighted median equals the chain's literal pivot search (spec §2.6).

Random columns (hypothesis): ties, explicit zero scores, absent entries (score 0 for a validator of V),
validators with zero active stake (outside V), and stakes built so that a cumulative stake lands on
the minority μ = S − κ exactly, one ulp below or one ulp above (the discontinuity of §0 pitfall 4).
Expected values come from reference_yuma's literal `weighted_median`, never from the engine.
"""

from __future__ import annotations

import polars as pl
import reference_yuma as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.consensus import weighted_median_columns

SETTINGS = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A few score levels make ties likely; any I32F32 value in [0, 1] is possible too.
score_values = st.one_of(st.sampled_from([0, ref.HALF, ref.ONE, ref.ONE // 3, 1, ref.ONE - 1]),
                         st.integers(min_value=0, max_value=ref.ONE))
# None = no entry in this column (the validator still counts, with score 0, if it is in V)
entry = st.one_of(st.none(), score_values)


def engine_medians(columns: list[dict]) -> list[int]:
    """Run weighted_median_columns once over all columns; each column dict has σ, entries, S, κ."""
    rows = []
    for cid, col in enumerate(columns):
        for sigma, score in zip(col["sigma"], col["scores"], strict=True):
            if score is not None:
                rows.append({"cid": cid, "stake_bits": sigma, "score_bits": score,
                             "total_stake_bits": col["total"], "kappa_bits": col["kappa"]})
    schema = {"cid": pl.Int64, "stake_bits": pl.Int64, "score_bits": pl.Int64, "total_stake_bits": pl.Int64,
              "kappa_bits": pl.Int64}
    out = weighted_median_columns(pl.DataFrame(rows, schema=schema), group=["cid"])
    got = dict(zip(out["cid"].to_list(), out["median_bits"].to_list(), strict=True))
    return [got.get(cid, 0) for cid in range(len(columns))]


def literal_median(col: dict) -> int:
    """The chain's call: weighted_median(σ, x, all of V, μ = S − κ, lo = 0, hi = S)."""
    in_v = [i for i, s in enumerate(col["sigma"]) if s > 0]
    sigma = [col["sigma"][i] for i in in_v]
    scores = [col["scores"][i] or 0 for i in in_v]
    return ref.weighted_median(sigma, scores, list(range(len(sigma))), col["total"] - col["kappa"], 0, col["total"])


@st.composite
def chain_like_epoch(draw):
    """Active stakes (some zero) normalised as the chain does, κ from a u16; several columns."""
    m = draw(st.integers(min_value=1, max_value=10))
    active = draw(st.lists(st.one_of(st.just(0), st.integers(min_value=1, max_value=2**40)), min_size=m, max_size=m))
    active = ref.normalize(active)  # the epoch's active stake a (§2.4)
    use = ref.normalize([a for a in active if a > 0])  # σ: re-normalised over V (§2.6)
    it = iter(use)
    sigma = [next(it) if a > 0 else 0 for a in active]
    total = sum(use)
    kappa = ref.fdiv(ref.from_int(draw(st.sampled_from([0, 1, 32767, 32768, 65535]) | st.integers(0, 65535))),
                     ref.from_int(65535))
    n_cols = draw(st.integers(min_value=1, max_value=6))
    return [{"sigma": sigma, "scores": draw(st.lists(entry, min_size=m, max_size=m)), "total": total,
             "kappa": kappa, "active": active} for _ in range(n_cols)]


@SETTINGS
@given(chain_like_epoch())
def test_columnar_median_equals_pivot_search_chain_like(columns):
    expected = [literal_median(col) for col in columns]
    # the same through the column-wise sparse helper the epoch uses (zero-stake rows filtered there)
    rows = [[(c, col["scores"][i]) for c, col in enumerate(columns) if col["scores"][i] is not None]
            for i in range(len(columns[0]["active"]))]
    assert ref.weighted_median_col_sparse(columns[0]["active"], rows, len(columns), columns[0]["kappa"]) == expected
    assert engine_medians(columns) == expected


@st.composite
def kappa_boundary_column(draw):
    """σ chosen freely; κ set so that μ equals a cumulative stake of the sorted column, ± 1 ulp."""
    m = draw(st.integers(min_value=1, max_value=12))
    sigma = draw(st.lists(st.integers(min_value=1, max_value=ref.ONE // 4), min_size=m, max_size=m))
    scores = draw(st.lists(entry, min_size=m, max_size=m))
    total = sum(sigma)
    levels = sorted({s or 0 for s in scores})
    cut = draw(st.sampled_from(levels))
    cumulative = sum(s for s, x in zip(sigma, scores, strict=True) if (x or 0) <= cut)
    cumulative -= draw(st.sampled_from([0, 0, sum(s for s, x in zip(sigma, scores, strict=True) if (x or 0) == cut)]))
    mu = cumulative + draw(st.sampled_from([-1, 0, 1]))
    return {"sigma": sigma, "scores": scores, "total": total, "kappa": total - mu}


@SETTINGS
@given(st.lists(kappa_boundary_column(), min_size=1, max_size=8))
def test_columnar_median_equals_pivot_search_on_the_kappa_boundary(columns):
    assert engine_medians(columns) == [literal_median(col) for col in columns]


def test_spec_vectors_through_the_columnar_median():
    """§4.7 test_math_weighted_median rows (minority 1 − 0.51, lo 0, hi Σstake) through the engine."""
    from test_consensus_vectors import MEDIAN_CASES

    columns = []
    for stake, score, _ in MEDIAN_CASES:
        s = ref.normalize([ref.from_f32(0.51)]) if stake is None else [ref.from_f32(v) for v in stake]
        total = sum(s)
        minority = ref.from_f32(1.0) - ref.from_f32(0.51)
        columns.append({"sigma": s, "scores": [ref.from_f32(v) for v in score], "total": total,
                        "kappa": total - minority})
    assert engine_medians(columns) == [ref.from_f32(e) for _, _, e in MEDIAN_CASES]


def test_spec_column_vectors_through_the_columnar_median():
    """§4.7 test_math_weighted_median_col(_sparse): stakes re-normalised over the positive ones, κ = majority."""
    from test_consensus_vectors import COL_WEIGHTS

    cases = [([0, .75, .25, 0], COL_WEIGHTS, .24, [0, .3, .4]), ([0, .75, .25, 0], COL_WEIGHTS, .26, [0, .2, .4]),
             ([0, .75, .25, 0], COL_WEIGHTS, .76, [0, .2, .1]),
             ([0, .3, .2, .5], [[0, .1, 0], [0, .2, .4], [0, .3, .1], [0, 0, .5]], .51, [0, 0, .4])]
    for stake, weights, majority, expected in cases:
        positive = ref.normalize([ref.from_f32(s) for s in stake if s > 0])
        it = iter(positive)
        sigma = [next(it) if s > 0 else 0 for s in stake]
        columns = [{"sigma": sigma, "scores": [ref.from_f32(row[c]) or None for row in weights],
                    "total": sum(positive), "kappa": ref.from_f32(majority)} for c in range(3)]
        assert engine_medians(columns) == [ref.from_f32(v) for v in expected], (stake, majority)
