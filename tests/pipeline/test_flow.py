"""The Prefect flow over the DVC stages, under prefect_test_harness: one run = one named DVC
experiment in its own git worktree; the repository's workspace is never touched."""

import asyncio
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipeline.conftest import BIN, ROOT, env, run

pytestmark = pytest.mark.slow


def snapshot(repo: Path) -> dict[str, str]:
    """md5 of every file of the repository but git's and DVC's internals (cache, tmp)."""
    out = {}
    for f in sorted(repo.rglob("*")):
        rel = f.relative_to(repo).as_posix()
        if f.is_file() and not rel.startswith((".git/", ".dvc/cache/", ".dvc/tmp/")):
            out[rel] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


def exp_commit(repo: Path, name: str) -> str:
    refs = run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"], repo).stdout.split("\n")
    hits = [ln.split()[1] for ln in refs if ln and ln.split()[0].endswith(f"/{name}")]
    assert len(hits) == 1, refs
    return hits[0]


def exp_params(repo: Path, name: str) -> dict:
    return yaml.safe_load(run(["git", "show", f"{exp_commit(repo, name)}:params.yaml"], repo).stdout)


def trained_steps(repo: Path, name: str) -> dict[str, int]:
    """Per train stage: the steps its dvc.lock records, checked against the rows of every run's
    train_metrics.csv in the experiment (read from the DVC cache at the experiment's commit)."""
    import dvc.api

    rev = exp_commit(repo, name)
    lock = yaml.safe_load(run(["git", "show", f"{rev}:dvc.lock"], repo).stdout)["stages"]
    out = {}
    for stage, entry in lock.items():
        if not stage.startswith("train@"):
            continue
        steps = entry["params"]["params.yaml"]["train.steps"]
        run_dir = next(o["path"] for o in entry["outs"])
        fs = dvc.api.DVCFileSystem(str(repo), rev=rev)
        logs = [p for p in fs.find(run_dir) if p.endswith("train_metrics.csv")]
        assert logs, (stage, run_dir)
        for p in logs:
            df = pd.read_csv(io.StringIO(fs.read_text(p)))
            assert int(df["step"].max()) == steps and len(df) == steps, (stage, p, steps, df["step"].tolist())
        out[stage] = steps
    return out


def trained_option(repo: Path, name: str, variant: str, key: str):
    """The value of ``train.variants.<variant>.<key>`` that the experiment's dvc.lock records for
    train@<variant>, checked against the estimator options in every run's run.json (DVC cache)."""
    import dvc.api

    rev = exp_commit(repo, name)
    entry = yaml.safe_load(run(["git", "show", f"{rev}:dvc.lock"], repo).stdout)["stages"][f"train@{variant}"]
    value = entry["params"]["params.yaml"][f"train.variants.{variant}"][key]
    run_dir = next(o["path"] for o in entry["outs"])
    fs = dvc.api.DVCFileSystem(str(repo), rev=rev)
    infos = [p for p in fs.find(run_dir) if p.endswith("/run.json") and "/checkpoints/" not in p]
    assert infos, (variant, run_dir)
    for p in infos:
        assert json.loads(fs.read_text(p))["config"]["estimator_options"][key] == value, (p, value)
    return value


def exp_names(repo: Path) -> set[str]:
    """Every name `dvc exp show --json` lists (baselines and experiments)."""
    def names(node) -> set[str]:
        if isinstance(node, dict):
            return ({node["name"]} if isinstance(node.get("name"), str) else set()).union(*map(names, node.values()))
        if isinstance(node, list):
            return set().union(*map(names, node))
        return set()

    return names(json.loads(run([str(BIN / "dvc"), "exp", "show", "--json"], repo).stdout))


def test_overlapping_runs_are_two_correct_experiments_and_leave_the_workspace_as_it_was(micro_repo, prefect_harness):
    """Two flow runs at once against one Prefect API, one in this process and one as a second
    process, with two values of the same variant option: both complete; each is a named experiment
    whose dvc.lock and trained runs (run.json) agree with its own override; only that variant's
    stages and the report reran (the shared cache restored the rest); each published its artifact;
    the repository's workspace, git status and worktrees are as they were."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL

    from flows.study import study

    before = snapshot(micro_repo)
    status = run(["git", "status", "--porcelain"], micro_repo).stdout
    worktrees = run(["git", "worktree", "list"], micro_repo).stdout
    e = {**env(), "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    other = subprocess.Popen([sys.executable, str(ROOT / "flows" / "study.py"), "--repo", str(micro_repo),
                              "--set", "train.variants.rs_grpo_b2.beta=4", "--name", "overlap-b4"],
                             cwd=micro_repo, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        result = study(overrides=["train.variants.rs_grpo_b2.beta=3"], repo=str(micro_repo), experiment="overlap-b3")
        out, _ = other.communicate(timeout=1800)
    finally:
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, out[-5000:]
    assert snapshot(micro_repo) == before
    assert run(["git", "status", "--porcelain"], micro_repo).stdout == status
    assert run(["git", "worktree", "list"], micro_repo).stdout == worktrees  # both worktrees removed
    # the shared cache restored the stages the override does not reach; the changed variant's reran
    assert result["stages"]["sft"] in ("restored", "skipped") and result["stages"]["prepare"] in ("restored", "skipped")
    assert result["stages"]["train@rs_grpo_b2"] == "ran" and result["stages"]["report"] == "ran"
    assert result["stages"]["train@grpo"] == "skipped"  # the baseline's run, checked out, not retrained
    # two named experiments of the repository, each with its override and what it trained
    assert {"overlap-b3", "overlap-b4"} <= exp_names(micro_repo)
    for beta in (3, 4):
        assert exp_params(micro_repo, f"overlap-b{beta}")["train"]["variants"]["rs_grpo_b2"]["beta"] == beta
        assert trained_option(micro_repo, f"overlap-b{beta}", "rs_grpo_b2", "beta") == beta
        assert set(trained_steps(micro_repo, f"overlap-b{beta}").values()) == {3}  # the baseline's steps
    diff = json.loads(run([str(BIN / "dvc"), "params", "diff", "HEAD", "overlap-b3", "--json"], micro_repo).stdout)
    change = diff["params.yaml"]["train.variants.rs_grpo_b2.beta"]  # DVC versions differ on a "diff" key
    assert (change["old"], change["new"]) == (2, 3)

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["riskrl-passk"])))

    versions = {md.splitlines()[0]: md for md in (a.data for a in asyncio.run(artifacts()))}
    assert set(versions) == {"# riskrl study: experiment `overlap-b3`", "# riskrl study: experiment `overlap-b4`"}
    md = versions["# riskrl study: experiment `overlap-b3`"]
    assert [ln for ln in md.splitlines() if ln.startswith("# ")] == ["# riskrl study: experiment `overlap-b3`"]
    assert "Overrides: `train.variants.rs_grpo_b2.beta=3`" in md and "| rs_grpo_b2/lr0.01.multiply_test |" in md
    assert "Change against `master`" in md or "Change against `main`" in md
    report = md.split("Full report: `")[1].split("`")[0]
    assert Path(report).is_file() and Path(report).read_text().startswith("#")


def test_bad_override_is_refused_in_one_line_before_anything_runs(micro_repo, prefect_harness):
    from flows.study import study
    from riskrl.config import ParamsError

    before = snapshot(micro_repo)
    worktrees = run(["git", "worktree", "list"], micro_repo).stdout
    for bad, msg in [(["train.variants.riskpo_track.bundle_size=0"],
                      r"^params.yaml: train.variants.riskpo_track.bundle_size=0: Input should be "
                                                      r"greater than or equal to 1$"),
                     (["train.stepz=3"], r"^params.yaml: override train.stepz=3: Could not override 'train.stepz'"),
                     (["train.steps"], r"^override 'train.steps' is not key=value$")]:
        with pytest.raises(ParamsError, match=msg) as err:
            study(overrides=bad, repo=str(micro_repo))
        assert "\n" not in str(err.value)
    assert snapshot(micro_repo) == before
    assert run(["git", "worktree", "list"], micro_repo).stdout == worktrees


def test_missing_repository_fails_on_the_flow_run_in_one_line(tmp_path, prefect_harness):
    from flows.study import WorkspaceError, study

    with pytest.raises(WorkspaceError, match=f"^repository {tmp_path / 'nope'} does not exist$"):
        study(repo=str(tmp_path / "nope"))


def test_deployment_has_typed_parameters_and_a_timezone(prefect_harness):
    from prefect.client.orchestration import get_client

    from flows.deploy import DEFAULT_CRON, deployment

    dep_id = deployment(name="nightly-test", overrides=["train.steps=50"], timezone="Europe/Paris").apply()

    async def read():
        async with get_client() as client:
            return await client.read_deployment(dep_id)

    d = asyncio.run(read())
    assert d.name == "nightly-test"
    assert d.parameters["overrides"] == ["train.steps=50"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] == [(DEFAULT_CRON, "Europe/Paris")]
    prop = d.parameter_openapi_schema["properties"]["overrides"]
    assert prop["type"] == "array" and prop["items"] == {"type": "string"} and "key=value" in prop["description"]
    assert deployment(name="utc").schedules[0].schedule.timezone == "UTC"
