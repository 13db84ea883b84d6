import dataclasses
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
    timing = json.loads((out / "run_timing.json").read_text())  # wall-clock figures live beside run.json
    assert run["algorithm"]["adv_estimator"] == estimator and {**run, **timing} == json.loads(json.dumps(info))
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


# (estimator, extra config): every estimator of the default study, RiskPO in both tracker modes
RESUME_CASES = {
    "grpo": dict(estimator="grpo"),
    "rs_grpo": dict(estimator="rs_grpo"),
    "riskpo_track": dict(estimator="riskpo", estimator_options={"use_q_track_mode": "track"}),
    "riskpo_batch": dict(estimator="riskpo", estimator_options={"use_q_track_mode": "batch"}),
    "passk": dict(estimator="passk", estimator_options={"k": 4}),
    "pkpo": dict(estimator="pkpo", estimator_options={"k": 4}),
}


def _scalars(tb_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard reads the directory (purged events dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_from_a_checkpoint_is_exact(tiny_base, tiny_data, tmp_path, case):
    kw = dict(RESUME_CASES[case], steps=4, save_every=1)
    full = tmp_path / "full"
    train(_cfg(tiny_base, tiny_data, full, **kw))
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == [f"step_{i}" for i in (1, 2, 3, 4)]
    full_tb = _scalars(full / "tensorboard")
    model_file = "model/model.safetensors"
    # a run "killed" after the step after the cut: only the cut's checkpoint survives, plus stale logs
    for cut_step in (1, 3):
        cut = tmp_path / f"cut{cut_step}"
        shutil.copytree(full / "checkpoints" / f"step_{cut_step}", cut / "checkpoints" / f"step_{cut_step}")
        (cut / "train_metrics.csv").write_text("garbage\n")
        train(_cfg(tiny_base, tiny_data, cut, **kw, resume=True))
        for a, b in zip(_weights(full / "model"), _weights(cut / "model"), strict=True):
            assert torch.equal(a, b), cut_step
        assert (full / model_file).read_bytes() == (cut / model_file).read_bytes()
        assert (full / "train_metrics.csv").read_text() == (cut / "train_metrics.csv").read_text()
        run = json.loads((cut / "run_timing.json").read_text())
        assert run["resumed_from_step"] == cut_step
        # TensorBoard: the resumed run logs only the steps after the cut, with the full run's values
        tb = _scalars(cut / "tensorboard")
        assert [s for s, _ in tb["train/reward_mean"]] == list(range(cut_step + 1, 5))
        for tag in ("train/reward_mean", "train/adv_std", "train/pg_loss"):
            assert tb[tag] == full_tb[tag][cut_step:], (cut_step, tag)
    # resuming with another lr is refused, naming the key
    with pytest.raises(ValueError, match="lr="):
        train(_cfg(tiny_base, tiny_data, tmp_path / "cut1", **kw, resume=True, lr=1.0))


def test_finished_run_resumes_to_a_no_op(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tiny_base, tiny_data, out, estimator="rs_grpo", steps=2, save_every=5)
    train(cfg)  # save_every > steps: the last step is still checkpointed
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_2"]
    files = ("model/model.safetensors", "model/tokenizer.json", "train_metrics.csv", "train_timing.csv")
    before = {f: (out / f).read_bytes() for f in files}
    tb_before = _scalars(out / "tensorboard")
    info = train(dataclasses.replace(cfg, resume=True))
    assert info["resumed_from_step"] == 2
    # wall-clock timings are not reproducible: an unchanged timing file means no step ran again
    assert {f: (out / f).read_bytes() for f in files} == before
    assert _scalars(out / "tensorboard") == tb_before
    # without resume the same directory starts over (and its timings change)
    train(cfg)
    assert (out / "train_timing.csv").read_bytes() != before["train_timing.csv"]


def test_keep_checkpoints_prunes_the_oldest(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tiny_base, tiny_data, out, steps=5, save_every=2, keep_checkpoints=2, tensorboard=False)
    train(cfg)  # saves at 2, 4 and 5 (the last step)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_4", "step_5"]
    train(dataclasses.replace(cfg, keep_checkpoints=0, save_every=1, steps=3))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_1", "step_2", "step_3"]


def test_resume_purges_tensorboard_events_after_the_checkpoint(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(tiny_base, tiny_data, out, estimator="grpo", steps=4, save_every=2)
    train(cfg)
    full = _scalars(out / "tensorboard")
    # the run is "killed" after step 4 was logged but before its checkpoint was written
    shutil.rmtree(out / "checkpoints" / "step_4")
    train(dataclasses.replace(cfg, resume=True))
    tb = _scalars(out / "tensorboard")
    # steps 3 and 4 were logged twice; TensorBoard shows each once, with the same values
    assert [s for s, _ in tb["train/reward_mean"]] == [1, 2, 3, 4]
    assert tb["train/reward_mean"] == full["train/reward_mean"]
    assert len(list((out / "tensorboard").glob("events.*"))) == 2  # the purge is a second event file


def _expected_advantages(name: str, scores, index, algorithm: dict):
    """Per-response advantages of ``name`` from a direct call of the estimator function."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from riskrl.estimators import (
        QuantileTracker,
        passk_advantage,
        pkpo_advantage,
        riskpo_advantage,
        rs_grpo_advantage,
    )

    if name == "grpo":
        R = scores[:, None]
        adv, _ = compute_grpo_outcome_advantage(
            R, torch.ones_like(R), index, norm_adv_by_std_in_grpo=algorithm["norm_adv_by_std_in_grpo"]
        )
        return adv[:, 0]
    if name == "rs_grpo":
        return rs_grpo_advantage(scores, index, beta=algorithm["rs_grpo"]["beta"])
    if name == "passk":
        o = algorithm["passk"]
        return passk_advantage(scores, index, k=o["k"], correct_threshold=o["correct_threshold"], eps=o["epsilon"])
    if name == "pkpo":
        return pkpo_advantage(scores, index, k=algorithm["pkpo"]["k"], baseline=algorithm["pkpo"]["baseline"])
    opts = dict(algorithm["riskpo"])
    tracker = QuantileTracker(lr_q=opts["lr_q"])  # fresh: step 1 of a run
    return riskpo_advantage(
        scores, index, tracker, norm_adv_by_std_in_grpo=algorithm["norm_adv_by_std_in_grpo"], **opts
    )


def test_trainer_applies_the_named_estimator(tiny_base, tiny_data, tmp_path, monkeypatch):
    """The same first batch under each estimator: the logged advantage statistics are those of a
    direct call of that estimator (so ``rs_grpo`` running as ``grpo`` or a dropped option fails)."""
    batches = []
    real = alg.compute_advantages

    def spy(name, R, M, index, algo_cfg):  # records the batch, computes nothing itself
        batches.append((R.clone(), M.clone(), np.array(index)))
        return real(name, R, M, index, algo_cfg)

    monkeypatch.setattr(alg, "compute_advantages", spy)
    variants = {
        "grpo": dict(estimator="grpo"),
        "grpo_no_std": dict(estimator="grpo", norm_adv_by_std_in_grpo=False),
        "rs_grpo_b2": dict(estimator="rs_grpo", estimator_options={"beta": 2.0}),
        "rs_grpo_b8": dict(estimator="rs_grpo", estimator_options={"beta": 8.0}),
        "riskpo": dict(estimator="riskpo", estimator_options={"use_q_track_mode": "batch"}),
        "riskpo_bundle2": dict(estimator="riskpo", estimator_options={"use_q_track_mode": "batch", "bundle_size": 2}),
        "passk_k2": dict(estimator="passk", estimator_options={"k": 2}),
        "passk_k3": dict(estimator="passk", estimator_options={"k": 3}),
        "pkpo_k2": dict(estimator="pkpo", estimator_options={"k": 2}),
        "pkpo_k2_mean": dict(estimator="pkpo", estimator_options={"k": 2, "baseline": "mean"}),
    }
    logged, rewards = {}, []
    for key, kw in variants.items():
        batches.clear()
        out = tmp_path / key
        info = train(_cfg(tiny_base, tiny_data, out, steps=1, tensorboard=False, **kw))
        ((R, M, index),) = batches
        rewards.append(R)  # every variant sees the same batch: only the estimator differs
        assert torch.equal(R, rewards[0]) and (R.sum(-1) > 0).any() and (R.sum(-1) == 0).any()
        per_resp = _expected_advantages(
            info["algorithm"]["adv_estimator"], R.sum(-1), index, info["algorithm"]
        )
        row = pd.read_csv(out / "train_metrics.csv").iloc[0]
        logged[key] = row
        assert row["adv_mean"] == pytest.approx(float(per_resp.mean()), abs=1e-6), key
        assert row["adv_std"] == pytest.approx(float(per_resp.std()), abs=1e-6), key
        assert row["adv_abs_max"] == pytest.approx(float(per_resp.abs().max()), abs=1e-6), key
        assert row["adv_pos_frac"] == pytest.approx(float((per_resp > 0).double().mean()), abs=1e-6), key
    # the variants are distinguishable on this batch (else the checks above would prove nothing)
    keys = list(variants)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            stats = [abs(logged[a][c] - logged[b][c]) for c in ("adv_mean", "adv_std", "adv_abs_max")]
            assert max(stats) > 1e-3, (a, b, stats)


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
    with pytest.raises(ValueError, match="train.estimator_options.use_q_track_mode='paper': Input should be"):
        TrainConfig(estimator="riskpo", estimator_options={"use_q_track_mode": "paper"})
    with pytest.raises(ValueError, match="train.steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(FileNotFoundError, match="no data file"):
        train(_cfg(tiny_base, tiny_data, tmp_path / "x", data=str(tmp_path / "missing.parquet")))
