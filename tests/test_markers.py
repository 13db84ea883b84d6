"""The fast subset stays fast: a test that starts Ray, DVC, Prefect or verl must be marked slow."""

from pathlib import Path

import pytest

from tests import conftest

PROBE = '''
import subprocess, sys
import pytest

ARGV = [sys.executable, "-c", "pass", "dvc", "repro"]  # a cheap process whose argv names dvc

def test_unmarked_starts_dvc():
    subprocess.run(ARGV, check=True)

@pytest.mark.slow
def test_marked_starts_dvc():
    subprocess.run(ARGV, check=True)

def test_unmarked_plain_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

@pytest.fixture(scope="session")
def ray_head():
    subprocess.run([sys.executable, "-c", "pass", "ray", "start", "--head"], check=True)

def test_unmarked_fixture_starts_ray(ray_head):
    pass

def test_unmarked_starts_nothing():
    pass
'''


def test_guard_fails_unmarked_tests_that_start_slow_processes(pytester):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    slow: slow\n    gpu: gpu\n")
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3 and outcomes.get("failed") == 1 and outcomes.get("errors") == 1, outcomes
    result.stdout.fnmatch_lines(["*test_unmarked_starts_dvc starts `*dvc repro` but is not marked @pytest.mark.slow*"])
    result.stdout.fnmatch_lines(["*test_unmarked_fixture_starts_ray starts `*ray start --head`*"])


def test_markers_are_strict(pytester):
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n    slow: slow\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.slwo\ndef test_typo():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'slwo' not found in `markers` configuration option*"])


@pytest.mark.parametrize(
    "args,workers,dist",
    [
        (["-m", "not slow"], "auto", "loadscope"),  # the fast subset: every core
        (["-m", "not slow", "-n", "0"], 0, "no"),  # asked for one process
        (["-m", "not slow", "-n", "3"], 3, "no"),  # asked for workers: xdist's own defaults
        (["-m", "slow"], None, "no"),
        ([], None, "no"),  # the whole suite: one process (its session fixtures are built once)
    ],
)
def test_only_the_fast_subset_spreads_over_the_cores(pytester, args, workers, dist):
    config = pytester.parseconfig(*args)
    conftest.pytest_cmdline_main(config)
    assert (config.option.numprocesses, config.option.dist) == (workers, dist)


def test_shared_fixture_folders_stay_on_one_worker(pytester):
    from xdist.scheduler import LoadScopeScheduling

    config = pytester.parseconfig("--dist", "loadscope", "--tx", "2*popen")
    sched = conftest.pytest_xdist_make_scheduler(config, log=None)
    assert isinstance(sched, LoadScopeScheduling)
    split = sched._split_scope
    assert split("tests/report/test_readme.py::test_a") == split("tests/report/test_report_build.py::test_b")
    assert split("tests/reliability/test_checkpoints.py::t") == "tests/reliability/"
    assert split("tests/estimators/test_riskpo.py::test_x[a]") == "tests/estimators/test_riskpo.py"
    assert split("tests/estimators/test_riskpo.py::t") != split("tests/estimators/test_pkpo.py::t")
    assert conftest.pytest_xdist_make_scheduler(pytester.parseconfig("-n", "2"), log=None) is None
