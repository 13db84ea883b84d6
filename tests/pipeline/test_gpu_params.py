"""params/gpu-math.yaml (the runbook's study, docs/gpu.md) validates with the params schema."""

from pathlib import Path

import yaml
from hydra import compose, initialize_config_module

from riskrl.config import load_params

ROOT = Path(__file__).resolve().parents[2]
GPU_PARAMS = ROOT / "params" / "gpu-math.yaml"


def test_gpu_math_params_validate():
    p = load_params(GPU_PARAMS)
    assert p.backend == "verl"
    assert set(p.train.variants) == {"grpo", "rs_grpo_b2", "riskpo_track", "riskpo_batch"}
    est = {name: p.train.variant(name).estimator for name in p.train.variants}
    assert est == {"grpo": "grpo", "rs_grpo_b2": "rs_grpo", "riskpo_track": "riskpo", "riskpo_batch": "riskpo"}
    assert p.train.lrs == [1e-6]


def test_gpu_math_study_settings():
    """The published settings, and verl keys that exist in verl's config."""
    d = yaml.safe_load(GPU_PARAMS.read_text())
    v = d["verl"]
    assert (v["model_path"], v["rollout_n"], v["train_batch_size"], v["ppo_mini_batch_size"],
            v["max_response_length"], v["n_gpus_per_node"]) == ("Qwen/Qwen2.5-1.5B-Instruct", 5, 1024, 512, 1024, 8)
    assert [b["source"] for b in d["data"]["benchmarks"]] == ["math500", "aime_2024", "aime_2025", "amc23"]
    assert [t["source"] for t in d["data"]["train"]] == ["math", "gsm8k"] and d["evaluate"]["n"] == 32
    variants = d["train"]["variants"]
    assert variants["rs_grpo_b2"]["beta"] == 2.0
    assert variants["riskpo_track"]["use_q_track_mode"] == "track"
    assert variants["riskpo_batch"]["use_q_track_mode"] == "batch"
    from riskrl.estimators.options import RISKPO_PRESETS, RiskPOOptions

    for name in ("riskpo_track", "riskpo_batch"):  # the published MATH preset, every key
        opts = {k: x for k, x in variants[name].items() if k not in ("estimator", "norm_adv_by_std_in_grpo")}
        RiskPOOptions(**opts)
        assert {k: x for k, x in opts.items() if k != "use_q_track_mode"} == \
            {k: x for k, x in RISKPO_PRESETS["math"].items() if k != "use_q_track_mode"}
    with initialize_config_module("riskrl.verl.config", version_base=None):
        cfg = compose("riskrl_trainer", overrides=v["overrides"])
    assert cfg.trainer.total_training_steps == 200 and cfg.actor_rollout_ref.actor.use_kl_loss is False
