"""The paired two-level bootstrap of a difference: loop reference, strata, coverage and power."""

from __future__ import annotations

import numpy as np
import pytest

from riskrl.evaluation.metrics import paired_bootstrap_diff, verdict
from riskrl.evaluation.passk import pass_at_k

KS = np.array([1, 4, 16])
STUDIES = 200
# 200 independent studies: the number of CIs covering the truth is Binomial(200, 0.95), sd
# sqrt(0.95 * 0.05 / 200) = 0.0154; 3 sd either side -> [0.904, 0.996].
COVER_LO, COVER_HI = 0.95 - 3 * 0.0154, 0.95 + 3 * 0.0154


def loop_reference(a, b, strata, n_boot, seed):
    """The bootstrap one resample at a time, drawing the same random numbers in the same order."""
    rng = np.random.default_rng(seed)
    labels = np.unique(strata)
    members = [np.flatnonzero(strata == g) for g in labels]
    draws = [rng.integers(0, len(idx), size=(n_boot, len(idx))) for idx in members]
    sa = rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    sb = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))
    dist = np.zeros((n_boot, a.shape[2]))
    for r in range(n_boot):
        per_stratum = []
        for idx, d in zip(members, draws, strict=True):
            probs = idx[d[r]]  # this resample's problems of the stratum, repeats included
            va = np.mean([a[s, probs].mean(0) for s in sa[r]], axis=0)
            vb = np.mean([b[s, probs].mean(0) for s in sb[r]], axis=0)
            per_stratum.append(va - vb)
        dist[r] = np.mean(per_stratum, axis=0)
    return dist


def test_vectorised_bootstrap_equals_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 17, 2)), rng.random((2, 17, 2))
    strata = np.array(["x"] * 5 + ["y"] * 12)
    res = paired_bootstrap_diff(a, b, strata=strata, n_boot=300, seed=11)
    np.testing.assert_allclose(res["dist"], loop_reference(a, b, strata, 300, 11), rtol=0, atol=1e-12)
    want = np.mean(
        [a[:, :5].mean((0, 1)) - b[:, :5].mean((0, 1)), a[:, 5:].mean((0, 1)) - b[:, 5:].mean((0, 1))], 0
    )
    np.testing.assert_allclose(res["diff"], want, atol=1e-12)
    lo, hi = np.quantile(res["dist"], [0.025, 0.975], axis=0)
    np.testing.assert_allclose(res["ci_low"], lo) and np.testing.assert_allclose(res["ci_high"], hi)


def test_pairing_cancels_problem_difficulty_and_strata_weigh_the_same():
    rng = np.random.default_rng(0)
    difficulty = rng.random(40)
    # the variant is exactly 0.1 better on every problem of every seed: the paired CI is a point
    res = paired_bootstrap_diff(np.tile(difficulty + 0.1, (3, 1)), np.tile(difficulty, (2, 1)), n_boot=500)
    assert res["diff"] == pytest.approx(0.1) and res["ci_low"] == pytest.approx(0.1)
    assert res["ci_high"] == pytest.approx(0.1)
    # 2 problems with difference 1 in stratum A, 8 with 0 in B: the macro is 0.5, not 0.2
    a, b = np.r_[np.ones(2), np.zeros(8)][None], np.zeros((1, 10))
    res = paired_bootstrap_diff(a, b, strata=np.r_[np.zeros(2), np.ones(8)], n_boot=200)
    assert (res["diff"], res["ci_low"], res["ci_high"]) == pytest.approx((0.5, 0.5, 0.5))
    # unpaired view of the same data would be noisy; the paired one sees no spread at all
    assert paired_bootstrap_diff(a, b, n_boot=200)["ci_high"] > 0.2


def test_seeded_and_deterministic():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 30, 3)), rng.random((3, 30, 3))
    one, two = paired_bootstrap_diff(a, b, seed=5), paired_bootstrap_diff(a, b, seed=5)
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert not np.array_equal(one["dist"], paired_bootstrap_diff(a, b, seed=6)["dist"])
    flat = paired_bootstrap_diff(a[..., 0], b[..., 0], seed=5)
    assert flat["diff"].shape == () and flat["dist"].shape == (2000,)


def test_one_line_errors():
    with pytest.raises(ValueError, match=r"same problems and metrics; got \(2, 5, 1\) and \(2, 6, 1\)"):
        paired_bootstrap_diff(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="must be finite"):
        paired_bootstrap_diff(np.full((1, 3), np.nan), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"one label per problem \(3\)"):
        paired_bootstrap_diff(np.zeros((1, 3)), np.zeros((1, 3)), strata=np.zeros(4))
    assert [verdict(0.01, 0.2), verdict(-0.2, -0.01), verdict(-0.1, 0.1), verdict(0.0, 0.3)] == [
        "better", "worse", "no clear difference", "no clear difference",
    ]  # fmt: skip


def simulated_study(rng, *, seeds, shift=0.0, run_sd=0.0, problems=50, n=16):
    """Per-problem pass@1/4/16 of a variant and a baseline from the same kind of model: problem
    logits ~ N(-0.3, 1.5), each run (seed) shifts them by N(0, run_sd) plus N(0, 0.3) per problem,
    n samples per problem; the variant adds ``shift`` to every logit."""
    z = rng.normal(-0.3, 1.5, problems)

    def policy(delta):
        logit = z + delta + rng.normal(0, run_sd, (seeds, 1)) + rng.normal(0, 0.3, (seeds, problems))
        c = rng.binomial(n, 1 / (1 + np.exp(-logit)))
        return pass_at_k(n, c[..., None], KS)  # (seeds, problems, 3)

    return policy(shift), policy(0.0)


def coverage(seeds, run_sd):
    rng = np.random.default_rng(2024)
    hits = np.zeros(len(KS))
    for i in range(STUDIES):
        a, b = simulated_study(rng, seeds=seeds, run_sd=run_sd, problems=100)
        res = paired_bootstrap_diff(a, b, n_boot=500, seed=i)
        hits += (res["ci_low"] <= 0) & (res["ci_high"] >= 0)
    return hits / STUDIES


def test_coverage_is_95_percent_when_the_true_difference_is_0():
    """One seed per policy: the bootstrap over problems alone, nominal coverage expected."""
    cov = coverage(seeds=1, run_sd=0.0)
    assert ((COVER_LO <= cov) & (cov <= COVER_HI)).all(), cov


def test_coverage_with_seeds_is_at_least_nominal():
    """Three seeds with a run-to-run shift: resampling problems and seeds counts the per-problem
    noise twice (conservative, Owen 2007 "the pigeonhole bootstrap"), so coverage is >= 95% up to
    the binomial tolerance, and the CIs are not degenerate (some miss, none are infinite)."""
    cov = coverage(seeds=3, run_sd=0.1)
    assert (cov >= COVER_LO).all() and cov[0] < 1.0, cov


@pytest.mark.parametrize("shift, want", [(0.6, "better"), (-0.6, "worse")])
def test_a_planted_difference_is_found(shift, want):
    rng = np.random.default_rng(7)
    found = []
    for i in range(20):
        a, b = simulated_study(rng, seeds=3, shift=shift, run_sd=0.1, problems=200)
        res = paired_bootstrap_diff(a, b, n_boot=500, seed=i)
        found.append([verdict(lo, hi) for lo, hi in zip(res["ci_low"], res["ci_high"], strict=True)])
        assert np.sign(res["diff"][:2]).tolist() == [np.sign(shift)] * 2
    found = np.array(found)
    assert (found[:, 0] == want).all() and (found[:, 1] == want).mean() >= 0.9, found
