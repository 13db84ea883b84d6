"""Mutation testing of the estimators and of pass@k with mutmut (a benchmark, not run in CI).

    pip install mutmut==3.8.1
    python benchmarks/mutation.py [--only passk.py pkpo.py ...] [--workers 2] [--keep DIR]

mutmut mutates every covered line of ``riskrl/estimators/`` and ``riskrl/evaluation/passk.py``
(an operator flipped, a constant changed, an argument dropped, ...) and runs, for each mutant,
only the tests that call the mutated function (``tests/estimators/`` and
``tests/evaluation/test_eval_passk.py``); a mutant is *killed* when a test fails. The work
happens in a scratch copy of the repository (``mutants/`` and mutmut's config never touch the
checkout); the result is printed as counts and the list of surviving mutants with their diffs,
which docs/estimators.md ("Mutation testing") discusses one by one.

``--only`` restricts the mutated files (names under riskrl/estimators/, or ``evaluation/passk.py``)
when the machine is busy: a full run takes hours on 2 loaded cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-m", "not slow and not gpu"]',
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="files to mutate, e.g. passk.py pkpo.py evaluation/passk.py")
    ap.add_argument("--workers", type=int, default=2, help="mutmut --max-children")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="riskrl-mutation-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(work, args.only)
    # one intra-op thread: mutmut forks each mutant from a process whose OpenMP pool is running, and
    # a forked child that touches that pool can wait forever (no CPU time, so no mutmut timeout)
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONWARNINGS": "ignore", "VERL_USE_EXTERNAL_PLUGINS": "none",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print(f"mutmut in {work}", flush=True)
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.workers)],
                         cwd=work, env=env)
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
    print(f"mutants: {total} generated; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for name in survivors:
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env,
                              capture_output=True, text=True).stdout
        print(f"--- survived: {name}\n{diff.strip()}\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(run.returncode if run.returncode not in (None,) else 0)


if __name__ == "__main__":
    main()
