"""Prefect flow over the DVC stages of the study: one flow run = one named DVC experiment.

A run never touches the repository's workspace: it validates the overrides against the params
schema, adds a git worktree of the committed HEAD (sharing the repository's DVC cache, with the
baseline's outputs checked out from it, so unchanged stages are up to date instead of recomputed),
applies the overrides there the way ``dvc exp run -S`` does (comments kept), runs each DVC stage
as its own Prefect task, and saves the result with ``dvc exp save -n <flow-run-name>``. The
worktree is removed afterwards (kept on failure, its path in the error). Overlapping runs have separate workspaces: no DVC lock, no mixed params.

    python flows/study.py                                   # one experiment of the committed baseline
    python flows/study.py --set train.steps=50 --set 'train.lrs=[3e-5]'
    dvc exp show; dvc params diff main <name>; dvc metrics diff main <name>
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from pydantic import Field

ROOT = Path(__file__).resolve().parents[1]

# retries where the network or the cluster is involved, by the stage's name (before '@'). No task
# tags: Prefect takes a tag-concurrency lease for every tagged task run, and under a loaded test
# server one such request hung a flow run mid-study
RETRIES: dict[str, dict[str, Any]] = {
    "download": dict(retries=3, retry_delay_seconds=[10, 60, 300]),
    "train": dict(retries=2, retry_delay_seconds=30),
    "evaluate": dict(retries=2, retry_delay_seconds=30),
    "evaluate_base": dict(retries=2, retry_delay_seconds=30),
}
PROGRESS_EVERY_S = 10.0  # a progress bar reaches the log at most this often (and at its end)
# lines that say nothing about the stage (library registration noise)
NOISE = re.compile(r"great_expectations\._docs_decorators: Skipping registering|^\s*$"
                   r"|To enable auto staging, run:|dvc config core\.autostage true|Use `dvc push` to send"
                   r"|To track the changes with git, run:|^\s+git add ")
_RAISED = re.compile(r"^([A-Za-z_][\w.]*)?(Error|Exception|Interrupt|Exit)(: .*)?$")
PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\d+/\d+ \[[\d:<?.-]+")


class StageFailed(RuntimeError):
    """A DVC stage failed; the message is the stage's own one-line error."""


class WorkspaceError(RuntimeError):
    """The repository or the isolated workspace cannot be used; one line."""


def _dvc() -> str:
    venv_dvc = Path(sys.executable).with_name("dvc")
    return str(venv_dvc) if venv_dvc.exists() else (shutil.which("dvc") or "dvc")


def _env(workspace: str | Path | None = None) -> dict[str, str]:
    # stage commands call `python`: make it this environment's, as an activated venv would
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1"}
    if workspace is not None:  # the stages import the workspace's riskrl (what dvc.lock hashes), not an install's
        env["PYTHONPATH"] = os.pathsep.join([str(workspace), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _git(repo: str | Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode:
        msg = " ".join((proc.stderr or proc.stdout).split()) or f"exit {proc.returncode}"
        raise WorkspaceError(f"git {' '.join(args)} in {repo}: {msg}")
    return proc.stdout.strip()


def _one_line_error(out: list[str], stage: str, rc: int) -> str:
    """The stage's own one-line error (``stage <name>: ...``), else DVC's whole ERROR block as one line
    (a lock holder's PID and command included)."""
    name = stage.split("@")[0]
    own = [ln for ln in out if ln.startswith(f"stage {name}:") and " done in " not in ln]
    if own:
        return f"{stage}: {own[-1]}"
    start = next((i for i, ln in enumerate(out) if ln.startswith("ERROR")), None)
    # an uncaught exception of the stage's command: its traceback's last line
    raised = [ln.strip() for ln in out[:start] if _RAISED.match(ln)]
    if start is None:
        return f"{stage}: {raised[-1]}" if raised else f"dvc repro -s {stage} failed (exit {rc})"
    block = []
    for ln in out[start:]:
        if ln.startswith(("Having any troubles?", "<https://")):
            break
        block.append(" ".join(ln.split()))
    dvc_error = " ".join(b for b in block if b)
    return f"{stage}: {raised[-1]} ({dvc_error})" if raised else dvc_error


def repro(stage: str, workspace: str) -> dict[str, Any]:
    """`dvc repro -s <stage>` in ``workspace``, its output streamed to the task's log line by line
    (progress bars every PROGRESS_EVERY_S, noise dropped). Returns the state ("ran", "restored" from
    DVC's run-cache, "skipped": unchanged), the wall time and the stage's own time."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    env = _head_env(workspace, stage, logger)
    proc = subprocess.Popen([_dvc(), "repro", "-s", stage], cwd=workspace, env={**_env(workspace), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
    assert proc.stdout is not None
    kept: list[str] = []
    last_progress, pending = 0.0, ""
    buf = b""

    def emit(line: str, final: bool = False) -> None:
        nonlocal last_progress, pending
        line = line.rstrip()
        if NOISE.search(line):
            return
        if PROGRESS.search(line):
            now = time.monotonic()
            if final or now - last_progress >= PROGRESS_EVERY_S or "100%|" in line:
                logger.info(line.strip())
                last_progress, pending = now, ""
            else:
                pending = line.strip()
            return
        if pending:  # the last state of a bar before other output
            logger.info(pending)
            pending = ""
        kept.append(line)
        del kept[:-400]
        logger.info(line)

    while chunk := os.read(proc.stdout.fileno(), 4096):
        buf += chunk
        *lines, buf = re.split(rb"\r\n|\r|\n", buf)
        for raw in lines:
            emit(raw.decode(errors="replace"))
    if buf:
        emit(buf.decode(errors="replace"), final=True)
    if pending:
        logger.info(pending)
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc:
        raise StageFailed(_one_line_error(kept, stage, rc))
    text = "\n".join(kept)
    own = [float(x) for x in re.findall(r"^stage [\w-]+: done in ([\d.]+)s", text, re.M)]
    if "is cached - skipping run" in text:
        state = "restored"
    elif "didn't change, skipping" in text:
        state = "skipped"
    else:
        state = "ran"
    return {"state": state, "wall_s": round(wall, 2), "own_s": sum(own)}


@task(name="stage", task_run_name="{stage}")
def run_stage(workspace: str, stage: str) -> dict[str, Any]:
    return repro(stage, workspace)


def stage_task(stage: str):
    """The Prefect task of one DVC stage: named after it, with its retries and tags."""
    base = stage.split("@")[0]
    return run_stage.with_options(name=base, **RETRIES.get(base, {}))


# stages that compute on Ray (embedded backend): they share the flow run's local head, found by
# workspace (not passed as a task parameter: its auth token would show in the UI)
RAY_STAGES = {"train", "evaluate", "evaluate_base"}
_HEADS: dict[str, Any] = {}


def _head_env(workspace: str, stage: str, logger) -> dict[str, str]:
    """The shared head's environment for a Ray stage of this workspace's run; {} (the stage starts
    a head of its own, as under plain `dvc repro`) for other stages, or when the shared head did
    not come up or has died: a warning, never a failed stage."""
    from riskrl.cluster import ClusterError

    head = _HEADS.get(workspace)
    if head is None or stage.split("@")[0].rsplit(":", 1)[-1] not in RAY_STAGES:
        return {}
    try:
        return head.env()
    except ClusterError as err:
        logger.warning(f"{stage}: {err}; the stage starts a Ray head of its own")
        return {}


def shared_head(params_text: str):
    """A :class:`riskrl.cluster.LocalHead` for the run's Ray stages, started now (it comes up while
    the first stages run), or None where the stages would not start a local head of their own: a
    cluster address in params.yaml or ``$RAY_ADDRESS``, or the verl backend (its own launcher)."""
    import yaml

    from riskrl.cluster import LocalHead

    p = yaml.safe_load(params_text) or {}
    cluster = p.get("cluster") or {}
    if p.get("backend", "embedded") != "embedded" or cluster.get("address") or os.environ.get("RAY_ADDRESS"):
        return None
    return LocalHead(num_cpus=cluster.get("local_cpus")).start()


# --- the repository, its isolated workspace and the experiment ---------------------------------

def check_repo(repo: str | Path) -> Path:
    """The repository's root; one line when it is not a git + DVC repository with a commit."""
    path = Path(repo).expanduser().resolve()
    if not path.is_dir():
        raise WorkspaceError(f"repository {path} does not exist")
    if not (path / "dvc.yaml").is_file() or not (path / ".dvc").is_dir():
        raise WorkspaceError(f"{path} is not a DVC repository (no dvc.yaml or .dvc/)")
    _git(path, "rev-parse", "--verify", "HEAD")
    return path


def validated_params(repo: Path, overrides: list[str]) -> str:
    """The committed params.yaml with ``overrides`` applied as ``dvc exp run -S`` applies them
    (DVC's Hydra override grammar, ruamel round-trip: comments and layout kept), validated by the
    params schema: :class:`riskrl.config.ParamsError` (one line) before anything runs."""
    import yaml
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    from riskrl.config import ParamsError, load_params, set_overrides

    committed = _git(repo, "show", "HEAD:params.yaml") + "\n"
    set_overrides(yaml.safe_load(committed), list(overrides))  # key=value form, one line otherwise
    with tempfile.TemporaryDirectory(prefix="riskrl-params-") as tmp:
        path = Path(tmp, "params.yaml")
        path.write_text(committed)
        for item in overrides:
            try:
                apply_overrides(path, [item])
            except InvalidArgumentError as err:
                cause = " ".join(str(err.__cause__ or err).split())
                raise ParamsError(f"params.yaml: override {item}: {cause}") from None
        try:
            load_params(path)
        except ParamsError as err:
            raise ParamsError(str(err).replace(str(path), "params.yaml")) from None
        return path.read_text()


def cache_dir(repo: Path) -> str:
    """The repository's DVC cache directory (``dvc cache dir``)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        return str(r.cache.local_cache_dir)


def open_workspace(repo: Path, name: str, cache: str) -> Path:
    """A git worktree of HEAD outside the repository, using the repository's DVC cache ``cache``."""
    ws = Path(tempfile.mkdtemp(prefix=f"riskrl-exp-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}-"))
    _git(repo, "worktree", "add", "--detach", str(ws), "HEAD")
    local = repo / ".dvc" / "config.local"
    if local.is_file():  # remotes' credentials and the like
        shutil.copy2(local, ws / ".dvc" / "config.local")
    proc = subprocess.run([_dvc(), "config", "--local", "cache.dir", cache], cwd=ws,
                          capture_output=True, text=True, env=_env())
    if proc.returncode:
        raise WorkspaceError(f"dvc config cache.dir in {ws}: {' '.join(proc.stderr.split())}")
    # the baseline's outputs, as `dvc exp run` has them: unchanged stages are then up to date, and the
    # train stages (persist outputs, which DVC's run-cache never restores) retrain only when changed
    if not (ws / "dvc.lock").is_file():  # nothing reproduced at HEAD: every stage computes
        return ws
    proc = subprocess.run([_dvc(), "checkout"], cwd=ws, capture_output=True, text=True, env=_env())
    if proc.returncode:  # outputs missing from the cache (never pulled): their stages recompute
        why = " ".join((proc.stderr or proc.stdout).split())[-500:] or f"exit {proc.returncode}"
        get_run_logger().warning(f"dvc checkout in {ws}: {why}; the stages of the missing outputs recompute")
    return ws


def close_workspace(repo: Path, ws: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(ws))


def list_stages(ws: Path) -> list[str]:
    """The pipeline's stages as DVC sees them (foreach expanded: ``train@<variant>``), upstream first,
    in dvc.yaml order where the graph leaves a choice."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(ws)) as r:
        def address(s) -> str:  # `dvc repro -s` target, relative to the workspace (not to our cwd)
            where = Path(s.path).resolve().parent.relative_to(ws.resolve())
            return s.name if str(where) == "." else f"{where / Path(s.path).name}:{s.name}"

        stages = [s for s in r.index.stages if getattr(s, "cmd", None)]
        order = {id(s): i for i, s in enumerate(stages)}
        graph = r.index.graph.reverse()  # DVC's edges point from a stage to what it depends on
        topo = nx.lexicographical_topological_sort(graph, key=lambda s: order.get(id(s), -1))
        return [address(s) for s in topo if id(s) in order]


def save_experiment(repo: Path, ws: Path, name: str) -> str:
    """``dvc exp save -n name`` in the workspace (every changed and new file staged first); one at a time
    per repository, since the refs are shared."""
    _git(ws, "add", "-A")
    lock = Path(_git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")) / "riskrl-exp.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        proc = subprocess.run([_dvc(), "exp", "save", "-n", name], cwd=ws, capture_output=True, text=True,
                              env=_env())
    if proc.returncode:
        err = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("ERROR")]
        raise WorkspaceError(f"dvc exp save -n {name}: {err[-1] if err else 'exit ' + str(proc.returncode)}")
    return name


def metrics_diff(ws: Path) -> dict[str, Any]:
    """``dvc metrics diff HEAD --all --json`` in the workspace: this run against the committed baseline."""
    cmd = [_dvc(), "metrics", "diff", "HEAD", "--all", "--json"]
    if (ws / "metrics" / "study.json").is_file():  # the report's summary of every variant and the base
        cmd += ["--targets", "metrics/study.json"]
    proc = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, env=_env())
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return {}


def subsampling_notes(params_text: str) -> list[str]:
    """Notes for the artifact when the evaluation or the data were cut down."""
    import yaml

    p = yaml.safe_load(params_text) or {}
    ev, data, sft = p.get("evaluate") or {}, p.get("data") or {}, p.get("sft") or {}
    notes = []
    if ev.get("max_problems"):
        notes.append(f"`evaluate.max_problems={ev['max_problems']}`: Pass@k on the first "
                     f"{ev['max_problems']} problems of each benchmark only (sub-sampled).")
    for section in ("benchmarks", "train"):
        for i, spec in enumerate(data.get(section) or []):
            if isinstance(spec, dict) and spec.get("limit"):
                notes.append(f"`data.{section}[{i}].limit={spec['limit']}`: only the first {spec['limit']} "
                             f"problems of {spec.get('name') or spec.get('source')}.")
    if sft.get("max_examples"):
        notes.append(f"`sft.max_examples={sft['max_examples']}`: SFT on a subset of the training rows.")
    return notes


def report_location(ws: Path, cache: str) -> str | None:
    """Where the experiment's report.md lives after the workspace is gone: its file in the DVC cache."""
    import hashlib

    f = ws / "reports" / "report.md"
    if not f.is_file():
        return None
    md5 = hashlib.md5(f.read_bytes()).hexdigest()
    cached = Path(cache, "files", "md5", md5[:2], md5[2:])
    return str(cached) if cached.is_file() else None


def _baseline_name(repo: Path) -> str:
    try:
        branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    except WorkspaceError:
        branch = "HEAD"
    return branch if branch != "HEAD" else _git(repo, "rev-parse", "--short", "HEAD")


OVERRIDES_DESCRIPTION = ("params.yaml overrides, one 'key=value' string each, as `dvc exp run -S` takes them "
                         "(e.g. train.steps=50, 'train.lrs=[3e-5]'); validated before anything runs. "
                         "Empty: an experiment of the committed baseline.")


@flow(name="riskrl-study", log_prints=True)
def study(
    overrides: list[str] = Field([], description=OVERRIDES_DESCRIPTION),  # noqa: B008
    repo: str = Field(str(ROOT), description="the git + DVC repository whose committed HEAD it studies"),  # noqa: B008
    experiment: str | None = Field(None, description="DVC experiment name (default: the flow run's name)"),  # noqa: B008
) -> dict[str, Any]:
    """The riskrl study as one named DVC experiment: download -> prepare -> validate -> sft ->
    train@<variant> -> evaluate@<variant>, evaluate_base -> report, bandit.

    Args:
        overrides: params.yaml overrides, 'key=value' strings as `dvc exp run -S` takes them.
        repo: the git + DVC repository whose committed HEAD the run studies.
        experiment: DVC experiment name (default: the flow run's name).
    """
    from prefect.runtime import deployment, flow_run

    from riskrl.report.artifact import artifact_key, experiment_markdown, publish_markdown

    logger = get_run_logger()
    overrides = list(overrides or [])
    root = check_repo(repo)
    params_text = validated_params(root, overrides)  # one line, before anything runs
    name = experiment or flow_run.get_name() or f"flow-{int(time.time())}"
    baseline = _baseline_name(root)
    t0 = time.perf_counter()
    cache = cache_dir(root)
    head = shared_head(params_text)
    try:
        ws = open_workspace(root, name, cache)
    except BaseException:
        if head is not None:
            head.stop()
        raise
    logger.info(f"experiment {name}: workspace {ws} (git worktree of {baseline}), overrides {overrides or 'none'}")
    try:
        (ws / "params.yaml").write_text(params_text)
        states: dict[str, dict[str, Any]] = {}
        if head is not None:
            _HEADS[str(ws)] = head
        for stage in list_stages(ws):
            states[stage] = stage_task(stage)(str(ws), stage)
        if head is not None:  # the head stops while DVC saves the experiment
            _HEADS.pop(str(ws), None)
            head.begin_stop()
        save_experiment(root, ws, name)
        if head is not None:
            head.stop()
        diff = metrics_diff(ws)
        report = report_location(ws, cache)
        md = experiment_markdown(
            experiment=name, overrides=overrides, diff=diff, baseline=baseline, notes=subsampling_notes(params_text),
            report_path=report,
            commands=["dvc exp show", f"dvc params diff {baseline} {name}", f"dvc metrics diff {baseline} {name}",
                      f"dvc exp apply {name}  # its params, dvc.lock and outputs (reports/) in the workspace"],
        )
        publish_markdown(md, key=artifact_key(deployment.get_name()), description=f"riskrl experiment {name}")
    except BaseException as err:
        if head is not None:
            head.stop()
            _HEADS.pop(str(ws), None)
        msg = " ".join(str(err).split()) or type(err).__name__
        raise WorkspaceError(f"{msg} (workspace kept at {ws})") from err
    close_workspace(root, ws)
    total = time.perf_counter() - t0
    stage_wall = sum(s["wall_s"] for s in states.values())
    own = sum(s["own_s"] for s in states.values())
    logger.info(f"experiment {name} saved: {total:.1f}s in all, {stage_wall:.1f}s in `dvc repro -s`, "
                f"{own:.1f}s the stages' own work")
    return {"experiment": name, "stages": {k: v["state"] for k, v in states.items()}, "timing": {
        "total_s": round(total, 2), "repro_s": round(stage_wall, 2), "own_s": round(own, 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the riskrl study as a Prefect flow: one named DVC experiment.")
    ap.add_argument("--repo", default=str(ROOT))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="params.yaml override, as `dvc exp run -S` (repeatable)")
    ap.add_argument("--name", default=None, help="experiment name (default: the flow run's name)")
    args = ap.parse_args()
    print(study(overrides=args.overrides, repo=args.repo, experiment=args.name))


if __name__ == "__main__":
    main()
