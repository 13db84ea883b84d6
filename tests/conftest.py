"""Shared fixtures, and the guard that keeps the fast subset (`pytest -m "not slow"`) fast."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# processes that only slow tests may start: Ray heads and workers, DVC, Prefect servers, verl
_SLOW_PROCESS = re.compile(r"\b(ray|raylet|gcs_server|dvc|prefect|uvicorn|verl|riskrl-verl)\b")


@contextlib.contextmanager
def _no_slow_processes(item: pytest.Item):
    """Fail a test not marked ``slow`` (and its fixtures) that starts one of ``_SLOW_PROCESS``."""
    if item.get_closest_marker("slow") is not None:
        yield
        return
    real = subprocess.Popen._execute_child

    def guarded(self, args, *rest, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        text = " ".join(os.fsdecode(a) for a in argv)
        program = os.path.basename(os.fsdecode(argv[0]).split()[0]) if argv else ""
        if program != "git" and _SLOW_PROCESS.search(text):  # git's paths may name dvc.lock
            pytest.fail(f"{item.nodeid} starts `{text[:200]}` but is not marked @pytest.mark.slow", pytrace=False)
        return real(self, args, *rest, **kw)

    subprocess.Popen._execute_child = guarded
    try:
        yield
    finally:
        subprocess.Popen._execute_child = real


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _no_slow_processes(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _no_slow_processes(item):
        yield


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


pytest_plugins = ["pytester"]
