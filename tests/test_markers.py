"""The fast subset stays fast: a test that starts Ray, DVC, Prefect or verl must be marked slow."""

from pathlib import Path

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
