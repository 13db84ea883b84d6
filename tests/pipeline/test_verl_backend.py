"""backend: verl on CPU, up to the GPU check: params -> verl overrides -> riskrl.verl config."""

import copy
import warnings
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module

from riskrl.cluster import ClusterError
from riskrl.config import load_params
from riskrl.pipeline import Paths
from riskrl.pipeline.train_steps import train, verl_overrides

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def verl_params(tmp_path):
    d = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    d["backend"] = "verl"
    d["train"]["riskpo"].update(bundle_size=3, use_q_track_mode="mix", credit_assign_mode="sum-mean")
    d["train"]["rs_grpo"]["beta"] = 4.0
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
    cfg = compose_overrides(verl_overrides(verl_params, paths, "riskpo", 3e-5, 1))
    riskpo = verl_params.train.riskpo.model_dump()
    assert cfg.algorithm.norm_adv_by_std_in_grpo is riskpo.pop("norm_adv_by_std_in_grpo")
    assert {k: cfg.algorithm.riskpo[k] for k in riskpo} == riskpo
    assert cfg.algorithm.adv_estimator == "riskpo"
    assert cfg.actor_rollout_ref.actor.optim.lr == 3e-5 and cfg.data.seed == 1
    assert cfg.trainer.n_gpus_per_node == 2 and cfg.trainer.total_training_steps == 7
    assert cfg.reward.custom_reward_function.name == "compute_score"
    assert cfg.reward.custom_reward_function.path.endswith("riskrl/rewards/__init__.py")
    assert cfg.trainer.default_local_dir.endswith("runs/riskpo/lr3e-05_s1")
    rs = compose_overrides(verl_overrides(verl_params, paths, "rs_grpo", 3e-4, 0))
    assert rs.algorithm.adv_estimator == "rs_grpo" and rs.algorithm.rs_grpo.beta == 4.0


@pytest.mark.slow
def test_train_stage_stops_at_the_gpu_check(verl_params, tmp_path):
    with pytest.raises(ClusterError, match=r"^train \(riskpo, backend verl\) needs 2 GPU\(s\) but the Ray cluster has 0"):
        train(verl_params, Paths(tmp_path), "riskpo")
