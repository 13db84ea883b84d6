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


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The fast subset (exactly ``-m "not slow"``) runs on every core with pytest-xdist, unless
    ``-n``/``--dist`` is given (``-n 0``: one process). Everything else runs in one process: the
    slow tests share session fixtures (the micro study, a Prefect server) that each xdist worker
    would build again."""
    opt = config.option
    if (
        getattr(opt, "markexpr", "") == "not slow"
        and config.pluginmanager.has_plugin("xdist")
        and getattr(opt, "numprocesses", 0) is None
        and getattr(opt, "dist", "no") == "no"
        and not hasattr(config, "workerinput")
        and not opt.collectonly
        and not getattr(opt, "usepdb", False)
    ):
        opt.numprocesses, opt.dist = "auto", "loadscope"


# folders whose tests share an expensive session fixture (the report's run grid, the reliability
# tests' repository): one scope each under the fast subset's ``--dist loadscope``
_SHARED_SCOPES = ("tests/report/", "tests/reliability/")


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (what the fast subset uses): a module is a scope, run on one worker, and
    so is each folder of ``_SHARED_SCOPES``, whose session fixtures are then built once, not once a
    worker."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((d for d in _SHARED_SCOPES if nodeid.startswith(d)), nodeid.split("::", 1)[0])

    return SharedFixtureScheduling(config, log)


if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread a worker: the workers already use every core between them
    os.environ.setdefault("OMP_NUM_THREADS", "1")


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
