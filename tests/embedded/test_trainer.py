import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from riskrl.embedded import algorithm as alg
from riskrl.embedded.model import load_pretrained
from riskrl.embedded.trainer import TrainConfig, step_prompts, train

BASE_COLUMNS = [
    "step",
    "reward_mean",
    "entropy",
    "response_length",
    "adv_mean",
    "adv_std",
    "adv_pos_frac",
    "pg_loss",
    "pg_clipfrac",
    "ppo_kl",
    "grad_norm",
]


ESTIMATORS = ["grpo", "rs_grpo", "riskpo"]


def _cfg(tiny_base, tiny_data, out, **kw) -> TrainConfig:
    base = dict(
        model=str(tiny_base),
        data=str(tiny_data / "train.parquet"),
        out=str(out),
        steps=3,
        prompts_per_step=10,
        n=4,
        max_new_tokens=4,
        lr=3e-3,
        weight_decay=0.0,
        save_every=0,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _weights(path):
    model, _ = load_pretrained(path)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_few_steps_change_weights_and_log_every_metric(tiny_base, tiny_data, tmp_path, estimator):
    info = train(_cfg(tiny_base, tiny_data, tmp_path / "run", estimator=estimator))
    out = tmp_path / "run"
    before, after = _weights(tiny_base), _weights(out / "model")
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "no weight moved"
    assert info["config"]["weight_decay"] == 0.0  # so only the advantages can have moved them
    df = pd.read_csv(out / "train_metrics.csv")
    assert list(df["step"]) == [1, 2, 3]
    for c in BASE_COLUMNS:
        assert c in df.columns and df[c].notna().all(), c
    assert ((df["reward_mean"] >= 0) & (df["reward_mean"] <= 1)).all()
    assert (df["entropy"] > 0).all() and (df["response_length"] <= 4).all()
    assert (df["adv_std"] > 0).any()  # the base is right sometimes, so advantages are not all zero
    run = json.loads((out / "run.json").read_text())
    assert run["estimator"] == estimator and run["steps"] == 3 and run["lr"] == 3e-3
    assert run["algorithm"]["adv_estimator"] == estimator and run == json.loads(json.dumps(info))
    assert any((out / "tensorboard").iterdir())
    timing = pd.read_csv(out / "train_timing.csv")
    assert (timing["sampled_tokens_per_s"] > 0).all()
    if estimator == "riskpo":
        assert run["mode"] == "track" and run["algorithm"]["riskpo"]["use_q_track_mode"] == "track"
        for c in ("riskpo/a", "riskpo/b", "riskpo/mode"):
            assert c in df.columns, c
        # mode code 1 = track; step 1 falls back to batch (0) until the tracker is initialised
        assert list(df["riskpo/mode"]) == [0, 1, 1] and (df["riskpo_mode"] == "track").all()
        assert any(c.startswith("riskpo/q_") for c in df.columns)
    else:
        assert run["mode"] is None


@pytest.mark.parametrize("estimator", ["grpo", "riskpo"])
def test_resume_from_a_checkpoint_is_exact(tiny_base, tiny_data, tmp_path, estimator):
    full = tmp_path / "full"
    train(_cfg(tiny_base, tiny_data, full, estimator=estimator, steps=4, save_every=2))
    assert (full / "checkpoints" / "step_2").is_dir() and (full / "checkpoints" / "step_4").is_dir()
    # a run "killed" after step 3: only the step-2 checkpoint survives, plus stale logs
    cut = tmp_path / "cut"
    shutil.copytree(full / "checkpoints" / "step_2", cut / "checkpoints" / "step_2")
    (cut / "train_metrics.csv").write_text("garbage\n")
    train(_cfg(tiny_base, tiny_data, cut, estimator=estimator, steps=4, save_every=2, resume=True))
    for a, b in zip(_weights(full / "model"), _weights(cut / "model"), strict=True):
        assert torch.equal(a, b)
    model_file = "model/model.safetensors"
    assert (full / model_file).read_bytes() == (cut / model_file).read_bytes()
    assert (full / "train_metrics.csv").read_text() == (cut / "train_metrics.csv").read_text()
    run = json.loads((cut / "run.json").read_text())
    assert run["resumed_from_step"] == 2
    # a finished run resumes to a no-op; resuming with another lr is refused
    with pytest.raises(ValueError, match="lr="):
        train(
            _cfg(tiny_base, tiny_data, cut, estimator=estimator, steps=4, save_every=2, resume=True, lr=1.0)
        )


def test_kl_minibatches_and_epochs(tiny_base, tiny_data, tmp_path):
    cfg = _cfg(
        tiny_base,
        tiny_data,
        tmp_path / "r",
        steps=2,
        kl_coef=0.1,
        ppo_mini_batches=2,
        ppo_epochs=2,
        entropy_coeff=0.01,
        tensorboard=False,
    )
    train(cfg)
    df = pd.read_csv(tmp_path / "r" / "train_metrics.csv")
    assert "kl_ref" in df.columns and (df["kl_ref"] >= 0).all()
    assert (df["ppo_kl"].abs() > 0).any()  # later mini-batches see a moved policy
    assert not (tmp_path / "r" / "tensorboard").exists()


def test_policy_loss_is_ppo_clip():
    torch.manual_seed(0)
    old = -torch.rand(6, 5)
    new = old + 0.5 * torch.randn(6, 5)
    adv = torch.randn(6, 1).expand(6, 5)
    mask = (torch.rand(6, 5) > 0.2).float()
    cfg = TrainConfig(clip_ratio=0.2)
    loss, metrics = alg.policy_loss_fn()(
        old, new, adv, mask, loss_agg_mode="token-mean", config=alg.actor_config(cfg)
    )
    ratio = torch.exp(new - old)
    clipped = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    dual = torch.where(adv < 0, torch.minimum(clipped, -adv * 3.0), clipped)
    ref = (dual * mask).sum() / mask.sum()
    assert torch.allclose(loss, ref, atol=1e-6)
    assert 0 < metrics["actor/pg_clipfrac"] < 1


def test_grpo_dispatch_matches_verl():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    R = torch.zeros(6, 3)
    R[:, -1] = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    M = torch.ones(6, 3)
    index = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    for norm in (True, False):
        algo = alg.algorithm_config(TrainConfig(estimator="grpo", norm_adv_by_std_in_grpo=norm))
        adv, _ = alg.compute_advantages("grpo", R, M, index, algo)
        ref, _ = compute_grpo_outcome_advantage(R, M, index, norm_adv_by_std_in_grpo=norm)
        assert torch.equal(adv, ref)
    assert math.isclose(float(adv[0, 0]), 2 / 3, rel_tol=1e-6)  # Dr. GRPO: r - mean


def test_data_order_is_an_epoch_permutation():
    seen = np.concatenate([step_prompts(10, 5, seed=1, step=s) for s in (1, 2)])
    assert sorted(seen) == list(range(10))
    assert list(step_prompts(10, 5, 1, 3)) == list(step_prompts(10, 5, 1, 3))


def test_bad_config_is_one_line(tiny_base, tiny_data, tmp_path):
    with pytest.raises(ValueError, match="unknown estimator 'riskpoo'; known: .*grpo"):
        train(_cfg(tiny_base, tiny_data, tmp_path / "x", estimator="riskpoo"))
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="unknown riskpo_mode 'paper'"):
        TrainConfig(riskpo_mode="paper")
    with pytest.raises(ValueError, match="train.steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(FileNotFoundError, match="no data file"):
        train(_cfg(tiny_base, tiny_data, tmp_path / "x", data=str(tmp_path / "missing.parquet")))
