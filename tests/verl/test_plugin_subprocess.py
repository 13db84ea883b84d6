"""The plugin as a user meets it: fresh interpreters that import only verl."""

import os
import subprocess
import sys
import textwrap

import pytest

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}
pytestmark = pytest.mark.slow  # every test starts a fresh interpreter that imports verl


def tiny_run_overrides(tmp_path) -> list[str]:
    """verl overrides of a one-GPU run small enough to pass verl's config checks (for the tests
    that reach the launcher's GPU check on a CPU machine), its outputs under ``tmp_path``."""
    return ["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2", "actor_rollout_ref.rollout.name=vllm",
            "data.train_batch_size=4", "actor_rollout_ref.actor.ppo_mini_batch_size=4", "trainer.n_gpus_per_node=1",
            "+ray_kwargs.ray_init.num_cpus=1", f"trainer.default_local_dir={tmp_path}/ckpt",
            f"hydra.run.dir={tmp_path}/hydra"]


def run_py(code: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=ENV, timeout=timeout)


def test_fresh_verl_resolves_and_runs_all_estimators():
    proc = run_py(
        """
        import sys
        import numpy as np, torch
        from verl import DataProto
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        from verl.trainer.ppo.ray_trainer import compute_advantage
        from omegaconf import OmegaConf
        for n in ("riskpo", "rs_grpo", "passk", "pkpo"): get_adv_estimator_fn(n)
        bs, L = 12, 5
        g = torch.Generator().manual_seed(0)
        mask = torch.ones(bs, L, dtype=torch.int64); mask[:, 3:] = 0; mask[0, 2:] = 0
        rewards = torch.zeros(bs, L); rewards[torch.arange(bs), mask.sum(1) - 1] = (torch.rand(bs, generator=g) > 0.5).float()
        uid = np.array([f"u{i // 3}" for i in range(bs)], dtype=object)
        cfg = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "rs_grpo": {"beta": 2.0},
                                "riskpo": {"bundle_size": 2, "use_q_track_mode": "batch"},
                                "passk": {"k": 2}, "pkpo": {"k": 2, "baseline": "loo"}})
        import riskrl.estimators as E
        scores = rewards.sum(-1)
        refs = {"rs_grpo": E.rs_grpo_advantage(scores, uid, 2.0),
                "riskpo": E.riskpo_advantage(scores, uid, None, bundle_size=2, use_q_track_mode="batch"),
                "passk": E.passk_advantage(scores, uid, 2), "pkpo": E.pkpo_advantage(scores, uid, 2, "loo")}
        for name in ("rs_grpo", "riskpo", "passk", "pkpo"):
            data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": uid})
            out = compute_advantage(data, adv_estimator=name, num_repeat=3, config=cfg)
            adv = out.batch["advantages"]
            assert torch.equal(adv, out.batch["returns"])
            assert adv.shape == (bs, L) and torch.all(adv[mask == 0] == 0)
            torch.testing.assert_close(adv, refs[name].unsqueeze(-1) * mask, atol=1e-6, rtol=1e-6)
            print(name, "ok", float(adv.abs().sum()))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("rs_grpo", "riskpo", "passk", "pkpo"):
        assert f"{name} ok" in proc.stdout
        assert f"{name} ok 0.0" not in proc.stdout  # a non-trivial advantage reached verl's batch


FORBIDDEN = ("pandas", "scipy", "prefect", "dvc", "great_expectations", "matplotlib", "datasets")


def test_import_verl_loads_slim_plugin_and_no_pipeline_stack():
    """verl imports the plugin in every process: that must not pull in the pipeline stack, nor
    verl's core_algos (transformers, scipy); registration waits for the registry's import."""
    proc = run_py(
        f"""
        import sys
        import verl
        forbidden = {FORBIDDEN!r}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
        print("plugin", "riskrl.verl_plugin" in sys.modules)
        print("core_algos", "verl.trainer.ppo.core_algos" in sys.modules)
        print("riskrl", sorted(m for m in sys.modules if m.startswith("riskrl")))
        print("forbidden", loaded[:20])
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
        print("registered", [n for n in ("rs_grpo", "riskpo", "passk", "pkpo") if n in ADV_ESTIMATOR_REGISTRY])
        print("forbidden-after", sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "prefect", "dvc",
              "great_expectations", "matplotlib", "datasets"))[:20])
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert "plugin True" in out
    assert "core_algos False" in out
    assert "riskrl ['riskrl', 'riskrl.verl_plugin']" in out
    assert "forbidden []" in out
    # the registry, once imported, holds all four (registering pulls no pipeline module either)
    assert "registered ['rs_grpo', 'riskpo', 'passk', 'pkpo']" in out
    assert "forbidden-after []" in out


def test_registry_lookup_in_fresh_process_without_importing_verl_first():
    proc = run_py(
        """
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        for name in ("riskpo", "rs_grpo", "passk", "pkpo", "grpo_bundle_RVaR_quantile_tracking"):
            print(name, get_adv_estimator_fn(name).__name__)
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "passk compute_passk_outcome_advantage" in proc.stdout
    assert "pkpo compute_pkpo_outcome_advantage" in proc.stdout
    assert "grpo_bundle_RVaR_quantile_tracking compute_riskpo_outcome_advantage" in proc.stdout


def test_only_verl_imported_registers_plugin():
    proc = run_py(
        """
        import sys
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
        print(sorted(k for k in ("riskpo", "rs_grpo", "passk", "pkpo", "grpo_bundle_RVaR_quantile_tracking")
                     if k in ADV_ESTIMATOR_REGISTRY))
        print("loaded-by", "riskrl.verl_plugin" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['grpo_bundle_RVaR_quantile_tracking', 'passk', 'pkpo', 'riskpo', 'rs_grpo']" in proc.stdout
    assert "loaded-by True" in proc.stdout


def test_broken_plugin_is_loud():
    # simulate a broken install: riskrl.estimators cannot be imported
    proc = run_py(
        """
        import sys
        sys.modules["riskrl.estimators"] = None
        import verl
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        try:
            get_adv_estimator_fn("riskpo")
        except ValueError as e:
            print("unknown:", e)
        """
    )
    assert "riskrl verl plugin failed to load" in proc.stderr
    assert "ModuleNotFoundError" in proc.stderr or "ImportError" in proc.stderr
    assert "unknown:" in proc.stdout


@pytest.mark.slow
def test_launcher_stops_at_gpu_boundary_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "riskrl.verl", "algorithm.adv_estimator=riskpo", *tiny_run_overrides(tmp_path)],
        capture_output=True, text=True, env={**ENV, "RAY_ADDRESS": ""}, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("riskrl: the verl backend needs GPUs (Total available GPUs 0 is less than total desired GPUs 1)")
    assert "embedded backend" in last


@pytest.mark.parametrize(
    "override, message",
    [
        ("algorithm.riskpo.bundel_size=3", "riskrl: unknown key algorithm.riskpo.bundel_size; known: quantile_down,"),
        ("algorithm.riskpo.quantile_down=0.95", "riskrl: algorithm.riskpo: quantile_down=0.95 must be < quantile_up=0.9"),
    ],
)
def test_launcher_bad_config_one_line(override, message, tmp_path):
    """End to end through ``python -m riskrl.verl`` (the in-process tests cover the other cases)."""
    proc = subprocess.run([sys.executable, "-m", "riskrl.verl", override, f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, env=ENV, timeout=180, cwd=tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(message), proc.stderr[-2000:]
