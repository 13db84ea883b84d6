"""backend: verl with a cluster address: every run of the train stage is a Ray job on the cluster.

The slow test starts a real `ray start --head` cluster (dashboard + job server on loopback, its
own ports and temp dir, no GPUs) and stops it by its process group in teardown."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from riskrl.config import load_params
from riskrl.pipeline import Paths
from riskrl.pipeline.stage import StageError
from riskrl.pipeline.verl_jobs import job_client, job_server_address, last_error_line

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_job_server_address(monkeypatch):
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    assert job_server_address("10.0.0.5:6379") == "http://10.0.0.5:8265"
    assert job_server_address("ray://head.example:10001") == "http://head.example:8265"
    assert job_server_address("http://head:9000") == "http://head:9000"
    assert job_server_address("auto") == "http://127.0.0.1:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:1234")
    assert job_server_address("10.0.0.5:6379") == "http://127.0.0.1:1234"


def test_last_error_line():
    log = ["step 1", "Traceback (most recent call last):", '  File "x.py", line 3, in f',
           "ValueError: bad batch size", "", "done?"]
    assert last_error_line(log) == "ValueError: bad batch size"
    assert last_error_line(["loading", "riskrl: the verl backend needs GPUs (0 < 8)", "  "]) == \
        "riskrl: the verl backend needs GPUs (0 < 8)"
    assert last_error_line(["a", "b"]) == "b"
    assert last_error_line([], fallback="no output") == "no output"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the head's process group (raylet, GCS, dashboard: all started by this test), then SIGKILL
    (`ray start --block` spends ~30 s on a graceful stop that this throwaway head does not need)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def start_head(tmp_path: Path, attempt: int):
    gcs, dash, agent, agent_grpc, env_agent, metrics, client = free_ports(7)
    temp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    log_path = tmp_path / f"ray-head-{attempt}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}", "--node-ip-address=127.0.0.1",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
             f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
             f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
             f"--ray-client-server-port={client}", "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp}",
             "--disable-usage-stats"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    return proc, temp, log_path, {"address": f"127.0.0.1:{gcs}", "server": f"http://127.0.0.1:{dash}"}


@pytest.fixture
def ray_head(tmp_path):
    """A `ray start --head --block` cluster with the dashboard's job server, on loopback (started
    again, up to 3 times, when the raylet misses Ray's fixed 30 s start-up window on a loaded machine)."""
    auth_mode = os.environ.get("RAY_AUTH_MODE")  # job_client may switch this process to token auth
    for attempt in range(3):
        proc, temp, log_path, head = start_head(tmp_path, attempt)
        deadline = time.monotonic() + 240
        while proc.poll() is None:
            try:
                job_client(head["server"]).list_jobs()
                break
            except Exception:
                if time.monotonic() > deadline:
                    stop_group(proc)
                    raise
                time.sleep(2)
        if proc.poll() is None:
            break
        stop_group(proc)
        shutil.rmtree(temp, ignore_errors=True)
        if attempt == 2:
            raise RuntimeError(f"ray start exited {proc.returncode}: {log_path.read_text()[-2000:]}")
    try:
        yield head
    finally:
        stop_group(proc)
        shutil.rmtree(temp, ignore_errors=True)
        if auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_train_stage_submits_each_run_as_a_ray_job(ray_head, tmp_path, monkeypatch, capsys):
    from riskrl.pipeline.data_steps import prepare
    from riskrl.pipeline.train_steps import train

    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", ray_head["server"])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    d = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    d["backend"] = "verl"
    d["cluster"]["address"] = ray_head["address"]
    d["train"].update(lrs=[3e-5, 3e-4], seeds=[0])
    d["verl"].update(n_gpus_per_node=1, rollout_n=2, train_batch_size=4, ppo_mini_batch_size=4,
                     micro_batch_size_per_gpu=2, overrides=[f"hydra.run.dir={tmp_path}/hydra"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d))
    p = load_params(tmp_path / "params.yaml")
    estimator = "riskpo_track"  # the variant (estimator riskpo)
    prepare(p, Paths(tmp_path))  # the stage's preflight reads the training data first

    with pytest.raises(StageError) as err:
        train(p, Paths(tmp_path), estimator)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"verl job riskrl-{estimator}-lr3e-05_s0-")
    assert f"({estimator}/lr3e-05_s0) failed: riskrl: the verl backend needs GPUs " \
           "(Total available GPUs 0 is less than total desired GPUs 1)" in msg
    job_id = msg.split()[2]
    out = capsys.readouterr().out
    assert f"[{job_id}] submitted to {ray_head['server']}: {estimator}/lr3e-05_s0" in out
    assert f"[{job_id}] riskrl: the verl backend needs GPUs" in out  # the job's log, streamed
    jobs = job_client(ray_head["server"]).list_jobs()
    assert [j.submission_id for j in jobs] == [job_id]  # the failed run stopped the stage: no second job
    job = jobs[0]
    assert job.entrypoint.startswith("python -m riskrl.verl algorithm.adv_estimator=riskpo ")
    assert f"+ray_kwargs.ray_init.address={ray_head['address']}" in job.entrypoint
    assert job.runtime_env["working_dir"].startswith("gcs://")  # the project, uploaded
    assert job.runtime_env["env_vars"]["TOKENIZERS_PARALLELISM"] == "false"
