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


def assert_group_gone(pgid: int, within_s: float = 10.0) -> None:
    """The stopped head's whole process group is gone (its last zombies reaped) within ``within_s``."""
    import time

    deadline = time.monotonic() + within_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "processes of the stopped head are still running"
        time.sleep(0.2)


#: a stage process given a LocalHead's env: attaches (no head of its own), runs a task, reports
STAGE = """
import json, os
import ray
from riskrl.cluster import enter_driver_cwd, ray_session

def where(cwd):
    before = os.getcwd()
    enter_driver_cwd(cwd)
    return before, os.getcwd()

with ray_session(None, num_cpus=1) as mode:
    pid, tok = ray.get(ray.remote(lambda: (os.getpid(), os.environ.get("TOKENIZERS_PARALLELISM"))).remote())
    nodes = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
    started_in, works_in = ray.get(ray.remote(where).remote(os.getcwd()))
print(json.dumps({"mode": mode, "pid": pid, "tok": tok, "nodes": nodes, "addr": os.environ["RAY_ADDRESS"],
                  "started_in": started_in, "works_in": works_in}))
"""


@pytest.mark.slow
def test_a_local_head_is_shared_by_stage_processes_and_stopped(tmp_path):
    import json
    import subprocess
    import sys

    from riskrl.cluster import LocalHead

    head = LocalHead(num_cpus=1).start()
    try:
        env = head.env()
        assert env["RAY_ADDRESS"] == head.address and env["RISKRL_RAY_SAME_HOST"] == "1"
        assert head.address.startswith("127.0.0.1:")
        runs = [json.loads(subprocess.run([sys.executable, "-c", STAGE], env={**os.environ, **env}, check=True,
                                          capture_output=True, text=True, timeout=300,
                                          cwd=tmp_path).stdout.splitlines()[-1])
                for _ in range(2)]
        for run in runs:  # both attached to the one loopback node, whose workers have the head's env
            assert run == {**run, "mode": "attached", "tok": "false", "nodes": ["127.0.0.1"], "addr": head.address}
            # the head's workers start where the head did; a task enters the stage's workspace
            assert run["started_in"] != str(tmp_path) and run["works_in"] == str(tmp_path)
        pgid = head.proc.pid
    finally:
        head.stop()
    assert_group_gone(pgid)
    with pytest.raises(ClusterError, match=r"^cannot reach the Ray cluster at 127\.0\.0\.1:\d+ within 1s"):
        with ray_session(env["RAY_ADDRESS"], connect_timeout_s=1):
            pass


@pytest.mark.slow
def test_a_shared_head_that_does_not_come_up_fails_in_one_line_every_time():
    from riskrl.cluster import LocalHead

    head = LocalHead(num_cpus=1, ready_timeout_s=0.01).start()
    pgid = head.proc.pid
    for _ in range(2):  # the first call stops it; later ones give the same line, not a crash
        with pytest.raises(ClusterError, match=r"^the local Ray head at 127\.0\.0\.1:\d+ did not start within 0\.01s$"):
            head.env()
    assert head.proc is None
    assert_group_gone(pgid)
    never = LocalHead(num_cpus=1)
    with pytest.raises(ClusterError, match="is not running"):
        never.env()
