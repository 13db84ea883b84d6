"""Pass@k, maj@k, diversity and bootstrap confidence intervals (math in /work/shared/METHODS.md, "Pass@k").

Everything here is plain numpy on per-problem arrays; the samples table lives in ``metrics.py``.

* ``pass_at_k(n, c, k)``: the unbiased estimator ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021,
  openai/human-eval ``estimate_pass_at_k``), computed as the product
  ``prod_{i<k} (n-c-i)/(n-i)``, never with factorials. avg@n (mean accuracy) equals pass@1.
* ``maj_at_k``: the probability that a majority vote over ``k`` samples drawn without replacement
  from the ``n`` picks a correct answer (its expectation over k-subsets, ties split evenly).
* ``bootstrap_ci``: percentile bootstrap over problems, one shared resampling for all metrics.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

ArrayLike = int | np.integer | np.ndarray | Sequence[int]

__all__ = [
    "pass_at_k",
    "k_values",
    "maj_at_k",
    "maj_at_k_reference",
    "encode_answers",
    "answer_diversity",
    "bootstrap_means",
    "bootstrap_ci",
]


def _as_int_array(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"pass_at_k: {name} must be an integer or an integer array; got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"pass_at_k: {name} must hold whole numbers; got {a.ravel()[:3].tolist()}")
        a = a.astype(np.int64)
    return a.astype(np.int64, copy=False)


def pass_at_k(n: ArrayLike, c: ArrayLike, k: ArrayLike) -> float | np.ndarray:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct; ints or broadcastable arrays.

    ``pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=0}^{k-1} (n-c-i) / (n-i)``; when ``n - c < k``
    a factor is zero and pass@k is exactly 1. Returns a float for scalar input, else an array of
    the broadcast shape. Raises ``ValueError`` for ``k > n``, ``c > n``, ``k < 1`` or negatives.
    """
    scalar = all(np.ndim(x) == 0 for x in (n, c, k))
    n_a, c_a, k_a = (_as_int_array(x, name) for x, name in ((n, "n"), (c, "c"), (k, "k")))
    try:
        n_a, c_a, k_a = np.broadcast_arrays(n_a, c_a, k_a)
    except ValueError:
        raise ValueError(
            f"pass_at_k: shapes of n {np.shape(n_a)}, c {np.shape(c_a)} and k {np.shape(k_a)} do not broadcast"
        ) from None
    for arr, name in ((n_a, "n"), (c_a, "c")):
        if (bad := arr < 0).any():
            raise ValueError(f"pass_at_k: {name} must be >= 0; got {name}={int(arr[bad][0])}")
    if (bad := k_a < 1).any():
        raise ValueError(f"pass_at_k: k must be >= 1; got k={int(k_a[bad][0])}")
    if (bad := c_a > n_a).any():
        raise ValueError(f"pass_at_k: c must be <= n; got c={int(c_a[bad][0])} > n={int(n_a[bad][0])}")
    if (bad := k_a > n_a).any():
        raise ValueError(
            f"pass@k needs k <= n (number of samples); got k={int(k_a[bad][0])} > n={int(n_a[bad][0])}"
        )
    if n_a.size == 0:
        return np.zeros(n_a.shape)
    i = np.arange(int(k_a.max()))  # (K,)
    num = np.maximum(n_a[..., None] - c_a[..., None] - i, 0).astype(np.float64)  # (..., K)
    den = (n_a[..., None] - i).astype(np.float64)  # > 0 wherever i < k <= n
    ratio = np.where(i < k_a[..., None], num / np.where(den > 0, den, 1.0), 1.0)
    out = 1.0 - np.prod(ratio, axis=-1)  # (...,)
    return float(out) if scalar else out


def k_values(n: int) -> list[int]:
    """The k reported for ``n`` samples: 1, 2, 4, ... up to ``n``, plus ``n`` itself."""
    if int(n) < 1:
        raise ValueError(f"k_values: n must be >= 1; got n={n}")
    ks = [2**j for j in range(int(math.log2(n)) + 1)]
    return ks if ks[-1] == n else [*ks, int(n)]


def encode_answers(preds: np.ndarray) -> tuple[np.ndarray, int]:
    """Map parsed answers (P, n) of strings to per-problem ids (P, n); ``""``/None -> -1 (unparsed).

    Ids are dense per problem (0 .. distinct-1). Answers are compared after ``str.strip()``.
    Returns ``(ids, A)`` with ``A`` the largest number of distinct answers in any problem.
    """
    preds = np.asarray(preds, dtype=object)
    ids = np.full(preds.shape, -1, dtype=np.int64)
    width = 0
    for p, row in enumerate(preds):
        seen: dict[str, int] = {}
        for j, a in enumerate(row):
            a = "" if a is None else str(a).strip()
            if a:
                ids[p, j] = seen.setdefault(a, len(seen))
        width = max(width, len(seen))
    return ids, width


def answer_diversity(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem diversity from answer ids (P, n): distinct parsed answers and their entropy in bits.

    Unparsed samples (-1) are left out of both; a problem with no parsed answer has 0 and 0.
    """
    ids = np.asarray(ids)
    width = int(ids.max()) + 1 if ids.size else 0
    counts = _count_votes(ids[:, None, :], max(width, 1))[:, 0, :]  # (P, A)
    distinct = (counts > 0).sum(-1).astype(np.float64)
    total = counts.sum(-1, keepdims=True)
    prob = counts / np.maximum(total, 1)  # a problem with no parsed answer: all counts are 0
    return distinct, -(prob * np.log2(np.where(prob > 0, prob, 1.0))).sum(-1)


def _count_votes(sub_ids: np.ndarray, width: int) -> np.ndarray:
    """Votes per answer: sub_ids (P, S, k) with -1 = no vote -> counts (P, S, width)."""
    P, S, _ = sub_ids.shape
    valid = sub_ids >= 0
    flat = (np.arange(P * S).reshape(P, S, 1) * width + sub_ids)[valid]
    return np.bincount(flat, minlength=P * S * width).reshape(P, S, width)


def _answer_correctness(ids: np.ndarray, correct: np.ndarray, width: int) -> np.ndarray:
    """(P, A): mean correctness of the samples giving each answer (all equal for a sane scorer)."""
    counts = _count_votes(ids[:, None, :], width)[:, 0, :]
    P = ids.shape[0]
    valid = ids >= 0
    flat = (np.arange(P)[:, None] * width + ids)[valid]
    hits = np.bincount(flat, weights=correct[valid], minlength=P * width).reshape(P, width)
    return hits / np.maximum(counts, 1)  # an answer nobody gave: 0 hits of 0


def maj_at_k(
    ids: np.ndarray,
    correct: np.ndarray,
    k: int,
    *,
    num_subsamples: int = 256,
    seed: int = 0,
    chunk_elems: int = 4_000_000,
) -> np.ndarray:
    """Per-problem maj@k: P(majority vote of k of the n samples is correct); returns (P,).

    ``ids`` (P, n) are answer ids from ``encode_answers`` (-1 = unparsed, casts no vote) and
    ``correct`` (P, n) the 0/1 scores. The vote goes to the most frequent parsed answer; a tie
    counts the mean correctness of the tied answers (a uniform random tie-break, in expectation);
    a subset without a parsed answer scores 0.

    Estimator: the expectation over all C(n, k) subsets, exact when ``C(n, k) <= num_subsamples``
    (every subset enumerated; always the case for k = 1 and k = n, where maj@n is the plain
    majority over all samples), otherwise estimated from ``num_subsamples`` uniformly random
    k-subsets per problem drawn with ``numpy.random.default_rng(seed)`` (unbiased, deterministic).
    """
    ids = np.asarray(ids, dtype=np.int64)
    correct = np.asarray(correct, dtype=np.float64)
    if ids.ndim != 2 or ids.shape != correct.shape:
        raise ValueError(
            f"maj_at_k: ids and correct must both be (P, n); got {ids.shape} and {correct.shape}"
        )
    P, n = ids.shape
    if not 1 <= k <= n:
        raise ValueError(f"maj@k needs 1 <= k <= n (number of samples); got k={k}, n={n}")
    if P == 0:
        return np.zeros(0)
    width = max(int(ids.max()) + 1, 1)
    ans_correct = _answer_correctness(ids, correct, width)  # (P, A)
    exact = math.comb(n, k) <= num_subsamples
    if exact:
        subsets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)  # (S, k)
        S = len(subsets)
    else:
        rng = np.random.default_rng(seed)
        S = num_subsamples
    out = np.empty(P)
    step = max(1, chunk_elems // (S * max(width, n)))
    for lo in range(0, P, step):
        hi = min(P, lo + step)
        if exact:
            sub = ids[lo:hi][:, subsets]  # (p, S, k)
        else:
            pick = np.argsort(rng.random((hi - lo, S, n)), axis=-1)[..., :k]  # (p, S, k)
            sub = np.take_along_axis(ids[lo:hi, None, :], pick, axis=-1)
        votes = _count_votes(sub, width)  # (p, S, A)
        top = votes.max(-1, keepdims=True)
        winners = (votes == top) & (top > 0)
        n_win = winners.sum(-1)
        val = (winners * ans_correct[lo:hi, None, :]).sum(-1)
        val = val / np.maximum(n_win, 1)  # (p, S); a subset without a parsed answer: 0
        out[lo:hi] = val.mean(-1)
    return out


def maj_at_k_reference(preds: Sequence[str], scores: Sequence[float], k: int) -> float:
    """Plain-loop maj@k for one problem: exact mean over all k-subsets (tests' reference)."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(preds)), k))
    for sub in subsets:
        votes = Counter(preds[i].strip() for i in sub if preds[i] and preds[i].strip())
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]
        acc = [
            np.mean([scores[i] for i in range(len(preds)) if preds[i] and preds[i].strip() == a])
            for a in tied
        ]
        total += float(np.mean(acc))
    return total / len(subsets)


def bootstrap_means(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of column means: values (P, M) -> (n_boot, M), problems resampled.

    One index matrix (n_boot, P) is shared by all M columns, so figures stay paired.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    P = values.shape[0]
    if P == 0:
        raise ValueError("bootstrap needs at least one problem; got 0")
    idx = np.random.default_rng(seed).integers(0, P, size=(n_boot, P))  # (B, P)
    # Mean of resampled rows = (counts @ values) / P, with counts (B, P): no (B, P, M) temporary.
    flat = (np.arange(n_boot)[:, None] * P + idx).ravel()
    counts = np.bincount(flat, minlength=n_boot * P).reshape(n_boot, P).astype(np.float64)
    return counts @ values / P


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI over problems of each column mean: (P,) or (P, M) -> (lo, hi), each (M,)."""
    if not 0 < alpha < 1:
        raise ValueError(f"bootstrap_ci: alpha must be in (0, 1); got {alpha}")
    dist = bootstrap_means(values, n_boot=n_boot, seed=seed)
    return percentile_ci(dist, alpha)


def percentile_ci(dist: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) percentiles of a bootstrap distribution (B, M)."""
    lo, hi = np.quantile(dist, [alpha / 2, 1 - alpha / 2], axis=0)
    return lo, hi
