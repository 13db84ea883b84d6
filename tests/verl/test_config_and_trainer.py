"""verl path on CPU up to the GPU boundary: config composition, checks, trainer, checkpoints."""

import os
import warnings

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from riskrl.estimators import RISKPO_PRESETS, get_process_tracker, reset_process_tracker
from riskrl.verl import launch

warnings.filterwarnings("ignore")


def make_config(*overrides):
    with initialize_config_module("riskrl.verl.config", version_base=None):
        return compose("riskrl_trainer", overrides=list(overrides))


def test_config_declares_estimator_keys_with_published_defaults():
    cfg = make_config("algorithm.riskpo.bundle_size=7", "algorithm.rs_grpo.beta=4")  # no leading +
    riskpo = OmegaConf.to_container(cfg.algorithm.riskpo)
    assert riskpo.pop("epsilon") == pytest.approx(1e-6)
    assert riskpo == {**RISKPO_PRESETS["math"], "bundle_size": 7}
    assert cfg.algorithm.rs_grpo.beta == 4
    # verl's own defaults are all there (composed from pkg://verl.trainer.config)
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(1e-6)
    assert cfg.trainer.use_v1 is True and cfg.trainer.v1.trainer_mode == "riskrl_sync"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["algorithm.riskpo.quantile_down=0.95"], "algorithm.riskpo: quantile_down=0.95 must be < quantile_up=0.9"),
        (["algorithm.riskpo.bundle_size=0"], "algorithm.riskpo.bundle_size=0: Input should be greater than or equal to 1"),
        (["algorithm.riskpo.use_q_track_mode=online"], "algorithm.riskpo.use_q_track_mode='online': Input should be 'batch', 'track' or 'mix'"),
        (["algorithm.adv_estimator=riskpoo"], "unknown algorithm.adv_estimator 'riskpoo'; known: "),
        (["+algorithm.riskpo.foo=1"], "algorithm.unknown key riskpo.foo"),
        (["algorithm.riskpo.use_mixing_risk_measure=true", "algorithm.riskpo.risk_seeking_upper_tail=true"], "are alternatives"),
        (["+algorithm.bundle_size=-2"], "algorithm.riskpo.bundle_size=-2"),  # the fork's flat key
    ],
)
def test_bad_estimator_config_stops_at_start(overrides, message):
    cfg = make_config(*overrides)
    with pytest.raises(launch.LaunchError) as exc:
        launch.run(cfg)  # fails before Ray or any verl worker starts
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_override_key_is_caught_before_hydra():
    with pytest.raises(launch.LaunchError, match=r"^unknown key algorithm.rs_grpo.betta; known: beta$"):
        launch.check_override_keys(["trainer.total_epochs=1", "algorithm.rs_grpo.betta=2"])
    launch.check_override_keys(["algorithm.riskpo.lr_q=0.05", "+algorithm.riskpo.w_mix=2"])


def test_python_m_riskrl_verl_stops_on_an_unknown_key_in_one_line(monkeypatch):
    import runpy

    monkeypatch.setattr("sys.argv", ["riskrl.verl", "algorithm.rs_grpo.betta=2"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("riskrl.verl", run_name="__main__")
    assert str(e.value).startswith("riskrl: ") and "algorithm.rs_grpo.betta" in str(e.value)
    assert "\n" not in str(e.value)


def test_fork_flat_keys_override_nested():
    from riskrl.estimators.registry import riskpo_options_from_config

    cfg = make_config("+algorithm.bundle_size=3", "+algorithm.use_q_track_mode=batch")
    opts = riskpo_options_from_config(cfg.algorithm)
    assert opts.bundle_size == 3 and opts.use_q_track_mode == "batch" and opts.quantile_up == 0.9


class FakeWorkerGroup:
    def __init__(self):
        self.saved, self.loaded = [], []

    def save_checkpoint(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None):
        os.makedirs(local_path, exist_ok=True)
        self.saved.append(local_path)

    def load_checkpoint(self, local_path, del_local_after_load=False):
        self.loaded.append(local_path)


class FakeLoader:
    def __init__(self, state=None):
        self.state = state or {"epoch": 0, "batches": 0}

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


def make_trainer(tmp_path, *overrides):
    from riskrl.verl.trainer import RiskRLTrainerSync

    cfg = make_config("algorithm.adv_estimator=riskpo", f"trainer.default_local_dir={tmp_path}/ckpt",
                      "algorithm.riskpo.lr_q=0.05", "data.train_batch_size=4", *overrides)
    trainer = RiskRLTrainerSync(cfg)
    trainer.actor_rollout_wg = FakeWorkerGroup()
    trainer.train_dataloader = FakeLoader()
    return trainer


def riskpo_batch(step):
    """A distinct batch per step: 10 prompts x 4 responses, Bernoulli(p_prompt) rewards."""
    g = torch.Generator().manual_seed(step)
    bs, L = 40, 4
    p = torch.rand(bs // 4, generator=g).repeat_interleave(4)
    rewards = torch.zeros(bs, L)
    rewards[:, -1] = (torch.rand(bs, generator=g) < p).float()
    uid = np.array([f"p{step}-{i // 4}" for i in range(bs)], dtype=object)
    return rewards, uid


def riskpo_step(trainer, step):
    """One advantage computation through verl's own compute_advantage with the trainer's config."""
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rewards, uid = riskpo_batch(step)
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": torch.ones_like(rewards)},
                               non_tensors={"uid": uid})
    return compute_advantage(data, adv_estimator="riskpo", num_repeat=4, config=trainer.config.algorithm)


@pytest.fixture
def stepping(monkeypatch):
    """verl's ``_compute_advantage`` replaced by ``riskpo_step`` on batch ``metrics['step']``."""
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    monkeypatch.setattr(PPOTrainerSync, "_compute_advantage",
                        lambda self, batch, metrics: riskpo_step(self, metrics["step"]))

    def run(trainer, steps):
        out = []
        for step in steps:
            metrics = {"step": step}
            trainer._compute_advantage(None, metrics)
            out.append(metrics)
        return out

    return run


def test_trainer_logs_tracker_and_checkpoint_round_trip(tmp_path, stepping):
    trainer = make_trainer(tmp_path)
    assert trainer.trainer_mode == "sync" and trainer.riskpo
    assert get_process_tracker().lr_q == 0.05 and not get_process_tracker().initialized

    # the subclass adds the tracker's figures to verl's step metrics, for three distinct batches
    metrics = stepping(trainer, [1, 2, 3])
    for m in metrics:
        assert {"riskpo/a", "riskpo/b", "riskpo/mode", "riskpo/q_0.05", "riskpo/q_0.95"} <= set(m)
    assert [m["riskpo/mode"] for m in metrics] == [0.0, 1.0, 1.0]  # batch until the tracker is initialised
    levels = [k for k in metrics[0] if k.startswith("riskpo/q_")]
    assert any(metrics[1][k] != metrics[2][k] for k in levels)  # the tracker moved between steps
    state = get_process_tracker().state_dict()
    assert state["updates"] == 3

    trainer.global_steps = 3
    trainer._save_checkpoint()
    step_dir = tmp_path / "ckpt" / "global_step_3"
    assert (step_dir / "riskpo_tracker.pt").exists() and (step_dir / "data.pt").exists()
    assert (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").read_text() == "3"

    # a new run resumes: verl finds global_step_3, riskrl restores the tracker from it
    reset_process_tracker()
    resumed = make_trainer(tmp_path)
    assert get_process_tracker().updates == 0
    resumed._load_checkpoint()
    assert resumed.global_steps == 3
    assert resumed.actor_rollout_wg.loaded == [str(step_dir / "actor")]
    restored = get_process_tracker().state_dict()
    assert torch.equal(restored["q"], state["q"]) and restored["updates"] == 3 and restored["initialized"]

    # and step 4 after the resume equals step 4 of an uninterrupted run
    after_resume = stepping(resumed, [4])[0]
    reset_process_tracker()
    straight = make_trainer(tmp_path / "straight")
    assert stepping(straight, [1, 2, 3, 4])[-1] == after_resume


def test_resume_path_restores_the_named_step(tmp_path, stepping):
    trainer = make_trainer(tmp_path)
    states = {}
    for step in (1, 2, 3, 4):
        stepping(trainer, [step])
        if step % 2 == 0:
            trainer.global_steps = step
            trainer._save_checkpoint()
            states[step] = get_process_tracker().state_dict()
    assert not torch.equal(states[2]["q"], states[4]["q"])
    # resume_mode=resume_path: the named (older) step, not the latest one auto would pick
    resumed = make_trainer(tmp_path, "trainer.resume_mode=resume_path",
                           f"trainer.resume_from_path={tmp_path}/ckpt/global_step_2")
    assert not get_process_tracker().initialized
    resumed._load_checkpoint()
    assert resumed.global_steps == 2
    assert resumed.actor_rollout_wg.loaded == [str(tmp_path / "ckpt" / "global_step_2" / "actor")]
    restored = get_process_tracker().state_dict()
    assert torch.equal(restored["q"], states[2]["q"]) and restored["updates"] == 2
    # resume_mode=auto on the same directory picks step 4
    auto = make_trainer(tmp_path)
    auto._load_checkpoint()
    assert auto.global_steps == 4 and get_process_tracker().state_dict()["updates"] == 4


def test_resume_without_tracker_file_warns_and_starts_fresh(tmp_path, caplog, stepping):
    trainer = make_trainer(tmp_path)
    stepping(trainer, [1, 2])
    assert get_process_tracker().initialized  # the process tracker holds an updated state
    trainer.global_steps = 2
    trainer._save_checkpoint()
    (tmp_path / "ckpt" / "global_step_2" / "riskpo_tracker.pt").unlink()
    resumed = make_trainer(tmp_path)  # same process: the previous run's tracker must not leak
    with caplog.at_level("WARNING", logger="riskrl.verl"):
        resumed._load_checkpoint()
    assert resumed.global_steps == 2
    tracker = get_process_tracker()
    assert not tracker.initialized and tracker.updates == 0 and tracker.lr_q == 0.05
    assert "has no riskpo_tracker.pt" in caplog.text
    # the first step after such a resume uses batch quantiles, as a fresh run's first step
    assert stepping(resumed, [3])[0]["riskpo/mode"] == 0.0
