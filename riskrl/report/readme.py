"""The README's results section, written from a finished report (nobody types the numbers).

``python -m riskrl.report --readme`` (after ``dvc repro``) replaces what lies between the marker
lines ``<!-- results:begin -->`` and ``<!-- results:end -->`` of README.md with
``results_section(reports/)``: the Pass@k table, the paired differences against the baseline
and the machine and commit the study ran on, all read from the report's own files
(``passk_summary.csv``, ``paired_diff.csv``, ``provenance.json``). The report stage does not
touch README.md: it is tracked by git and no DVC output, so a stage rewriting it would dirty
the tree behind DVC's back.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from riskrl.evaluation.metrics import MACRO
from riskrl.io import write_text
from riskrl.report.paired import paired_markdown
from riskrl.report.runs import BASE, Run

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PROVENANCE = "provenance.json"
#: files changed by the pipeline itself during `dvc repro` (not a change of the code that ran)
_PIPELINE_FILES = ("dvc.lock", "metrics", "plots", "README.md")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere platform's best guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(*args: str, cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def provenance(trained: list[Run], base: Run | None, *, cwd: str | os.PathLike = ".") -> dict:
    """Where and from what the report's numbers came: machine, torch, commit, the study's shape."""
    cwd = Path(cwd)
    excludes = [f":(exclude){p}" for p in _PIPELINE_FILES]
    changed = _git("diff", "--name-only", "HEAD", "--", ".", *excludes, cwd=cwd)
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    runs = trained + ([base] if base else [])
    benches = sorted({b for r in runs for b in r.problems["benchmark"].unique()})
    return {
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "torch": torch_version,
            # torch threads of each run, as its trainer recorded them in run.json
            "torch_threads": sorted({int(r.meta["num_threads"]) for r in trained if "num_threads" in r.meta}),
            "devices": sorted({str(r.meta["device"]) for r in trained if "device" in r.meta}),
        },
        "git": {
            "commit": _git("rev-parse", "HEAD", cwd=cwd),
            # tracked files that differ from the commit (the pipeline's own outputs left out)
            "changed_files": None if changed is None else changed.splitlines(),
        },
        "study": {
            "runs": len(trained),
            "variants": sorted({r.variant for r in trained}),
            "lrs": sorted({r.lr for r in trained if r.lr is not None}),
            "seeds": sorted({r.seed for r in trained if r.seed is not None}),
            "benchmarks": {
                b: {
                    "problems": int(max((r.problems["benchmark"] == b).sum() for r in runs)),
                    "n": int(min(r.problems.loc[r.problems["benchmark"] == b, "n"].min() for r in runs)),
                }
                for b in benches
            },
        },
    }


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip", keep_default_na=True)


def results_section(report_dir: str | os.PathLike) -> str:
    """The README's results section (without the marker lines) from a report directory."""
    d = Path(report_dir)
    missing = [n for n in ("passk_summary.csv", PROVENANCE) if not (d / n).is_file()]
    if missing:
        raise ValueError(
            f"'{d}' holds no finished report ({', '.join(missing)} missing); run `dvc repro` first"
        )
    summary = _read_csv(d / "passk_summary.csv")
    prov = json.loads((d / PROVENANCE).read_text(encoding="utf-8"))
    paired = _read_csv(d / "paired_diff.csv") if (d / "paired_diff.csv").is_file() else pd.DataFrame()
    mach, git, study = prov["machine"], prov["git"], prov["study"]
    benches = study["benchmarks"]
    # one benchmark: its own figures; several: the macro average
    shown = next(iter(benches)) if len(benches) == 1 else MACRO
    threads = ", ".join(map(str, mach["torch_threads"])) or "not recorded"
    changed = git.get("changed_files")
    state = "" if not changed else f" with local changes to {', '.join(changed[:5])}"
    s = [
        "<!-- written by `python -m riskrl.report --readme` from reports/; edits here are overwritten -->",
        "",
        f"From `reports/` of `dvc repro` at commit `{git.get('commit') or 'unknown'}`{state}, on "
        f"{mach['cpu']} ({mach['logical_cpus']} logical CPUs, {mach['platform']}), Python {mach['python']}, "
        f"torch {mach['torch'] or 'not installed'}, {threads} torch thread(s) per training run"
        + (f" on {', '.join(mach['devices'])}" if mach.get("devices") else "")
        + ".",
        "",
        f"{study['runs']} trained runs: variants {', '.join(study['variants'])}; learning rates "
        f"{', '.join(f'{x:g}' for x in study['lrs'])}; seeds {', '.join(map(str, study['seeds']))}. "
        "Benchmarks: "
        + ", ".join(f"{b} ({v['problems']} problems, {v['n']} samples each)" for b, v in benches.items())
        + f". Figures below: {shown}; mean ± sd over seeds (the base is one model).",
        "",
        _passk_table(summary, shown),
    ]
    if not paired.empty:
        s.append(paired_markdown(paired, benchmark=shown))
    return "\n".join(s).rstrip("\n") + "\n"


def _passk_table(summary: pd.DataFrame, bench: str) -> str:
    df = summary[(summary["benchmark"] == bench) & (summary["metric"] == "pass@k")]
    ks = sorted(int(k) for k in df["k"].unique())
    header = ["policy", "lr", "seeds", *[f"Pass@{k}" for k in ks]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = list(df.groupby(["variant", "lr"], sort=False, dropna=False))
    # the base first, then by lr and variant
    groups.sort(key=lambda kv: (kv[0][0] != BASE, 0.0 if pd.isna(kv[0][1]) else kv[0][1], kv[0][0]))
    for (variant, lr), g in groups:
        g = g.set_index("k")
        cells = [variant, "" if pd.isna(lr) else f"{lr:g}", str(int(g["seeds"].max()))]
        for k in ks:
            if k not in g.index:
                cells.append("–")
                continue
            mean, sd = float(g.loc[k, "mean"]), float(g.loc[k, "sd"])
            cells.append(f"{mean:.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def splice(text: str, section: str, *, where: str = "README.md") -> str:
    """``text`` with the lines between the markers replaced by ``section``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{where} must hold the line '{BEGIN}' once, followed by '{END}' once")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def current_section(text: str) -> str:
    """What lies between the markers of ``text`` (the inverse of ``splice``)."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].removeprefix("\n")


def update_readme(readme: str | os.PathLike, report_dir: str | os.PathLike) -> bool:
    """Rewrite the results section of ``readme`` from ``report_dir``; True if it changed.
    Validates everything before writing; the file is replaced atomically, its mode kept."""
    path = Path(readme)
    if not path.is_file():
        raise ValueError(f"README '{path}' does not exist")
    old = path.read_text(encoding="utf-8")
    new = splice(old, results_section(report_dir), where=str(path))
    if new == old:
        return False
    mode = path.stat().st_mode & 0o777
    write_text(path, new)
    os.chmod(path, mode)
    return True
