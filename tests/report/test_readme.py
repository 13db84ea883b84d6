"""The README's results section: written from a report between the markers, nothing typed."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from riskrl.report import results_section, update_readme
from riskrl.report.__main__ import main
from riskrl.report.readme import BEGIN, END, cpu_model, current_section, splice

ROOT = Path(__file__).resolve().parents[2]
HEAD = "# project\n\nintro\n\n## Results\n\nstatic text\n\n"
TAIL = "\nafter the results\n\n## Benchmarks\n"


def readme(tmp_path: Path, inside: str = "old numbers\n") -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"{HEAD}{BEGIN}\n{inside}{END}{TAIL}")
    path.chmod(0o644)
    return path


def test_the_section_is_what_the_command_writes_from_the_report(report, tmp_path, capsys):
    out = report.path.parent
    path = readme(tmp_path)
    assert main(["--readme", str(path), "--out", str(out)]) == 0
    assert "updated the results section" in capsys.readouterr().out
    text = path.read_text()
    assert current_section(text) == results_section(out)
    assert text.startswith(HEAD + BEGIN + "\n") and text.endswith(END + TAIL)  # nothing else touched
    assert path.stat().st_mode & 0o777 == 0o644
    assert update_readme(path, out) is False and path.read_text() == text  # idempotent
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left


def test_the_section_holds_the_reports_numbers_and_where_they_came_from(report):
    section = results_section(report.path.parent)
    prov = json.loads((report.path.parent / "provenance.json").read_text())
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=Path.cwd(), capture_output=True, text=True
    ).stdout
    assert prov["git"]["commit"] == commit.strip() and f"commit `{commit.strip()}`" in section
    assert prov["machine"]["cpu"] == cpu_model() and cpu_model() in section
    assert f"torch {metadata.version('torch')}" in section
    assert "1 torch thread(s) per training run" in section  # from the runs' run.json
    # the Pass@k table: macro (two benchmarks), every group, the means of passk_summary
    macro = report.summary[(report.summary["benchmark"] == "macro") & (report.summary["metric"] == "pass@k")]
    table = [line for line in section.split("Cells: variant")[0].splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {
        tuple(cells[:2]): cells for cells in ([c.strip() for c in t.strip("|").split("|")] for t in table[2:])
    }
    assert len(rows) == macro["label"].nunique() == 7
    for r in macro.itertuples():
        cells = rows[(r.variant, "" if r.variant == "base" else f"{r.lr:g}")]
        want = f"{r.mean:.3f}" + ("" if r.variant == "base" else f" ± {r.sd:.3f}")
        assert cells[header.index(f"Pass@{r.k}")] == want
    # the paired table: every overall macro difference, with its verdict
    paired = report.paired[(report.paired["benchmark"] == "macro") & (report.paired["bucket"] == "all")]
    for r in paired.itertuples():
        assert f"{r.diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" in section and r.verdict in section
    assert "### macro: against grpo" in section and "### gsm8k" not in section


def test_bad_readme_or_report_stops_in_one_line_and_changes_nothing(report, tmp_path, capsys):
    out = report.path.parent
    path = tmp_path / "README.md"
    for text in ("no markers\n", f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", f"{END}\n{BEGIN}\n"):
        path.write_text(text)
        assert main(["--readme", str(path), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err == f"error: {path} must hold the line '{BEGIN}' once, followed by '{END}' once\n"
        assert path.read_text() == text
    good = readme(tmp_path)
    before = good.read_text()
    assert main(["--readme", str(good), "--out", str(tmp_path / "nothing")]) == 1
    assert "holds no finished report (passk_summary.csv, provenance.json missing)" in capsys.readouterr().err
    assert good.read_text() == before
    with pytest.raises(SystemExit):
        main(["--out", str(out)])  # building a report needs --runs


def test_the_repository_readme_has_one_results_section_between_markers():
    text = (ROOT / "README.md").read_text()
    assert splice(text, "x\n") != text  # exactly one marker pair, in order (else splice raises)
    results = text.index("## Results on the embedded study")
    assert results < text.index(BEGIN) < text.index(END) < text.index("## Benchmarks")
    assert "python -m riskrl.report --readme" in text[results : text.index(BEGIN)]
    assert "bit-deterministic on the same CPU type and thread count" in text[results : text.index(BEGIN)]
