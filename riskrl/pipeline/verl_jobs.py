"""verl runs of the train stage: Ray jobs on a cluster, or local subprocesses.

With a cluster (``cluster.address`` or ``$RAY_ADDRESS``), each run is submitted with Ray's
``JobSubmissionClient`` as the job ``python -m riskrl.verl <overrides>``, the project as the
job's ``working_dir`` (the same excludes as the pipeline's Ray sessions) and its env, so verl's
driver runs on the cluster, not on the machine that started ``dvc repro``. The job's logs stream
into the stage's output; a failed job stops the stage with one line naming the job and its last
error line. Runs go one after another: each asks for all of ``verl.n_gpus_per_node x nnodes``.

The job server is the cluster's dashboard: ``$RAY_API_SERVER_ADDRESS`` when set (Ray's own
variable), else ``http://<host of the address>:8265`` (``ray start --head``'s default port).

Paths in the overrides (data files, ``trainer.default_local_dir``, the reward file) are absolute
paths of this machine: the cluster must see the project at the same path (a shared filesystem,
or ``dvc repro`` run on the head node); docs/gpu.md.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from riskrl.pipeline.stage import StageError

DASHBOARD_PORT = 8265
#: environment variables of this machine that the jobs get too (tokens, caches, engine settings)
FORWARD_ENV_PREFIXES = ("HF_", "HUGGING_FACE_", "WANDB_", "VLLM_", "RISKRL_", "TRANSFORMERS_")
_ERROR_RE = re.compile(r"(error|exception|traceback|riskrl: |failed)", re.IGNORECASE)
_TAIL_LINES = 200


@dataclass(frozen=True)
class VerlRun:
    """One ``python -m riskrl.verl`` run: its name (``<estimator>/<lr..._s...>``), the Hydra
    overrides, the run directory (``trainer.default_local_dir``) and what ``run.json`` records."""

    name: str
    overrides: list[str]
    out: Path
    meta: dict = field(default_factory=dict)


def job_server_address(address: str) -> str:
    """The HTTP address of the cluster's job server for a Ray ``address``."""
    explicit = os.environ.get("RAY_API_SERVER_ADDRESS")
    if explicit:
        return explicit
    if address.startswith(("http://", "https://")):
        return address
    if address == "auto":
        return f"http://127.0.0.1:{DASHBOARD_PORT}"
    host = address.split("://", 1)[-1].rstrip("/").rpartition(":")[0] or "127.0.0.1"
    return f"http://{host}:{DASHBOARD_PORT}"


def job_client(server: str):
    """``JobSubmissionClient(server)``, with Ray's token auth when this machine has a token and
    ``RAY_AUTH_MODE`` is unset (the rule ``ray start`` applies; a head started that way expects it)."""
    from ray.job_submission import JobSubmissionClient

    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    except ImportError:  # a Ray without token auth
        pass
    return JobSubmissionClient(server)


def job_env() -> dict[str, str]:
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.update({k: v for k, v in os.environ.items() if k.startswith(FORWARD_ENV_PREFIXES)})
    return env


def last_error_line(lines: Sequence[str], fallback: str = "") -> str:
    """The job's last line that reads as an error (``riskrl: ...``, ``...Error: ...``), else its
    last non-empty line, else ``fallback``."""
    stripped = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(stripped):
        if ln.startswith("riskrl: ") or (_ERROR_RE.search(ln) and not ln.startswith("File ")):
            return ln
    return stripped[-1] if stripped else fallback


def _write_run_json(run: VerlRun, **extra) -> None:
    from riskrl.io import write_json

    if run.out.is_dir():  # the run's directory is visible here (shared filesystem / same machine)
        write_json(run.out / "run.json", {**run.meta, **extra})


def submit_runs(runs: Sequence[VerlRun], address: str, *, working_dir: str | os.PathLike,
                excludes: Sequence[str] = (), echo: Callable[[str], None] = print,
                poll_s: float = 2.0) -> list[dict]:
    """Each run as a Ray job, one after another; its logs echoed line by line. A job that does
    not succeed raises ``StageError`` naming it and its last error line (later runs are not
    submitted). Returns one dict per run (``name``, ``job``, ``status``)."""
    from ray.job_submission import JobStatus

    server = job_server_address(address)
    try:
        client = job_client(server)
    except Exception as err:  # ConnectionError, RuntimeError from the version check
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(f"cannot reach the Ray job server at {server} (cluster {address}): {first}; "
                         "set RAY_API_SERVER_ADDRESS to the cluster's dashboard address") from None
    runtime_env = {"working_dir": str(working_dir), "excludes": list(excludes), "env_vars": job_env()}
    results = []
    for run in runs:
        entrypoint = shlex.join(["python", "-m", "riskrl.verl", *run.overrides])
        job_id = f"riskrl-{run.name.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
        _submit(client, entrypoint=entrypoint, runtime_env=runtime_env, submission_id=job_id,
                metadata={"riskrl_run": run.name})
        echo(f"[{job_id}] submitted to {server}: {run.name}")
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        try:
            _stream_logs(client, job_id, tail, echo)
            status = client.get_job_status(job_id)
            while not JobStatus(status).is_terminal():
                time.sleep(poll_s)
                status = client.get_job_status(job_id)
        except KeyboardInterrupt:
            client.stop_job(job_id)
            raise
        if status != JobStatus.SUCCEEDED:
            info = client.get_job_info(job_id)
            if not tail:
                tail.extend(client.get_job_logs(job_id).splitlines())
            message = (info.message or "").strip().splitlines()
            line = last_error_line(list(tail), fallback=message[-1] if message else "no output")
            raise StageError(f"verl job {job_id} ({run.name}) {str(status).split('.')[-1].lower()}: {line}")
        _write_run_json(run, job=job_id)
        results.append({"name": run.name, "job": job_id, "status": "succeeded", **run.meta})
    return results


def _submit(client, *, wait_for_agent_s: float = 180.0, **job) -> None:
    """``client.submit_job(**job)``, retried while the head's job agent is not up yet (a freshly
    started cluster answers "No available agent to submit job, please try again later")."""
    deadline = time.monotonic() + wait_for_agent_s
    while True:
        try:
            client.submit_job(**job)
            return
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(3)


def _stream_logs(client, job_id: str, tail: collections.deque, echo: Callable[[str], None]) -> None:
    async def follow() -> None:
        async for chunk in client.tail_job_logs(job_id):
            for line in chunk.splitlines():
                tail.append(line)
                echo(f"[{job_id}] {line}")

    asyncio.run(follow())


def run_locally(runs: Sequence[VerlRun], echo: Callable[[str], None] = print) -> list[dict]:
    """Each run as a local ``python -m riskrl.verl`` subprocess (this machine has the GPUs);
    output passed through; a failure raises ``StageError`` with the run's last error line."""
    results = []
    for run in runs:
        proc = subprocess.Popen([sys.executable, "-m", "riskrl.verl", *run.overrides], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            echo(line.rstrip("\n"))
        if proc.wait():
            raise StageError(f"verl run {run.name} failed (exit {proc.returncode}): "
                             f"{last_error_line(list(tail), 'no output')}")
        _write_run_json(run)
        results.append({"name": run.name, "status": "succeeded", **run.meta})
    return results



def run_verl(p, runs: Sequence[VerlRun], what: str) -> list[dict]:
    """Run ``runs`` (one per grid cell) as Ray jobs on the cluster when ``cluster.address`` (or
    ``$RAY_ADDRESS``) names one (the GPU check then happens in each job, on the cluster), else
    locally after checking that this machine's Ray sees the GPUs they need."""
    from riskrl.cluster import (
        ROOT,
        RUNTIME_EXCLUDES,
        check_reachable,
        ray_session,
        require_gpus,
        resolve_address,
    )

    address = resolve_address(p.cluster.address)
    if address:
        check_reachable(address, p.cluster.connect_timeout_s)
        return submit_runs(runs, address, working_dir=ROOT, excludes=RUNTIME_EXCLUDES)
    with ray_session(None, num_cpus=p.cluster.local_cpus, connect_timeout_s=p.cluster.connect_timeout_s):
        require_gpus(p.verl.n_gpus_per_node * p.verl.nnodes, what=what)
    return run_locally(runs)
