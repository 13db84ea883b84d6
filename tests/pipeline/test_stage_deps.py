"""The DVC wiring, read from dvc.yaml itself (so it holds whatever the stages are called):

- each declared param and code dependency of each stage, changed after one full `dvc repro` of the
  micro study, makes `dvc status` report exactly the stages that declare it (DVC reports a stage
  whose own deps changed; what reruns below it follows the DAG, checked here against the data
  each stage reads); a key no stage declares reports nothing;
- the code a stage's script imports (besides the pipeline plumbing) is among its dependencies;
- the `plots:` definitions give non-empty series for the micro study;
- the evaluate stages' mean over seeds is the mean of the per-seed metrics (2 seeds).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import json
import math
import os
import subprocess
from pathlib import Path

import networkx as nx
import pytest
import yaml

from tests.pipeline.conftest import BIN, ROOT, run

DVC = str(BIN / "dvc")
UNRELATED = "zz_unrelated_key"
# imported by every stage script to parse argv, load and validate params.yaml, write files and start
# Ray: they decide no stage's results, so no stage declares them
PLUMBING = {"riskrl/__init__.py", "riskrl/config.py", "riskrl/io.py", "riskrl/cluster.py",
            "riskrl/pipeline/__init__.py", "riskrl/pipeline/stage.py", "riskrl/pipeline/paths.py"}


# --- dvc.yaml, as DVC resolves it ------------------------------------------------------------

@contextlib.contextmanager
def inside(repo: Path):
    """DVC's API names stages relative to the working directory: work from the repository."""
    old = os.getcwd()
    os.chdir(repo)
    try:
        yield
    finally:
        os.chdir(old)


def dvc_stages(repo: Path) -> dict[str, dict]:
    """{stage name: {"params": [keys], "deps": [paths], "outs": [paths], "cmd": str}} of every (foreach-expanded)
    stage, and the DAG (edges from a stage to the stages it depends on)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with inside(repo), Repo(str(repo)) as r:
        out = {}
        for st in r.index.stages:
            params, deps = [], []
            for d in st.deps:
                if isinstance(d, ParamsDependency):
                    params.extend(d.params)
                else:
                    deps.append(d.def_path)
            out[st.addressing] = {"params": params, "deps": deps, "cmd": st.cmd,
                                  "outs": [o.def_path for o in st.outs]}
        graph = nx.relabel_nodes(r.index.graph, lambda s: s.addressing)
    return out, graph


def downstream(graph: nx.DiGraph, stages: set[str]) -> set[str]:
    """The stages and every stage that (transitively) depends on one of them."""
    return set(stages).union(*(nx.ancestors(graph, s) for s in stages)) if stages else set()


def dvc_status_cli(repo: Path) -> set[str]:
    proc = run([DVC, "status", "--json"], repo)
    return set(json.loads(proc.stdout or "{}"))


def dvc_status(repo: Path) -> set[str]:
    """What `dvc status --json` reports, through DVC's API (no 2 s interpreter start per call)."""
    from dvc.repo import Repo

    with inside(repo), Repo(str(repo)) as r:
        return set(r.status())


# --- changing one thing ----------------------------------------------------------------------

def _get(d: dict, key: str):
    for part in key.split("."):
        d = d[part]
    return d


def _set(d: dict, key: str, value) -> None:
    *head, last = key.split(".")
    for part in head:
        d = d[part]
    d[last] = value


def leaf(params: dict, key: str) -> str:
    """A leaf under ``key`` (its first scalar or list), to change."""
    value = _get(params, key)
    while isinstance(value, dict) and value:
        first = next(iter(value))
        key, value = f"{key}.{first}", value[first]
    return key


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "_x"
    if isinstance(value, list):
        return value + [copy.deepcopy(value[-1])] if value else [1]
    if value is None:
        return 1
    raise TypeError(value)


def declares(param_keys: list[str], key: str) -> bool:
    """A stage declaring ``param_keys`` reads ``key`` (the key itself or a section above it)."""
    return any(key == p or key.startswith(p + ".") for p in param_keys)


def covers(dep_paths: list[str], path: str) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dep_paths)


def _overlap(a: str, b: str) -> bool:
    """One path is the other or inside it."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def code_target(repo: Path, dep: str) -> Path:
    p = repo / dep
    return p if p.is_file() else sorted(p.rglob("*.py"))[0]


# --- the tests -------------------------------------------------------------------------------

def _param_cases(repo: Path, stages: dict, base: dict) -> list[str]:
    """Change each declared leaf (and a new key in each declared section) in turn; the mismatches."""
    params_file = repo / "params.yaml"
    leaves = {leaf(base, k) for st in stages.values() for k in st["params"]}
    sections = {k.split(".")[0] for st in stages.values() for k in st["params"]}
    new_keys = {f"{s}.{UNRELATED}" for s in sections if isinstance(base.get(s), dict)} | {UNRELATED}
    failures, checked_cli = [], False
    for key in sorted(leaves | new_keys):
        params = copy.deepcopy(base)
        _set(params, key, 1 if key in new_keys else changed(_get(params, key)))
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        want = {name for name, st in stages.items() if declares(st["params"], key)}
        got = dvc_status(repo)
        if want and not checked_cli:  # the API and the command line agree
            cli = dvc_status_cli(repo)
            assert cli == got, (key, cli, got)
            checked_cli = True
        if got != want:
            failures.append(f"params {key}: dvc status reports {sorted(got)}, dvc.yaml declares it in {sorted(want)}")
        if key == UNRELATED:
            assert want == set() and got == set()
    return failures


@pytest.mark.slow
def test_each_declared_param_and_code_dep_marks_exactly_its_stages_changed(micro_repo):
    stages, graph = dvc_stages(micro_repo)
    assert dvc_status_cli(micro_repo) == set(), "the micro study is not up to date after dvc repro"
    assert len(stages) >= 5 and graph.number_of_edges() >= 4
    tracked = set(subprocess.run(["git", "ls-files"], cwd=micro_repo, capture_output=True, text=True,
                                 check=True).stdout.split())
    params_file = micro_repo / "params.yaml"
    original = params_file.read_text()
    try:
        failures = _param_cases(micro_repo, stages, yaml.safe_load(original))
    finally:
        params_file.write_text(original)

    # every code dependency (a file or directory in git that no stage writes)
    outs = {name: st["outs"] for name, st in stages.items()}
    code = {d for st in stages.values() for d in st["deps"]
            if not any(_overlap(d, o) for os_ in outs.values() for o in os_)
            and (d in tracked or any(t.startswith(d.rstrip("/") + "/") for t in tracked))}
    assert code, "no stage declares code dependencies"
    for dep in sorted(code):
        target = code_target(micro_repo, dep)
        rel = target.relative_to(micro_repo).as_posix()
        before = target.read_bytes()
        target.write_bytes(before + b"\n# touched\n")
        try:
            want = {name for name, st in stages.items() if covers(st["deps"], rel)}
            got = dvc_status(micro_repo)
        finally:
            target.write_bytes(before)
        if got != want:
            failures.append(f"code {rel}: dvc status reports {sorted(got)}, dvc.yaml declares it in {sorted(want)}")
    assert not failures, "\n".join(failures)
    assert dvc_status_cli(micro_repo) == set()  # everything restored

    # what reruns below a changed stage: the DAG's edges are exactly "reads what that stage writes"
    for name, st in stages.items():
        data = [d for d in st["deps"] if d not in code]
        producers = {other for other in stages for d in data for o in outs[other] if _overlap(d, o)}
        assert set(graph.successors(name)) == producers, name
        for d in data:
            assert any(_overlap(d, o) for os_ in outs.values() for o in os_), f"{name}: {d} is neither code nor an output"
    # every stage but the last ones feeds another, so a change upstream reaches the report
    sinks = {n for n in graph if graph.in_degree(n) == 0}
    assert all(downstream(graph, {n}) & sinks for n in graph), sinks


def _direct_imports(path: Path) -> set[str]:
    """Files of the riskrl modules ``path`` imports itself (anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] != "riskrl":
                continue
            p = ROOT.joinpath(*name.split("."))
            for f in (p.with_suffix(".py"), p / "__init__.py"):
                if f.is_file():
                    out.add(f.relative_to(ROOT).as_posix())
    return out


# What each stage script runs, beyond what it imports directly (its steps module imports these
# inside functions). Keyed by script, so it holds however the stages are named or expanded.
RUNS = {
    "stages/train.py": ["riskrl/estimators/riskpo.py", "riskrl/estimators/rs_grpo.py",
                        "riskrl/estimators/tracker.py", "riskrl/embedded/trainer.py",
                        "riskrl/embedded/algorithm.py", "riskrl/rewards/exact.py"],
    "stages/evaluate.py": ["riskrl/evaluation/passk.py", "riskrl/evaluation/sampling.py",
                           "riskrl/embedded/sampler.py", "riskrl/rewards/exact.py"],
    "stages/sft.py": ["riskrl/embedded/sft.py", "riskrl/embedded/model.py", "riskrl/embedded/tokenizer.py"],
    "stages/prepare.py": ["riskrl/data/prepare.py", "riskrl/embedded/task.py"],
    "stages/validate.py": ["riskrl/data/validation.py"],
    "stages/download.py": ["riskrl/data/loading.py", "riskrl/data/sources.py"],
    "stages/report.py": ["riskrl/report/build.py", "riskrl/report/tables.py"],
    "stages/bandit.py": ["riskrl/bandit.py"],
}


def test_stage_code_is_declared_as_dependency():
    """A stage's script, the modules it imports (less the plumbing) and the code it runs are
    among its deps, so editing them reruns it. Static: no repro needed."""
    stages, _ = dvc_stages(ROOT)
    missing = []
    scripts = set()
    for name, st in stages.items():
        script = next(w for w in st["cmd"].split() if w.endswith(".py"))
        scripts.add(script)
        needed = {script} | (_direct_imports(ROOT / script) - PLUMBING) | set(RUNS.get(script, []))
        missing += [f"{name}: {f}" for f in sorted(needed) if not covers(st["deps"], f)]
    assert not missing, "stage code not in its dvc.yaml deps:\n" + "\n".join(missing)
    assert set(RUNS) <= scripts, f"RUNS names scripts no stage runs: {sorted(set(RUNS) - scripts)}"


@pytest.mark.slow
def test_plots_definitions_give_non_empty_series(micro_template):
    """`dvc plots show --json`: every top-level plot of dvc.yaml has data for each of its y series."""
    definitions = yaml.safe_load((micro_template / "dvc.yaml").read_text()).get("plots", [])
    assert definitions, "dvc.yaml defines no plots"
    shown = json.loads(run([DVC, "plots", "show", "--json"], micro_template).stdout)
    assert not shown.get("errors"), shown.get("errors")
    data = shown.get("data", shown)
    for entry in definitions:
        (title, spec), = entry.items() if isinstance(entry, dict) else ((entry, {}),)
        assert title in data, f"plot {title!r} missing from dvc plots show: {sorted(data)}"
        series = data[title][0]["content"]["data"]["values"] if data[title] else []
        assert series, f"plot {title!r} has no data points"
        ys = spec.get("y", {})
        for file, cols in (ys.items() if isinstance(ys, dict) else []):
            for col in [cols] if isinstance(cols, str) else cols:
                points = [v for v in series if v.get("dvc_inferred_y_value") is not None
                          and v.get("field") == col or col in v]
                assert points, f"plot {title!r}: no data for series {col!r} of {file}"
                assert all(math.isfinite(float(v.get(col, v.get("dvc_inferred_y_value")))) for v in points)


@pytest.mark.slow
def test_mean_over_seeds_is_the_mean_of_the_seed_metrics(micro_template):
    """The micro study has 2 seeds: each evaluate stage's mean_over_seeds is the plain mean of the
    runs' own metrics.json files, and the seeds really differ (else the check proves nothing)."""
    params = yaml.safe_load((micro_template / "params.yaml").read_text())
    assert len(params["train"]["seeds"]) == 2
    summaries = {p: json.loads(p.read_text()) for p in sorted((micro_template / "metrics").glob("evaluate_*.json"))
                 if "mean_over_seeds" in json.loads(p.read_text())}
    assert summaries, "no evaluate stage wrote a mean over seeds"
    differ = 0
    for path, summary in summaries.items():
        est_dir = micro_template / "evals" / path.stem.removeprefix("evaluate_")
        for lr_key, mean in summary["mean_over_seeds"].items():
            runs = sorted(d for d in est_dir.iterdir() if d.name.startswith(lr_key + "_s"))
            assert len(runs) == 2, (path, lr_key, runs)
            per_seed = []
            for d in runs:
                m = json.loads((d / "metrics.json").read_text())
                per_seed.append({f"{b}/{k}": v for b, vals in m.items() if isinstance(vals, dict)
                                 for k, v in vals.items() if k.startswith("pass@") and "_ci" not in k})
            assert {k for k in mean if k.split("/")[-1].startswith("pass@")} == set(per_seed[0])
            for k in per_seed[0]:
                assert mean[k] == pytest.approx((per_seed[0][k] + per_seed[1][k]) / 2, abs=1e-12), (path, k)
                differ += per_seed[0][k] != per_seed[1][k]
    assert differ, "both seeds gave identical metrics"
