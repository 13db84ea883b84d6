"""Mutation testing of the estimators and of pass@k with mutmut (a benchmark, not run in CI).

    pip install mutmut==3.8.1
    python benchmarks/mutation.py [--only passk.py pkpo.py ...] [--workers 2] [--keep DIR] [--markdown FILE]
    python benchmarks/mutation.py --report DIR [--markdown FILE]     # re-read a run kept in DIR

mutmut mutates every covered line of ``riskrl/estimators/`` and ``riskrl/evaluation/passk.py``
(an operator flipped, a constant changed, an argument dropped, ...) and runs, for each mutant,
only the tests that call the mutated function (``tests/estimators/`` and
``tests/evaluation/test_eval_passk.py``); a mutant is *killed* when a test fails. The work
happens in a scratch copy of the repository (``mutants/`` and mutmut's config never touch the
checkout); the result is printed as counts and the list of surviving mutants with their diffs and
a verdict (equivalent / tolerance / untested, with the reason) from the first matching rule of
``benchmarks/mutation_survivors.yaml``; docs/mutation-survivors.md is that table for the last
complete run.

``--only`` restricts the mutated files (names under riskrl/estimators/, or ``evaluation/passk.py``)
when the machine is busy: a full run takes hours on 2 loaded cores.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MUTATE = ["riskrl/estimators/*", "riskrl/evaluation/passk.py"]
TESTS = ["tests/estimators", "tests/evaluation/test_eval_passk.py"]
COPY = ["riskrl", "tests/__init__.py", "tests/conftest.py", "tests/estimators", "tests/evaluation",
        "docs/estimators.md"]


def scratch_copy(dest: Path, only: list[str]) -> None:
    for rel in COPY:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    patterns = MUTATE if not only else [
        f"riskrl/{o}" if o.startswith("evaluation/") else f"riskrl/estimators/{o}" for o in only
    ]
    toml = [
        "[tool.mutmut]",
        'source_paths = ["riskrl"]',
        f"only_mutate = {json.dumps(patterns)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(TESTS)}",
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-m", "not gpu"]',
        "mutate_only_covered_lines = true",
        'also_copy = ["docs/"]',
        "use_git_change_detection = false",
        "",
        "[tool.pytest.ini_options]",
        'markers = ["gpu: needs a CUDA device", "slow: slow"]',
        'filterwarnings = ["ignore::DeprecationWarning", "ignore::UserWarning"]',
        "",
    ]
    (dest / "pyproject.toml").write_text("\n".join(toml))


def survivor_diffs(work: Path, names: list[str]) -> dict[str, str]:
    """The changed lines of each mutant ("-old" / "+new"), read from mutmut's generated files
    (every mutant is a copy of its function named ``<function>__mutmut_<i>`` next to ``..._orig``)."""
    sources: dict[Path, dict[str, str]] = {}
    diffs = {}
    for name in names:
        module, func = name.rsplit(".", 1)
        path = work / "mutants" / (module.replace(".", "/") + ".py")
        if path not in sources:
            text = path.read_text()
            lines = text.splitlines()
            sources[path] = {node.name: "\n".join(lines[node.lineno - 1: node.end_lineno])
                             for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)}
        funcs = sources[path]
        orig_name = re.sub(r"__mutmut_\d+$", "__mutmut_orig", func)
        mutant, orig = funcs.get(func), funcs.get(orig_name)
        if mutant is None or orig is None:
            diffs[name] = "(source not found)"
            continue
        mutant = mutant.replace(func, orig_name)
        diffs[name] = "\n".join(
            line for line in difflib.unified_diff(orig.splitlines(), mutant.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        )
    return diffs


def classify(name: str, diff: str, rules: list[dict]) -> tuple[str, str]:
    """(verdict, why) of the first rule of benchmarks/mutation_survivors.yaml that matches."""
    func = name.rsplit(".", 1)[1]
    for rule in rules:
        if re.search(rule["function"], func) and re.search(rule["diff"], diff):
            return rule["verdict"], rule["why"]
    return "unclassified", "no rule matches: read it with `mutmut show`"


def report(work: Path, markdown: Path | None) -> None:
    """Counts, and every survivor with its diff and its verdict from mutation_survivors.yaml."""
    env = mutmut_env(work)
    results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True)
    counts: dict[str, int] = {}
    survivors = []
    for line in results.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        counts[status] = counts.get(status, 0) + 1
        if status == "survived":
            survivors.append(name)
    total = sum(counts.values())
    rules = yaml.safe_load((ROOT / "benchmarks" / "mutation_survivors.yaml").read_text())
    diffs = survivor_diffs(work, survivors)
    rows = [(name, diffs[name], *classify(name, diffs[name], rules)) for name in survivors]
    verdicts = Counter(row[2] for row in rows)
    for name, diff, verdict, why in rows:
        print(f"--- survived: {name} [{verdict}]\n{diff}\n    {why}\n")
    non_equivalent = total and (verdicts.get("untested", 0) + verdicts.get("unclassified", 0)) / total
    print(f"mutants: {total} generated; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    print("survivors: " + ", ".join(f"{v} {k}" for k, v in sorted(verdicts.items())))
    print(f"surviving non-equivalent (untested + unclassified): {non_equivalent:.1%} of the mutants (target <= 5 %)")
    if markdown:
        md = ["| mutant | change | verdict | why |", "|---|---|---|---|"]
        for name, diff, verdict, why in rows:
            change = "<br>".join(f"`{line[0]} {line[1:].strip()}`" for line in diff.splitlines())
            md.append(f"| `{name.removeprefix('riskrl.')}` | {change.replace('|', '&#124;')} | {verdict} | "
                      f"{why.replace('|', '&#124;')} |")
        markdown.write_text("\n".join(md) + "\n")
        print(f"wrote {markdown}")


def mutmut_env(work: Path) -> dict[str, str]:
    # one intra-op thread: mutmut forks each mutant from a process whose OpenMP pool is running, and
    # a forked child that touches that pool can wait forever (no CPU time, so no mutmut timeout)
    return {**os.environ, "PYTHONPATH": str(work), "PYTHONWARNINGS": "ignore", "VERL_USE_EXTERNAL_PLUGINS": "none",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="files to mutate, e.g. passk.py pkpo.py evaluation/passk.py")
    ap.add_argument("--workers", type=int, default=2, help="mutmut --max-children")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    ap.add_argument("--report", type=Path, metavar="DIR", help="only report on the finished run kept in DIR")
    ap.add_argument("--markdown", type=Path, help="also write the survivors' table (Markdown) to this file")
    args = ap.parse_args()
    if args.report:
        report(args.report, args.markdown)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="riskrl-mutation-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(work, args.only)
    print(f"mutmut in {work}", flush=True)
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.workers)],
                         cwd=work, env=mutmut_env(work))
    report(work, args.markdown)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(run.returncode or 0)


if __name__ == "__main__":
    main()
