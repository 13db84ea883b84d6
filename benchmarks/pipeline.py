"""Time a fresh `dvc repro` of the default embedded study and the no-op rerun.

    python benchmarks/pipeline.py [--repo .] [--work DIR] [--set key=value ...]

Clones the repository's committed HEAD into a temporary directory (so nothing is cached),
runs `dvc repro` there with this venv's `python` and `dvc`, and prints the wall time per stage
(from DVC's stage start lines), the stages' own work (their "done in" lines), the overhead
(DVC + process start + imports + Ray heads = wall - work) and the no-op rerun time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

BIN = Path(sys.executable).parent


def run_timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, list[tuple[float, str]]]:
    """Run ``cmd``, returning its wall time and (time since start, line) for every output line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append((time.perf_counter() - t0, line.rstrip()))
    if proc.wait():
        tail = "\n".join(ln for _, ln in lines[-30:])
        raise SystemExit(f"{' '.join(cmd)} failed:\n{tail}")
    return time.perf_counter() - t0, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--work", default=None, help="clone here (default: a temporary directory)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="params.yaml key=value")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="riskrl-bench-")) / "study"
    subprocess.run(["git", "clone", "-q", args.repo, str(work)], check=True)
    if args.overrides:
        from riskrl.config import set_overrides

        params = set_overrides(yaml.safe_load((work / "params.yaml").read_text()), args.overrides)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONWARNINGS": "ignore",
           "RAY_USAGE_STATS_ENABLED": "0", "DVC_NO_ANALYTICS": "1"}
    env.pop("RAY_ADDRESS", None)
    total, lines = run_timed([str(BIN / "dvc"), "repro"], work, env)
    starts = [(t, m.group(1)) for t, ln in lines if (m := re.match(r"Running stage '([^']+)'", ln))]
    work_s = {}
    for _, ln in lines:
        if m := re.match(r"stage (\S+): done in ([\d.]+)s", ln):
            work_s.setdefault(m.group(1), []).append(float(m.group(2)))
    noop, noop_lines = run_timed([str(BIN / "dvc"), "repro"], work, env)
    up_to_date = any("up to date" in ln for _, ln in noop_lines)

    console = Console()
    table = Table(title=f"fresh `dvc repro` of {work} ({os.cpu_count()} cores)")
    for col in ("stage", "wall s", "stage's own work s"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    counters: dict[str, int] = {}
    sum_work = 0.0
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        base = name.split("@")[0]
        k = counters.get(base, 0)
        counters[base] = k + 1
        w = work_s.get(base, [])[k] if k < len(work_s.get(base, [])) else float("nan")
        sum_work += 0 if w != w else w
        table.add_row(name, f"{end - t:.1f}", f"{w:.1f}")
    table.add_row("total", f"{total:.1f}", f"{sum_work:.1f}")
    console.print(table)
    console.print(f"overhead (DVC, process start and imports, Ray heads): {total - sum_work:.1f} s "
                  f"= {100 * (total - sum_work) / total:.1f}% of the study")
    console.print(f"no-op rerun: {noop:.1f} s ({'up to date' if up_to_date else 'NOT up to date'})")


if __name__ == "__main__":
    main()
