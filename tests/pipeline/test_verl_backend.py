"""backend: verl on CPU, up to the GPU check: params -> verl overrides -> riskrl.verl config."""

import copy
import warnings
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module

from riskrl.config import load_params
from riskrl.pipeline import Paths
from riskrl.pipeline.stage import StageError
from riskrl.pipeline.train_steps import train, verl_overrides

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def verl_params(tmp_path):
    d = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    d["backend"] = "verl"
    d["train"]["variants"]["riskpo_track"].update(bundle_size=3, use_q_track_mode="mix", credit_assign_mode="sum-mean",
                                                  norm_adv_by_std_in_grpo=False)
    d["train"]["variants"]["rs_grpo_b2"]["beta"] = 4.0
    d["train"]["variants"]["dr_grpo"] = {"estimator": "grpo", "norm_adv_by_std_in_grpo": False}
    d["train"]["variants"]["rloo"] = {"estimator": "rloo"}
    d["verl"].update(n_gpus_per_node=2, overrides=["trainer.total_training_steps=7"])
    d["cluster"]["local_cpus"] = 1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(d))
    return load_params(path)


def compose_overrides(overrides):
    with initialize_config_module("riskrl.verl.config", version_base=None):
        return compose("riskrl_trainer", overrides=overrides)


def test_every_estimator_option_reaches_verls_config(verl_params, tmp_path):
    paths = Paths(tmp_path)
    cfg = compose_overrides(verl_overrides(verl_params, paths, "riskpo_track", 3e-5, 1))
    riskpo = verl_params.train.variant("riskpo_track").options
    assert riskpo["bundle_size"] == 3 and riskpo["use_q_track_mode"] == "mix" and riskpo["w_mix"] == 1.5  # preset math
    assert cfg.algorithm.norm_adv_by_std_in_grpo is False
    assert {k: cfg.algorithm.riskpo[k] for k in riskpo} == riskpo
    assert cfg.algorithm.adv_estimator == "riskpo"
    assert cfg.actor_rollout_ref.actor.optim.lr == 3e-5 and cfg.data.seed == 1
    assert cfg.trainer.n_gpus_per_node == 2 and cfg.trainer.total_training_steps == 7
    assert cfg.reward.custom_reward_function.name == "compute_score"
    assert cfg.reward.custom_reward_function.path.endswith("riskrl/rewards/__init__.py")
    assert cfg.trainer.default_local_dir.endswith("runs/riskpo_track/lr3e-05_s1")
    rs = compose_overrides(verl_overrides(verl_params, paths, "rs_grpo_b2", 3e-4, 0))
    assert rs.algorithm.adv_estimator == "rs_grpo" and rs.algorithm.rs_grpo.beta == 4.0
    assert rs.trainer.experiment_name == "rs_grpo_b2-lr0.0003_s0"
    dr = compose_overrides(verl_overrides(verl_params, paths, "dr_grpo", 3e-4, 0))
    assert dr.algorithm.adv_estimator == "grpo" and dr.algorithm.norm_adv_by_std_in_grpo is False
    rloo = verl_overrides(verl_params, paths, "rloo", 3e-4, 0)  # verl's own estimator: no algorithm.rloo.*
    assert "algorithm.adv_estimator=rloo" in rloo and not any(o.startswith("algorithm.rloo.") for o in rloo)


@pytest.mark.slow
def test_train_stage_stops_at_the_gpu_check(verl_params, tmp_path):
    # the preflight refuses before any data is read or any run folder is touched
    with pytest.raises(StageError, match=r"^train with backend: verl needs GPUs, and this machine has none"):
        train(verl_params, Paths(tmp_path), "riskpo_track")
    assert not (tmp_path / "runs").exists()
