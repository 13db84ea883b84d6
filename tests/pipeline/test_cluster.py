"""Ray for the pipeline: local heads started and stopped (one per stage, or one per DVC run), one-line errors for bad clusters."""

import os
import socket
import sys

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


#: a stage command of a DVC run (share=True): which head it used, and what its task saw
SHARED_STAGE = """
import json, os, sys
from riskrl.cluster import ray_session

with ray_session(None, num_cpus=1, share=True) as mode:
    import ray  # after the session starts, as the stages do: Ray reads the head's token at import

    task_env = ray.get(ray.remote(lambda: (os.environ.get("DVC_STAGE"), os.environ.get("TOKENIZERS_PARALLELISM")))
                       .remote())
    gcs = ray.get_runtime_context().gcs_address
print(json.dumps({"mode": mode, "gcs": gcs, "task_env": task_env, "stage": os.environ.get("DVC_STAGE")}))
"""

#: stands in for `dvc repro` (its argv[1] is named dvc): runs the stage commands of argv[2:] one
#: after another through a shell with $DVC_STAGE set, as DVC does, printing their last lines
FAKE_DVC = """
import os, subprocess, sys
for i, script in enumerate(sys.argv[1:]):
    out = subprocess.run(f"{sys.executable} {script}", shell=True, env={**os.environ, "DVC_STAGE": f"s{i}"},
                         check=True, capture_output=True, text=True, timeout=300).stdout
    print(out.splitlines()[-1], flush=True)
if os.environ.get("HOLD"):  # keep running: the head must stay up until this process exits
    print("holding", flush=True)
    sys.stdin.read()
"""


def _heads_dirs() -> set[str]:
    import tempfile
    from pathlib import Path

    from riskrl.cluster import RUN_HEADS

    root = Path(tempfile.gettempdir(), f"{RUN_HEADS}-{os.getuid()}")
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


@pytest.mark.slow
def test_the_stages_of_one_dvc_run_share_a_head_that_stops_when_dvc_exits(tmp_path):
    import json
    import socket
    import subprocess
    import sys
    import time

    (tmp_path / "dvc").write_text(FAKE_DVC)
    (tmp_path / "stage.py").write_text(SHARED_STAGE)
    before = _heads_dirs()
    proc = subprocess.Popen([sys.executable, str(tmp_path / "dvc"), "stage.py", "stage.py"], cwd=tmp_path,
                            env={**os.environ, "HOLD": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        runs = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert proc.stdout.readline().strip() == "holding"
        # both stages attached to one head, started for the run; its tasks have the head's env, not a stage's
        assert [r["mode"] for r in runs] == ["shared", "shared"] and runs[0]["gcs"] == runs[1]["gcs"]
        assert [r["stage"] for r in runs] == ["s0", "s1"]
        assert all(r["task_env"] == [None, "false"] for r in runs)
        host, port = runs[0]["gcs"].rsplit(":", 1)
        assert host == "127.0.0.1"
        socket.create_connection((host, int(port)), timeout=5).close()  # still up while DVC runs
        (new,) = _heads_dirs() - before
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    # DVC has exited: the head stops and its state is removed
    assert _wait_closed(runs[0]["gcs"], 30), "the run's Ray head still serves after its DVC process exited"
    deadline = time.monotonic() + 10
    while new in _heads_dirs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert new not in _heads_dirs()

    # a stage that DVC does not run starts and stops a head of its own, as before
    out = subprocess.run([sys.executable, "stage.py"], cwd=tmp_path, check=True, capture_output=True, text=True,
                         timeout=300).stdout
    assert json.loads(out.splitlines()[-1])["mode"] == "local"


def _wait_closed(gcs: str, within_s: float) -> bool:
    import socket
    import time

    host, port = gcs.rsplit(":", 1)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only")
def test_a_run_head_whose_keeper_is_killed_stops(tmp_path):
    import json
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    from riskrl.cluster import RUN_HEADS, _sweep

    (tmp_path / "dvc").write_text(FAKE_DVC)
    (tmp_path / "stage.py").write_text(SHARED_STAGE)
    before = _heads_dirs()
    proc = subprocess.Popen([sys.executable, str(tmp_path / "dvc"), "stage.py"], cwd=tmp_path,
                            env={**os.environ, "HOLD": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        run = json.loads(proc.stdout.readline())
        assert run["mode"] == "shared"
        (new,) = _heads_dirs() - before
        info = json.loads(Path(tempfile.gettempdir(), f"{RUN_HEADS}-{os.getuid()}", new, "head.json").read_text())
        assert info["env"]["RAY_ADDRESS"] == run["gcs"] and len(info["env"]["RAY_AUTH_TOKEN"]) == 64
        os.kill(info["keeper"], signal.SIGKILL)  # the head is told to stop (SIGTERM) by the kernel
        assert _wait_closed(run["gcs"], 30), "the run head outlived its killed keeper"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    # the next run head's start sweeps what the killed keeper left: its state and the head's temp dir
    assert Path(info["temp_dir"]).is_dir() and new in _heads_dirs()
    _sweep(Path(tempfile.gettempdir(), f"{RUN_HEADS}-{os.getuid()}"))
    assert not Path(info["temp_dir"]).exists() and new not in _heads_dirs()


def test_the_dvc_process_of_a_stage_is_recognised_by_its_command_line(monkeypatch):
    from riskrl.cluster import _is_dvc, repro_owner

    assert _is_dvc(["/venv/bin/python", "/venv/bin/dvc", "repro"])  # the console script, through its shebang
    assert _is_dvc(["dvc", "exp", "run"]) and _is_dvc(["python3", "-m", "dvc", "repro", "-s", "train@grpo"])
    assert not _is_dvc(["python", "stages/train.py", "grpo"]) and not _is_dvc(["python", "-m", "pytest", "dvc"])
    assert not _is_dvc(["/usr/bin/bash", "-c", "dvc repro"]) and not _is_dvc([])
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert repro_owner() is None  # not a stage command: no head is shared
    monkeypatch.setenv("DVC_STAGE", "train@grpo")
    assert repro_owner() is None  # a stage command whose parents (pytest, a shell) are not DVC
