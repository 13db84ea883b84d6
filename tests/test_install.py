"""Packaging: a slim core for verl users, the pipeline stack in extras, locks that match pyproject."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
CORE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = {k: [Requirement(r) for r in v] for k, v in PROJECT["optional-dependencies"].items()}
#: what only the study needs; a verl user who wants the estimators must not get it
PIPELINE_ONLY = {"dvc", "prefect", "great-expectations", "math-verify", "matplotlib", "fastapi", "sqlalchemy"}
GPU_LOCKS = {v: ROOT / f"requirements-gpu-py3{v}.lock" for v in (10, 11, 12)}
CUDA_ONLY = re.compile(r"^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+)==")


def names(reqs) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def lock_pins(path: Path) -> dict[str, list[tuple[Version, str]]]:
    """name -> [(version, marker)] of a uv-compiled requirements file."""
    pins: dict[str, list[tuple[Version, str]]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            req, _, marker = line.partition(" ; ")
            name, _, version = req.partition("==")
            pins.setdefault(canonicalize_name(name.split("[")[0]), []).append((Version(version), marker))
    return pins


def test_core_dependencies_exclude_the_pipeline_stack():
    core = names(CORE)
    assert {"torch", "numpy", "verl", "pydantic", "omegaconf", "hydra-core", "transferqueue"} <= core
    assert not core & (PIPELINE_ONLY | {"datasets", "tensorboard", "rich", "tqdm", "pandas", "ray"})
    assert PIPELINE_ONLY | {"datasets", "tensorboard", "rich", "tqdm", "pandas", "pyarrow", "ray"} <= names(
        EXTRAS["pipeline"]
    )


def test_torch_is_a_range_that_admits_verl_vllm_and_the_cpu_build():
    (torch,) = [r for r in CORE if r.name == "torch"]
    assert not any(s.operator in ("==", "===") for s in torch.specifier), "no exact torch pin in the core"
    for v in ("2.11.0", "2.13.0"):  # verl[vllm]==0.9.1 pins 2.11.0; scripts/setup.sh installs 2.13.0
        assert torch.specifier.contains(v), f"torch {v} excluded by {torch}"
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    compile_lock = (ROOT / "scripts" / "compile-lock.sh").read_text()
    cpu_torch = re.search(r"^TORCH=(\S+)", setup, re.M).group(1)
    assert re.search(rf"^CPU_TORCH={re.escape(cpu_torch)}\b", compile_lock, re.M)
    assert torch.specifier.contains(cpu_torch)


def test_extras():
    gpu = {str(r) for r in EXTRAS["gpu"]}
    assert gpu == {"riskrl[pipeline]", "verl[vllm]==0.9.1"}
    assert {"pytest", "pytest-timeout", "pytest-xdist", "ruff", "hypothesis", "mutmut", "pytest-randomly", "uv"} <= names(
        EXTRAS["dev"])
    caps = {canonicalize_name(r.name): r.specifier for r in CORE + EXTRAS["pipeline"]}
    # caps the project relies on (see the comments in pyproject.toml)
    assert not caps["fastapi"].contains("0.151.0") and not caps["sqlalchemy"].contains("2.1.0")
    assert not caps["hydra-core"].contains("1.4.0") and not caps["transformers"].contains("5.11.0")
    assert not caps["prefect"].contains("4.0.0")
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert '-e ".[pipeline,dev]"' in setup  # the README's two commands still set up the study and the tests


def check_lock_against(lock: Path, reqs: list[Requirement], python: str) -> None:
    pins = lock_pins(lock)
    env = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}
    for req in reqs:
        if req.name == "riskrl" or (req.marker and not req.marker.evaluate(env)):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock.name}: {req} is not pinned"
        for version, marker in pins[name]:
            applies = not marker or Requirement(f"x ; {marker}").marker.evaluate(env)
            if applies:
                assert req.specifier.contains(version, prereleases=True), f"{lock.name}: {name}=={version} violates {req}"


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12"])
def test_the_cpu_lock_covers_every_supported_python(python):
    lock = ROOT / "requirements.lock"
    text = lock.read_text()
    assert "python_full_version" in text  # a universal lock: python markers where versions differ
    assert not [ln for ln in text.splitlines() if CUDA_ONLY.match(ln)]  # torch comes from setup.sh
    check_lock_against(lock, [r for r in CORE + EXTRAS["pipeline"] + EXTRAS["dev"] if r.name != "torch"], python)


@pytest.mark.parametrize("minor", sorted(GPU_LOCKS))
def test_gpu_locks_pin_verls_vllm_stack(minor):
    lock = GPU_LOCKS[minor]
    pins = {k: [str(v) for v, _ in vs] for k, vs in lock_pins(lock).items()}
    assert pins["torch"] == ["2.11.0"] and pins["vllm"] == ["0.24.0"] and pins["verl"] == ["0.9.1"]
    assert pins["transformers"] == ["5.9.0"]
    assert "x86_64-manylinux_2_28" in (ROOT / "scripts" / "compile-lock.sh").read_text()
    check_lock_against(lock, CORE + EXTRAS["pipeline"] + EXTRAS["dev"], f"3.{minor}")
    setup = (ROOT / "scripts" / "setup-gpu.sh").read_text()
    assert "requirements-gpu-py$VER.lock" in setup


def test_ci_checks_every_lock():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "compile-lock.sh --check" in ci
    script = (ROOT / "scripts" / "compile-lock.sh").read_text()
    assert "for v in 3.10 3.11 3.12; do" in script and '--python-version "$v"' in script
    assert "--universal --python-version 3.10" in script  # the CPU lock: every Python from 3.10 on


@pytest.mark.slow
def test_importing_the_plugin_loads_none_of_the_pipeline_stack():
    code = (
        "import sys, riskrl.verl_plugin, riskrl.verl.launch;"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn as g; g('riskpo'); g('rs_grpo');"
        "print(sorted(m for m in ('dvc', 'prefect', 'great_expectations', 'matplotlib', 'math_verify')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_bare_package_resolves_without_the_pipeline_stack(tmp_path):
    """`pip install riskrl` (no extras) into a clean venv: verl and torch come, the study's stack does not."""
    import shutil

    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (dev extra)")
    subprocess.run([uv, "venv", "-q", str(tmp_path / "venv"), "--python", sys.executable], check=True, timeout=120)
    proc = subprocess.run([uv, "pip", "install", "--dry-run", "--python", str(tmp_path / "venv" / "bin" / "python"),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    if proc.returncode and "dns error" in proc.stderr:
        pytest.skip("no package registry reachable")
    assert proc.returncode == 0, proc.stderr[-3000:]
    would = {canonicalize_name(m.group(1)) for m in re.finditer(r"^ \+ ([A-Za-z0-9_.\-]+)==", proc.stderr, re.M)}
    assert {"verl", "torch", "transferqueue", "pydantic", "hydra-core"} <= would
    assert not would & PIPELINE_ONLY, sorted(would & PIPELINE_ONLY)
