"""pass@k against brute-force enumeration, maj@k against a plain loop, bootstrap coverage."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from riskrl.evaluation import pass_at_k
from riskrl.evaluation.passk import (
    answer_diversity,
    bootstrap_ci,
    bootstrap_means,
    encode_answers,
    k_values,
    maj_at_k,
    maj_at_k_reference,
    percentile_ci,
)


def beta_fn(a: float, b: np.ndarray) -> np.ndarray:
    return np.array(
        [math.exp(math.lgamma(a) + math.lgamma(x) - math.lgamma(a + x)) for x in np.atleast_1d(b)]
    )


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_enumeration_of_all_subsets():
    cases = [(n, c, k) for n in range(1, 9) for c in range(n + 1) for k in range(1, n + 1)]
    for n, c, k in cases:
        assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)
    n, c, k = (np.array(x) for x in zip(*cases, strict=True))
    want = np.array([brute_pass_at_k(*t) for t in cases])
    np.testing.assert_allclose(pass_at_k(n, c, k), want, atol=1e-12)


def test_pass_at_k_exact_for_large_n():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 400))
        c, k = int(rng.integers(0, n + 1)), int(rng.integers(1, n + 1))
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5, abs=1e-12)
    assert pass_at_k(4, 1, 4) == 1.0  # verl's best@4 would say ~0.68 (VERL_NOTES §7)


def test_pass_at_k_types_and_broadcasting():
    assert isinstance(pass_at_k(4, 2, 1), float)
    out = pass_at_k(8, np.array([[0], [4], [8]]), np.array([1, 2, 8]))  # (3, 1) x (3,) -> (3, 3)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out[0], 0.0)
    np.testing.assert_allclose(out[2], 1.0)
    np.testing.assert_allclose(out[1], [0.5, 1 - 6 / 28, 1.0])
    assert pass_at_k(np.int64(4), np.int32(1), 2) == 0.5
    assert pass_at_k(4.0, 1.0, 2.0) == 0.5


@pytest.mark.parametrize(
    ("n", "c", "k", "match"),
    [
        (4, 1, 5, r"k <= n .*k=5 > n=4"),
        (np.array([4, 8]), 0, np.array([2, 9]), r"k=9 > n=8"),
        (4, 5, 2, r"c=5 > n=4"),
        (-1, 0, 1, r"n must be >= 0"),
        (4, -1, 1, r"c must be >= 0"),
        (4, 1, 0, r"k must be >= 1"),
        (4, 1.5, 1, r"whole numbers"),
        (np.array([4, 4]), np.array([1, 1, 1]), 1, r"do not broadcast"),
    ],
)
def test_pass_at_k_refuses_bad_input(n, c, k, match):
    with pytest.raises(ValueError, match=match) as err:
        pass_at_k(n, c, k)
    assert "\n" not in str(err.value)


def test_k_values():
    assert k_values(1) == [1]
    assert k_values(16) == [1, 2, 4, 8, 16]
    assert k_values(12) == [1, 2, 4, 8, 12]
    assert k_values(3) == [1, 2, 3]
    with pytest.raises(ValueError, match="n must be >= 1"):
        k_values(0)


def random_problems(rng, P, n, num_answers=3):
    preds = rng.choice(["", "1", "2", "3", " 2 "][: num_answers + 2], size=(P, n))
    scores = np.isin(np.char.strip(preds.astype(str)), ["2"]).astype(float)
    return preds, scores


def test_maj_at_k_exact_path_matches_loop_reference():
    rng = np.random.default_rng(1)
    preds, scores = random_problems(rng, 30, 6)
    ids, _ = encode_answers(preds)
    for k in range(1, 7):
        got = maj_at_k(ids, scores, k, num_subsamples=10_000)  # all C(6, k) <= 20 subsets enumerated
        want = [maj_at_k_reference(list(p), list(s), k) for p, s in zip(preds, scores, strict=True)]
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_maj_at_k_subsampled_estimate_is_close_and_seeded():
    rng = np.random.default_rng(2)
    preds, scores = random_problems(rng, 8, 10)
    ids, _ = encode_answers(preds)
    k = 5  # C(10, 5) = 252 > num_subsamples: the seeded Monte Carlo path
    want = np.array([maj_at_k_reference(list(p), list(s), k) for p, s in zip(preds, scores, strict=True)])
    got = maj_at_k(ids, scores, k, num_subsamples=200, seed=3)
    assert np.abs(got - want).max() < 0.12
    assert np.abs(got.mean() - want.mean()) < 0.04
    np.testing.assert_array_equal(got, maj_at_k(ids, scores, k, num_subsamples=200, seed=3))


def test_maj_at_n_is_plain_majority_and_ties_split():
    preds = np.array([["7", "7", "3", ""], ["7", "3", "", ""], ["", "", "", ""]], dtype=object)
    scores = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    ids, width = encode_answers(preds)
    assert width == 2
    np.testing.assert_allclose(maj_at_k(ids, scores, 4), [1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="k=5, n=4"):
        maj_at_k(ids, scores, 5)


def test_answer_diversity():
    preds = np.array([["a", "a", "b", "c"], ["a", "a", "a", "a"], ["", "", "", ""], ["a", " a", "", "b"],
                      ["", "b", "", ""]])
    distinct, entropy = answer_diversity(encode_answers(preds)[0])
    np.testing.assert_allclose(distinct, [3, 1, 0, 2, 1])
    np.testing.assert_allclose(entropy, [1.5, 0.0, 0.0, -(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3)), 0.0])
    assert np.isfinite(entropy).all() and distinct.dtype == entropy.dtype == np.float64
    none = answer_diversity(np.zeros((0, 4), dtype=np.int64))
    assert none[0].shape == none[1].shape == (0,)


def test_bootstrap_means_matches_loop():
    values = np.random.default_rng(4).random((25, 3))
    dist = bootstrap_means(values, n_boot=50, seed=9)
    idx = np.random.default_rng(9).integers(0, 25, size=(50, 25))
    np.testing.assert_allclose(dist, np.stack([values[i].mean(0) for i in idx]))
    lo, hi = bootstrap_ci(values, n_boot=400, seed=0)
    assert lo.shape == hi.shape == (3,)
    assert np.all(lo < values.mean(0)) and np.all(values.mean(0) < hi)
    with pytest.raises(ValueError, match="at least one problem"):
        bootstrap_means(np.zeros((0, 2)))


def test_bootstrap_ci_covers_the_truth_at_about_the_nominal_rate():
    """200 simulated benchmarks: per-problem solve rates ~ Beta(2, 3), c ~ Binomial(8, p)."""
    a, b, n, P, ks = 2.0, 3.0, 8, 60, np.array([1, 4])
    truth = 1 - beta_fn(a, b + ks) / beta_fn(a, b)  # E[1 - (1-p)^k] under Beta(a, b)
    rng = np.random.default_rng(2024)
    covered = np.zeros(len(ks))
    for i in range(200):
        c = rng.binomial(n, rng.beta(a, b, size=P))
        values = pass_at_k(n, c[:, None], ks[None, :])  # (P, 2)
        lo, hi = bootstrap_ci(values, n_boot=500, seed=i)
        covered += (lo <= truth) & (truth <= hi)
    coverage = covered / 200
    assert np.all((coverage >= 0.88) & (coverage <= 0.99)), coverage


def test_float_counts_of_any_width_are_checked_and_errors_show_three_values():
    for dtype in (np.float32, np.float64):
        assert pass_at_k(np.array([5.0], dtype=dtype), np.array([2.0], dtype=dtype), 2)[0] == pass_at_k(5, 2, 2)
        with pytest.raises(ValueError, match=r"^pass_at_k: n must hold whole numbers; got \[1\.5, 2\.5, 3\.5\]$"):
            pass_at_k(np.array([1.5, 2.5, 3.5, 4.5], dtype=dtype), 1, 1)
    with pytest.raises(ValueError, match=r"^pass_at_k: shapes of n \(2,\), c \(2,\) and k \(3,\) do not broadcast$"):
        pass_at_k(np.array([4, 4]), np.array([1, 1]), np.array([1, 2, 3]))


def test_unparsed_answers_are_minus_one_and_whitespace_is_no_vote():
    preds = np.array([["7", None, "", "  "], ["", None, " ", ""]], dtype=object)
    ids, width = encode_answers(preds)
    assert ids.dtype == np.int64 and ids.tolist() == [[0, -1, -1, -1], [-1, -1, -1, -1]] and width == 1
    assert encode_answers(np.array([[None, ""]], dtype=object))[1] == 0
    scores = [1.0, 0.0, 0.0, 0.0]
    for k in (1, 2, 4):  # a whitespace-only answer casts no vote in the loop reference either
        assert maj_at_k_reference(["7", "", "  ", "  "], scores, k) == maj_at_k(ids[:1], np.array([scores]), k)[0]


def test_default_budgets_and_seeds():
    rng = np.random.default_rng(5)
    preds, scores = random_problems(rng, 3, 12)
    ids, _ = encode_answers(preds)
    got = maj_at_k(ids, scores, 6)  # C(12, 6) = 924 > 256: estimated, with seed 0
    np.testing.assert_array_equal(got, maj_at_k(ids, scores, 6, num_subsamples=256, seed=0))
    assert not np.array_equal(got, maj_at_k(ids, scores, 6, num_subsamples=256, seed=1))
    preds, scores = random_problems(rng, 2, 257)
    ids, _ = encode_answers(preds)
    exact = scores.mean(1)  # maj@1 is the mean correctness; C(257, 1) = 257 > 256 subsets: estimated
    assert not np.allclose(maj_at_k(ids, scores, 1), exact)
    np.testing.assert_allclose(maj_at_k(ids, scores, 1, num_subsamples=257), exact)
    values = rng.random((20, 2))
    np.testing.assert_array_equal(bootstrap_means(values, n_boot=30), bootstrap_means(values, n_boot=30, seed=0))
    dist = bootstrap_means(values)
    for got, want in zip(percentile_ci(dist), np.quantile(dist, [0.025, 0.975], axis=0), strict=True):
        np.testing.assert_array_equal(got, want)
