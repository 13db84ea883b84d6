import itertools
import uuid

import numpy as np
import pytest
import torch


def make_batch(seed: int, num_prompts: int = 12, n: int | None = 4, binary: bool = True, unequal: bool = False,
               shuffle_rows: bool = False, pad_rows: int = 0):
    """Random batch: (scores float32 (N,), uids object ndarray). uids are random uuid strings,
    so their sorted order differs from their order of first appearance."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    uids, scores = [], []
    for _ in range(num_prompts):
        u = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63))))
        k = int(rng.integers(1, 7)) if unequal else n
        p = float(torch.rand(1, generator=g))
        for _ in range(k):
            uids.append(u)
            if binary:
                scores.append(float(torch.rand(1, generator=g) < p))
            else:
                scores.append(float(torch.randn(1, generator=g)) * 2.0)
    if shuffle_rows:
        perm = rng.permutation(len(uids))
        uids = [uids[i] for i in perm]
        scores = [scores[i] for i in perm]
    for j in range(pad_rows):
        pos = int(rng.integers(0, len(uids) + 1))
        uids.insert(pos, f"pad{j:04x}")
        scores.insert(pos, 0.0)
    return torch.tensor(scores, dtype=torch.float32), np.array(uids, dtype=object)


@pytest.fixture
def batch_factory():
    return make_batch


ALL_BOOLS = list(itertools.product([False, True], repeat=4))


#: reward kinds of the pass@k estimators' tests: {0, 1}, {-1, 1} and continuous in [0, 1)
REWARDS = ["binary", "plus-minus-one", "continuous"]


def reward_batch(seed: int, rewards: str, **kw):
    """``make_batch`` with rewards of kind ``rewards`` (one of REWARDS)."""
    scores, uids = make_batch(seed, binary=rewards != "continuous", **kw)
    if rewards == "plus-minus-one":
        scores = 2 * scores - 1
    return scores, uids
