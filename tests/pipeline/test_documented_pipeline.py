"""Documented commands that start Ray, verl or DVC: attaching to a running cluster through
`cluster.address`, the `riskrl-verl` console script, `dvc push` / `dvc pull` to the default remote."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.pipeline.conftest import BIN, ROOT, env, run
from tests.verl.test_plugin_subprocess import tiny_run_overrides

pytestmark = pytest.mark.slow
DVC = str(BIN / "dvc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(monkeypatch):
    """`ray start --head` on 127.0.0.1 (its own temp dir, port and auth token), stopped in teardown:
    the `ray start --block` process is signalled, then its whole process group."""
    token = secrets.token_hex(32)  # Ray's token auth: the head and this driver share it by env
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    for k, v in auth.items():
        monkeypatch.setenv(k, v)
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths have a length limit
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
           "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp_dir}",
           "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env={**env(), **auth}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # minutes on a loaded 2-core machine
        while True:  # the port answers before the GCS serves: wait until `ray status` sees the node
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                status = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], env={**env(), **auth},
                                        capture_output=True, text=True, timeout=60)
                if status.returncode == 0 and "CPU" in status.stdout:
                    break
            except (OSError, subprocess.TimeoutExpired):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ray start --head failed: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(1)
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)  # ray start --block stops the head's processes
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind in its session
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


#: a stage's view of `cluster.address`: a fresh interpreter attaches (as `python stages/X.py` does,
#: never inheriting this test process's Ray state) and runs one task in the shipped runtime_env
ATTACH = """
import json, os, sys
from pathlib import Path
import ray
from riskrl.cluster import ray_session

def view():
    import riskrl
    cwd = Path.cwd()
    return {"riskrl": str(Path(riskrl.__file__).resolve().parents[1]), "cwd": str(cwd),
            "has_params": (cwd / "params.yaml").is_file(), "has_code": (cwd / "riskrl" / "cluster.py").is_file(),
            "has_stages": (cwd / "stages").is_dir(), "has_data": (cwd / "data").exists(),
            "has_git": (cwd / ".git").exists(), "tokenizers": os.environ.get("TOKENIZERS_PARALLELISM")}

with ray_session(sys.argv[1], connect_timeout_s=30) as mode:
    out = {"mode": mode, "cpus": ray.cluster_resources().get("CPU"),
           "view": ray.get(ray.remote(num_cpus=1)(view).remote(), timeout=600)}
out["initialized_after"] = ray.is_initialized()
print("RESULT " + json.dumps(out))
"""


def test_cluster_address_attaches_and_ships_the_project(ray_head):
    import json

    e = {**env(), "RAY_AUTH_MODE": os.environ["RAY_AUTH_MODE"], "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],
         "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(BIN / "python"), "-c", ATTACH, ray_head], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert out["mode"] == "attached"
    assert out["cpus"] == 1.0  # the test's head, not a new local one
    assert not out["initialized_after"]
    view = out["view"]
    # the task ran in the shipped runtime_env working dir: this project's code and params, without
    # data, git and the venv, and the project's env vars
    assert Path(view["cwd"]).resolve() != ROOT and view["riskrl"] == str(Path(view["cwd"]).resolve())
    assert view["has_params"] and view["has_code"] and view["has_stages"]
    assert not view["has_data"] and not view["has_git"]
    assert view["tokenizers"] == "false"


def test_riskrl_verl_console_script_stops_at_the_gpu_check(tmp_path):
    script = BIN / "riskrl-verl"
    assert script.is_file(), "the riskrl-verl console script is not installed"
    proc = subprocess.run(
        [str(script), "algorithm.adv_estimator=rs_grpo", "algorithm.rs_grpo.beta=4", *tiny_run_overrides(tmp_path)],
        capture_output=True, text=True, env={**env(), "RAY_ADDRESS": ""}, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("riskrl: the verl backend needs GPUs (Total available GPUs 0 is less than total "
                           "desired GPUs 1)"), proc.stderr[-3000:]
    assert "embedded backend" in last
    assert not (tmp_path / "ckpt").exists()


def test_dvc_push_then_pull_restores_every_output(micro_repo):
    """`dvc push` to the default remote (`local`, a directory next to the repository), then a
    clone without cache or outputs gets them back with `dvc pull`."""
    remote = (micro_repo / ".dvc" / ".." / ".." / "riskrl-dvc-remote").resolve()
    assert remote.parent == micro_repo.parent  # the shipped default: outside the repository
    run([DVC, "push"], micro_repo)
    assert any(p.is_file() for p in remote.rglob("*"))
    clone = micro_repo.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(micro_repo), str(clone)], check=True, capture_output=True)
    # what git does not carry: every DVC output of the study
    missing = sorted(p.relative_to(micro_repo) for p in micro_repo.rglob("*") if p.is_file()
                     and ".dvc" not in p.parts and ".git" not in p.parts and not (clone / p.relative_to(micro_repo)).exists())
    assert any(p.parts[0] == "models" for p in missing) and any(p.parts[0] == "runs" for p in missing)
    # the clone's default remote resolves to the same directory (both sit in the same parent)
    run([DVC, "pull"], clone)
    import pathspec

    # .dvcignore'd files (timings, GE's timestamped results) are neither cached nor pushed
    spec = pathspec.PathSpec.from_lines("gitwildmatch", (micro_repo / ".dvcignore").read_text().splitlines())
    restored = [rel for rel in missing if rel.name != "repro.log" and not spec.match_file(rel.as_posix())]
    assert any(r.parts[0] == "models" for r in restored) and any(r.parts[0] == "runs" for r in restored)
    for rel in restored:  # repro.log: the fixture's own log, not an output
        assert (clone / rel).read_bytes() == (micro_repo / rel).read_bytes(), rel
    for rel in set(missing) - set(restored):
        assert not (clone / rel).exists() or rel.name == "repro.log", rel
    status = run([DVC, "status"], clone).stdout
    assert "Data and pipelines are up to date." in status, status

