import json

import pytest

from riskrl.embedded.ray_runner import _check_reachable, run_training_on_ray
from riskrl.embedded.trainer import TrainConfig


@pytest.mark.slow
def test_two_runs_as_ray_tasks_on_a_local_head(tiny_base, tiny_data, tmp_path):
    import ray

    cfgs = [
        TrainConfig(
            model=str(tiny_base),
            data=str(tiny_data / "train.parquet"),
            out=str(tmp_path / f"r{i}"),
            estimator=est,
            steps=2,
            prompts_per_step=4,
            n=4,
            max_new_tokens=4,
            save_every=0,
            tensorboard=False,
            progress=False,
        )
        for i, est in enumerate(["grpo", "rs_grpo"])
    ]
    results = run_training_on_ray(cfgs, num_cpus_per_run=1, progress=False)
    assert [r["estimator"] for r in results] == ["grpo", "rs_grpo"]
    for i in range(2):
        run = json.loads((tmp_path / f"r{i}" / "run.json").read_text())
        assert run["steps"] == 2 and run["num_threads"] == 1
        assert (tmp_path / f"r{i}" / "model" / "config.json").is_file()
    assert not ray.is_initialized()  # the local head it started is shut down again


def test_unreachable_cluster_is_one_line(tmp_path):
    cfg = TrainConfig(model="m", data="d", out=str(tmp_path))
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        run_training_on_ray([cfg], address="127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(ValueError, match="host:port"):
        _check_reachable("nonsense", 1)
    with pytest.raises(ValueError, match="num_threads=2"):
        run_training_on_ray([TrainConfig(model="m", data="d", out="o", num_threads=2)], num_cpus_per_run=1)
