"""Report test fixtures: the synthetic run grid (the Prefect harness is in tests/conftest.py)."""

from __future__ import annotations

import pytest
from report_fixtures import make_runs


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory) -> dict:
    """{"grid": dir of the 12 runs, "base": base dir, "samples": {name: DataFrame}, "meta": {name: run.json}}."""
    return make_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def report(fixture_runs, tmp_path_factory):
    """The report of the fixture grid (built once: plots and paired bootstraps take seconds). Read-only."""
    from riskrl.report import build_report

    return build_report([fixture_runs["grid"]], fixture_runs["base"], tmp_path_factory.mktemp("rep"), n_boot=200)
