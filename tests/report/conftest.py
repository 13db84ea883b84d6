"""Report test fixtures: the synthetic run grid and a session-wide Prefect test harness."""

from __future__ import annotations

import os

import pytest
from report_fixtures import make_runs


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory) -> dict:
    """{"grid": dir of the 12 runs, "base": base dir, "samples": {name: DataFrame}, "meta": {name: run.json}}."""
    return make_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the session (starts in 10-15 s)."""
    old = os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=90):
            yield
    finally:
        if old is None:
            os.environ.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
        else:
            os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = old
