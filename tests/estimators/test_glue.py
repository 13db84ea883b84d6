"""The small pieces around the estimators that mutation testing found unpinned: how verl's
config is read (dict-like or attribute objects, flat keys), the process tracker's default,
error messages that name what is wrong, defaults of the public functions, and pass@k's input
checks."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from riskrl.estimators import registry
from riskrl.estimators.riskpo import riskpo_advantage
from riskrl.evaluation.passk import pass_at_k


def test_config_is_read_from_attribute_objects_and_dicts_alike():
    nested = {"bundle_size": 3, "quantile_down": 0.3}
    as_dict = registry.riskpo_options_from_config({"riskpo": nested})
    as_attrs = registry.riskpo_options_from_config(SimpleNamespace(riskpo=nested))
    assert as_dict == as_attrs and as_dict.bundle_size == 3 and as_dict.quantile_down == 0.3
    assert registry._cfg_get(SimpleNamespace(), "missing", default=7) == 7
    assert registry._cfg_get(None, "x", default=5) == 5


def test_flat_config_keys_are_used():
    flat = registry.riskpo_options_from_config(SimpleNamespace(bundle_size=4, w_mix=2.5))
    assert flat.bundle_size == 4 and flat.w_mix == 2.5
    assert registry.riskpo_options_from_config({"bundle_size": 6}).bundle_size == 6


def test_process_tracker_defaults_to_lr_q_0_1_and_takes_a_given_one():
    assert registry.reset_process_tracker().lr_q == 0.1
    registry._PROCESS_TRACKER = None
    assert registry.get_process_tracker().lr_q == 0.1
    assert registry.get_process_tracker(0.3).lr_q == 0.3
    registry._PROCESS_TRACKER = None
    assert registry.get_process_tracker(0.25).lr_q == 0.25
    registry.reset_process_tracker()


def test_non_finite_rewards_are_named_in_the_error():
    rewards = torch.zeros(3, 4)
    rewards[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"^token_level_rewards: 1 of 3 rows have NaN or inf rewards$"):
        registry._scores(rewards)
    torch.testing.assert_close(registry._scores(torch.ones(2, 3)), torch.full((2,), 3.0))


def test_riskpo_defaults_to_std_normalisation_and_logs_the_batch_fallback(caplog):
    scores = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.2, 0.9])
    uids = np.repeat(np.arange(6), 2)
    default = riskpo_advantage(scores, uids, bundle_size=3)
    assert torch.equal(default, riskpo_advantage(scores, uids, norm_adv_by_std_in_grpo=True, bundle_size=3))
    assert not torch.equal(default, riskpo_advantage(scores, uids, norm_adv_by_std_in_grpo=False, bundle_size=3))
    with caplog.at_level(logging.INFO, logger="riskrl.riskpo"):
        riskpo_advantage(scores, uids, bundle_size=3, use_q_track_mode="track")
    assert caplog.messages == ["riskpo: use_q_track_mode=track but the tracker is not initialised yet: batch quantiles"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="riskrl.riskpo"):
        riskpo_advantage(scores, uids, bundle_size=3, use_q_track_mode="batch")
    assert "not initialised" not in caplog.text


@pytest.mark.parametrize("args, match", [
    ((np.array([1.5]), 1, 1), r"^pass_at_k: n must hold whole numbers; got \[1\.5\]$"),
    ((4, np.array([0.5]), 1), r"^pass_at_k: c must hold whole numbers; got \[0\.5\]$"),
    ((4, 1, np.array([1.5])), r"^pass_at_k: k must hold whole numbers; got \[1\.5\]$"),
    ((np.array(["4"]), 1, 1), r"^pass_at_k: n must be an integer or an integer array; got dtype <U1$"),
    ((4, True, 1), r"^pass_at_k: c must be an integer or an integer array; got dtype bool$"),
    ((np.array([4, 4]), np.array([1, 1, 1]), 1), r"^pass_at_k: shapes of n \(2,\), c \(3,\) and k \(\) do not broadcast$"),
])
def test_pass_at_k_errors_name_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(*args)


def test_pass_at_k_returns_a_float_only_for_scalars():
    assert type(pass_at_k(4, 1, 2)) is float
    assert isinstance(pass_at_k(np.array(4), 1, 2), float)  # 0-d arrays count as scalars
    out = pass_at_k(np.array([4]), 1, 2)
    assert isinstance(out, np.ndarray) and out.shape == (1,)
    assert pass_at_k(4.0, 1.0, 2.0) == pytest.approx(0.5)  # whole floats are accepted


# -- bootstrap and maj@k in riskrl/evaluation/passk.py ------------------------------------------
from riskrl.evaluation.passk import bootstrap_ci, bootstrap_means, maj_at_k, maj_at_k_reference  # noqa: E402


def _bootstrap_ci_reference(values, n_boot, alpha, seed):
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    means = np.stack([values[row].mean(0) for row in idx])  # a loop over resamples
    return np.quantile(means, alpha / 2, axis=0), np.quantile(means, 1 - alpha / 2, axis=0)


@pytest.mark.parametrize("n_boot, alpha, seed", [(50, 0.2, 3), (1000, 0.05, 0), (77, 0.5, 11)])
def test_bootstrap_ci_uses_its_n_boot_alpha_and_seed(n_boot, alpha, seed):
    values = np.random.default_rng(42).random((13, 2))
    lo, hi = bootstrap_ci(values, n_boot=n_boot, alpha=alpha, seed=seed)
    ref_lo, ref_hi = _bootstrap_ci_reference(values, n_boot, alpha, seed)
    np.testing.assert_allclose(lo, ref_lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, rtol=0, atol=1e-12)


def test_bootstrap_defaults_and_bad_input():
    values = np.random.default_rng(1).random(9)
    lo, hi = bootstrap_ci(values)
    ref = _bootstrap_ci_reference(values, 1000, 0.05, 0)
    np.testing.assert_allclose([lo[0], hi[0]], [ref[0][0], ref[1][0]], atol=1e-12)
    assert bootstrap_means(values).shape == (1000, 1)
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=rf"^bootstrap_ci: alpha must be in \(0, 1\); got {alpha}$"):
            bootstrap_ci(values, alpha=alpha)
    with pytest.raises(ValueError, match=r"^bootstrap needs at least one problem; got 0$"):
        bootstrap_means(np.zeros((0, 2)))


def _votes(P, n, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(-1, 3, size=(P, n))
    correct = (ids == 1).astype(float)
    return ids, correct


def test_maj_at_k_subsampled_is_the_same_in_any_chunking_and_close_to_exact():
    ids, correct = _votes(7, 8, 0)
    one = maj_at_k(ids, correct, 3, num_subsamples=40, seed=5)
    chunked = maj_at_k(ids, correct, 3, num_subsamples=40, seed=5, chunk_elems=1)  # one problem per chunk
    # the random subsets are drawn chunk by chunk, so compare each with the exact value instead
    exact = np.array([maj_at_k_reference([str(a) if a >= 0 else "" for a in row], c, 3) for row, c in zip(ids, correct, strict=True)])
    assert np.abs(one - exact).max() < 0.2 and np.abs(chunked - exact).max() < 0.2
    assert one.shape == chunked.shape == (7,)


def test_maj_at_k_exact_when_the_subsets_fit_and_for_one_problem():
    ids, correct = _votes(3, 6, 1)
    n_subsets = 20  # C(6, 3)
    got = maj_at_k(ids, correct, 3, num_subsamples=n_subsets)  # <= num_subsamples: every subset
    exact = np.array([maj_at_k_reference([str(a) if a >= 0 else "" for a in row], c, 3) for row, c in zip(ids, correct, strict=True)])
    np.testing.assert_allclose(got, exact, atol=1e-12)
    one = maj_at_k(ids[:1], correct[:1], 3)
    np.testing.assert_allclose(one, exact[:1], atol=1e-12)
    with pytest.raises(ValueError, match=r"^maj_at_k: ids and correct must both be \(P, n\)"):
        maj_at_k(ids, correct[:, :5], 2)
    with pytest.raises(ValueError, match=r"^maj_at_k: ids and correct must both be \(P, n\)"):
        maj_at_k(ids[0], correct[0], 2)


def test_lazy_names_resolve_to_their_modules_and_unknown_names_fail():
    """The package's torch-backed and registry names load on first use, from the right module."""
    import importlib

    import riskrl.estimators as est

    for name, module in est._LAZY.items():
        assert getattr(est, name) is getattr(importlib.import_module(module), name)
    for name in est._REGISTRY_NAMES:
        assert getattr(est, name) is getattr(registry, name)
    assert set(est._LAZY) | set(est._REGISTRY_NAMES) <= set(est.__all__)
    with pytest.raises(AttributeError, match=r"^module 'riskrl.estimators' has no attribute 'nope'$"):
        est.__getattr__("nope")


def test_a_different_lr_q_with_a_given_tracker_is_named_once(caplog):
    from riskrl.estimators import QuantileTracker

    scores, uids = torch.tensor([0.0, 1.0, 1.0, 0.0]), np.array([0, 0, 1, 1])
    for kwargs, logged in (({"lr_q": 0.2}, ["riskpo: lr_q=0.2 ignored, the given tracker has lr_q=0.1"]),
                           ({"lr_q": 0.1}, []), ({}, [])):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="riskrl.riskpo"):
            riskpo_advantage(scores, uids, QuantileTracker(lr_q=0.1), bundle_size=2, **kwargs)
        assert caplog.messages == logged, kwargs


def test_several_bad_options_are_all_named_in_one_line():
    from riskrl.estimators import parse_riskpo

    with pytest.raises(ValueError) as err:
        parse_riskpo(bundle_size=0, bundel=3, quantile_down=2.0)
    parts = str(err.value).split("; ")
    assert len(parts) == 3 and "\n" not in str(err.value)
    assert parts == ["riskpo.quantile_down=2.0: Input should be less than 1",  # in the options' field order
                     "riskpo.bundle_size=0: Input should be greater than or equal to 1", "unknown key riskpo.bundel"]


def test_internal_defaults_are_the_documented_ones():
    """Defaults of functions the estimators call without the argument (their callers pass it today)."""
    from riskrl.estimators import QuantileTracker, parse_riskpo
    from riskrl.estimators._groups import response_groups
    from riskrl.estimators.riskpo import riskpo_from_groups

    scores, uids = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.2, 0.9, 0.1]), np.repeat(np.arange(4), 2)
    opts = parse_riskpo(bundle_size=2)
    assert torch.equal(riskpo_from_groups(scores, response_groups(scores, uids), opts),
                       riskpo_from_groups(scores, response_groups(scores, uids), opts, None, True))
    tracker = QuantileTracker()
    tracker.update(torch.linspace(0, 3, 40, dtype=torch.float64))
    assert tracker.baselines(0.2, 0.8) == tracker.baselines(0.2, 0.8, True) != tracker.baselines(0.2, 0.8, False)
    metrics = tracker.metrics()
    assert metrics == tracker.metrics("riskpo/") and metrics["riskpo/tracker_updates"] == 1.0
    assert all(k.startswith("riskpo/") for k in metrics) and "riskpo/q_0.50" in metrics


@pytest.mark.parametrize("index", [np.array([], dtype=object), np.array([], dtype=np.int64),
                                   np.array(["pad_0", "pad_1"], dtype=object), np.array(["pad_0", "pad_1"])])
def test_an_empty_or_all_pad_batch_has_no_prompts(index):
    from riskrl.estimators import passk_advantage, pkpo_advantage, rs_grpo_advantage
    from riskrl.estimators._groups import factorize

    groups = factorize(index, device="cpu")
    assert groups.num_groups == 0 and groups.counts.tolist() == [] and groups.group.tolist() == [-1] * len(index)
    assert groups.has_pad == (len(index) > 0)
    scores = torch.ones(len(index))
    for adv in (rs_grpo_advantage(scores, index, 2.0), passk_advantage(scores, index, 4), pkpo_advantage(scores, index, 4),
                rs_grpo_advantage(scores, index, 0.0), riskpo_advantage(scores, index, None, bundle_size=2)):
        assert adv.tolist() == [0.0] * len(index)


@pytest.mark.parametrize("dtype", [object, None])  # verl's uid ndarray is object; a str array is '<U'
def test_pad_rows_are_found_in_object_and_str_arrays(dtype):
    from riskrl.estimators._groups import factorize

    groups = factorize(np.array(["b", "pad_0", "a", "b"], dtype=dtype), device="cpu")
    assert groups.group.tolist() == [0, -1, 1, 0] and groups.counts.tolist() == [2, 1] and groups.has_pad
    ints = factorize(np.array([7, 3, 7]), device="cpu")  # ints are never padding
    assert ints.group.tolist() == [0, 1, 0] and not ints.has_pad


def test_a_fresh_tracker_and_its_state():
    from riskrl.estimators import LEVELS, QuantileTracker

    tracker = QuantileTracker()
    assert tracker.lr_q == 0.1 and tracker.last == {} and tracker.last_mode is None
    state = tracker.state_dict()
    assert state["initialized"] is False and state["updates"] == 0 and state["lr_q"] == 0.1
    assert state["q"].dtype == state["levels"].dtype == torch.float32
    assert torch.equal(state["q"], torch.zeros(len(LEVELS))) and state["levels"].tolist() == pytest.approx(LEVELS)
    for bad in (0, 0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"^lr_q must be > 0, got "):
            QuantileTracker(lr_q=bad)


def test_options_from_a_dictconfig_resolve_interpolations():
    from omegaconf import OmegaConf

    from riskrl.estimators import parse_pkpo, parse_riskpo

    cfg = OmegaConf.create({"k": 8, "pkpo": {"k": "${k}", "baseline": "mean"}, "riskpo": {"bundle_size": "${..k}"}})
    assert parse_pkpo(cfg.pkpo).k == 8 and parse_riskpo(cfg.riskpo).bundle_size == 8


def test_check_finite_takes_one_reward_per_row():
    from riskrl.estimators._groups import check_finite

    check_finite(torch.tensor([0.0, 1.0, -2.5]))
    with pytest.raises(ValueError, match=r"^scores: 2 of 3 rows have NaN or inf rewards$"):
        check_finite(torch.tensor([float("nan"), 1.0, float("-inf")]))
    with pytest.raises(ValueError, match=r"^rewards must be 1-D \(one reward per row\), got shape \(2, 3\)$"):
        check_finite(torch.zeros(2, 3), "rewards")
