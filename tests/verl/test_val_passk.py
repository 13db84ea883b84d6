"""Unbiased pass@k in verl's validation metrics, fed what verl's ``_val_metrics_update`` receives."""

import itertools

import numpy as np
import pytest

from riskrl.verl.trainer import RiskRLTrainerSync, unbiased_pass_at_k_metrics


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def val_inputs(seed: int, n: int, sources=("openai/gsm8k", "aime24"), prompts: int = 5, pm_one=False, acc=False):
    """verl's lists: one entry per sample, a prompt's n samples sharing a uid (shuffled order)."""
    rng = np.random.default_rng(seed)
    data_sources, uids, rewards, accs = [], [], [], []
    truth: dict[str, dict[str, list[bool]]] = {}
    for s in sources:
        for p in range(prompts):
            uid = f"{s}-uid{p}"
            rate = rng.uniform()
            hits = [bool(rng.uniform() < rate) for _ in range(n)]
            truth.setdefault(s, {})[uid] = hits
            for h in hits:
                data_sources.append(s)
                uids.append(uid)
                rewards.append((1.0 if h else -1.0) if pm_one else float(h))
                accs.append(h)
    order = rng.permutation(len(uids))
    pick = lambda xs: [xs[i] for i in order]  # noqa: E731
    infos = {"reward": pick(rewards)}
    if acc:
        infos["acc"] = pick(accs)
    return pick(data_sources), pick(uids), infos, truth


def expected(truth, ks):
    return {
        f"val-core/{s}/pass@{k}": float(np.mean([brute_pass_at_k(h, k) for h in prompts.values()]))
        for s, prompts in truth.items()
        for k in ks
    }


def trainer_metrics(data_sources, uids, infos, expected_acc_counts=None):
    trainer = object.__new__(RiskRLTrainerSync)  # _val_metrics_update uses no trainer state
    return trainer._val_metrics_update(data_sources, uids, infos, [], expected_acc_counts=expected_acc_counts)


@pytest.mark.parametrize("n, ks", [(4, [1, 2, 4]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8])])
def test_pass_at_k_next_to_verl_best_at_k(n, ks):
    data_sources, uids, infos, truth = val_inputs(n, n)
    metrics = trainer_metrics(data_sources, uids, infos)
    ours = {k: v for k, v in metrics.items() if "/pass@" in k}
    assert ours.keys() == expected(truth, ks).keys()
    for key, value in expected(truth, ks).items():
        assert ours[key] == pytest.approx(value, abs=1e-12)
    for s in truth:
        # verl's own metrics are still there, and pass@1 is verl's mean@n (avg@n)
        assert f"val-core/{s}/reward/best@{n}/mean" in metrics
        assert metrics[f"val-core/{s}/pass@1"] == pytest.approx(metrics[f"val-core/{s}/reward/mean@{n}"], abs=1e-12)
        assert metrics[f"val-core/{s}/pass@{n}"] == pytest.approx(
            np.mean([any(h) for h in truth[s].values()]), abs=1e-12
        )


def test_acc_is_used_when_present_and_plus_minus_one_rewards():
    data_sources, uids, infos, truth = val_inputs(11, 4, pm_one=True, acc=True)
    got = unbiased_pass_at_k_metrics(data_sources, uids, infos)
    for key, value in expected(truth, [1, 2, 4]).items():
        assert got[key] == pytest.approx(value, abs=1e-12)
    # without acc, {-1, 1} rewards are thresholded at 0.5: the same numbers
    assert unbiased_pass_at_k_metrics(data_sources, uids, {"reward": infos["reward"]}) == pytest.approx(got)


def test_failed_sessions_count_as_incorrect():
    # verl pads acc with 0 up to the expected session count: prompt u0 expected 4, got 3 (2 correct)
    data_sources = ["math"] * 7
    uids = ["u0"] * 3 + ["u1"] * 4
    infos = {"reward": [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "acc": [True, True, False, False, False, True, False]}
    got = unbiased_pass_at_k_metrics(data_sources, uids, infos, {("math", "u0"): 4, ("math", "u1"): 4})
    u0 = [True, True, False, False]
    u1 = [False, False, True, False]
    for k in (1, 2, 4):
        assert got[f"val-core/math/pass@{k}"] == pytest.approx((brute_pass_at_k(u0, k) + brute_pass_at_k(u1, k)) / 2)


def test_single_sample_validation_adds_nothing():
    data_sources, uids, infos, _ = val_inputs(3, 1)
    assert unbiased_pass_at_k_metrics(data_sources, uids, infos) == {}
    assert not any("/pass@" in k for k in trainer_metrics(data_sources, uids, infos))


def test_unequal_samples_use_the_fewest():
    data_sources = ["d"] * 9
    uids = ["a"] * 4 + ["b"] * 5
    infos = {"reward": [0, 0, 1, 0, 1, 1, 0, 0, 0]}
    got = unbiased_pass_at_k_metrics(data_sources, uids, infos)
    assert sorted(got) == ["val-core/d/pass@1", "val-core/d/pass@2", "val-core/d/pass@4"]
    a, b = [False, False, True, False], [True, True, False, False, False]
    assert got["val-core/d/pass@4"] == pytest.approx((brute_pass_at_k(a, 4) + brute_pass_at_k(b, 4)) / 2)
