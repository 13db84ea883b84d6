"""Report test fixtures: the synthetic run grid (the Prefect harness is in tests/conftest.py)."""

from __future__ import annotations

import pytest
from report_fixtures import make_runs


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory) -> dict:
    """{"grid": dir of the 12 runs, "base": base dir, "samples": {name: DataFrame}, "meta": {name: run.json}}."""
    return make_runs(tmp_path_factory.mktemp("runs"))
