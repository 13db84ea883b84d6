"""Ray for the pipeline: local head started and stopped, one-line errors for bad clusters."""

import os
import socket

import pytest
import ray

from riskrl.cluster import ClusterError, check_reachable, ray_session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_one_line():
    port = free_port()  # nothing listens there
    with pytest.raises(ClusterError, match=rf"^cannot reach the Ray cluster at 127.0.0.1:{port} within 1s"):
        with ray_session(f"127.0.0.1:{port}", connect_timeout_s=1):
            pass
    assert not ray.is_initialized()


def test_bad_address_format():
    with pytest.raises(ClusterError, match="ray address must be host:port"):
        check_reachable("not-an-address")


def test_env_address_wins(monkeypatch):
    port = free_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ClusterError, match=f"127.0.0.1:{port}"):
        with ray_session(None, connect_timeout_s=1):
            pass


@pytest.mark.slow
def test_local_head_runs_tasks_checks_gpus_and_stops(monkeypatch):
    monkeypatch.delenv("RISKRL_TEST_VAR", raising=False)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")

    def task_env(x):
        import os

        return x * 2, os.environ.get("TOKENIZERS_PARALLELISM"), os.environ.get("RISKRL_TEST_VAR")

    with ray_session(None, num_cpus=1, env_vars={"RISKRL_TEST_VAR": "1"}) as mode:
        assert mode == "local" and ray.is_initialized()
        # the session's env reaches the workers (as their environment: no runtime_env, so the
        # worker Ray prestarted at init runs the task)
        assert ray.get(ray.remote(task_env).remote(21)) == (42, "false", "1")
    assert not ray.is_initialized()
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true" and "RISKRL_TEST_VAR" not in os.environ
    with pytest.raises(ClusterError, match=r"^evaluate needs 1 GPU\(s\) but the Ray cluster has 0; on a CPU machine use backend: embedded"):
        with ray_session(None, num_cpus=1, gpus=1, what="evaluate"):
            pass
    assert not ray.is_initialized()
