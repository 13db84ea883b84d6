"""Bit-determinism (README, results): the micro study twice from scratch, same CPU and threads,
gives byte-identical weights, training logs, samples and metrics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.pipeline.conftest import BIN, make_repo, micro_params, run

pytestmark = pytest.mark.slow

#: what must match byte for byte (provenance.json is left out: it names the commit, and each
#: temporary repository has its own)
COMPARED = (
    "data/prepared/**/*",
    "models/base/*.safetensors",
    "runs/*/*/train_metrics.csv",
    "runs/*/*/model/*.safetensors",
    "evals/*/*/metrics.json",
    "evals/*/*/passk.csv",
    "evals/*/*/samples/*.parquet",
    "metrics/*.json",
    "plots/*.csv",
    "reports/passk_summary.csv",
    "reports/paired_diff.csv",
    "reports/lost_gained.csv",
)


def digests(repo: Path) -> dict[str, str]:
    out = {}
    for pattern in COMPARED:
        for f in sorted(f for f in repo.glob(pattern) if f.is_file()):
            out[str(f.relative_to(repo))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.mark.timeout(3600)  # one micro study: about 3 min on 2 quiet cores
def test_a_second_run_from_scratch_is_byte_identical(micro_template, tmp_path):
    """The session's micro study (micro_template) and the same study again in a new repository
    (nothing shared: its own DVC cache, its own Ray heads)."""
    repo = make_repo(tmp_path, micro_params())
    run([str(BIN / "dvc"), "repro"], repo, timeout=3000)
    first, second = digests(micro_template), digests(repo)
    kinds = {p.split("/")[0] for p in first}
    assert {"data", "models", "runs", "evals", "metrics", "plots", "reports"} <= kinds
    assert any(p.endswith("train_metrics.csv") and "/riskpo" in f"/{p}" for p in first)
    assert sorted(first) == sorted(second)
    differ = [p for p in first if first[p] != second[p]]
    assert not differ, f"{len(differ)} file(s) differ between two identical runs: {differ[:5]}"
