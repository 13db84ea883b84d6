"""Bit-determinism (README, results): the micro study's chain prepare -> sft -> train -> evaluate,
run again from scratch (same CPU and threads), gives byte-identical weights, training logs,
samples and metrics. Two of its variants (RS-GRPO; RiskPO, whose quantile tracker carries state
across steps), each with two parallel Ray runs: the whole study adds only more of the same."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.pipeline.conftest import BIN, make_repo, micro_params, run

pytestmark = pytest.mark.slow

#: what must match byte for byte (provenance.json is left out: it names the commit, and each
#: temporary repository has its own)
VARIANTS = ("rs_grpo_b2", "riskpo_track")
COMPARED = (
    "data/prepared/**/*",
    "models/base/*.safetensors",
    *(f"runs/{v}/*/train_metrics.csv" for v in VARIANTS),
    *(f"runs/{v}/*/model/*.safetensors" for v in VARIANTS),
    *(f"evals/{v}/*/metrics.json" for v in VARIANTS),
    *(f"evals/{v}/*/passk.csv" for v in VARIANTS),
    *(f"evals/{v}/*/samples/*.parquet" for v in VARIANTS),
    *(f"metrics/evaluate_{v}.json" for v in VARIANTS),
)


def digests(repo: Path) -> dict[str, str]:
    out = {}
    for pattern in COMPARED:
        for f in sorted(f for f in repo.glob(pattern) if f.is_file()):
            out[str(f.relative_to(repo))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.mark.timeout(3600)  # about 1.5 min on 2 quiet cores
def test_a_second_run_from_scratch_is_byte_identical(micro_template, tmp_path):
    """The session's micro study (micro_template) and the same stages again in a new repository
    (nothing shared: its own DVC cache, its own Ray heads)."""
    repo = make_repo(tmp_path, micro_params())
    run([str(BIN / "dvc"), "repro", *(f"evaluate@{v}" for v in VARIANTS)], repo, timeout=3000)
    first, second = digests(micro_template), digests(repo)
    kinds = {p.split("/")[0] for p in first}
    assert {"data", "models", "runs", "evals", "metrics"} <= kinds
    for v in VARIANTS:  # both runs (seeds) of each variant, weights and samples included
        for part in ("runs", "evals"):
            assert len({p.split("/")[2] for p in first if p.startswith(f"{part}/{v}/")}) == 2, (part, v)
        assert any(p.startswith(f"runs/{v}/") and p.endswith(".safetensors") for p in first)
        assert any(p.startswith(f"evals/{v}/") and p.endswith(".parquet") for p in first)
    assert sorted(first) == sorted(second)
    differ = [p for p in first if first[p] != second[p]]
    assert not differ, f"{len(differ)} file(s) differ between two identical runs: {differ[:5]}"
