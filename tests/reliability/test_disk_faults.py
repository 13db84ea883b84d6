"""Disk full, read-only outputs and Ctrl-C: one line (or exit 130), and the earlier outputs intact.

Disk full and read-only use a small tmpfs mounted over the stage's output folder (needs root or
CAP_SYS_ADMIN; skipped otherwise, with the reason). The stage is `bandit` (no Ray, seconds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import env, run_stage, set_params, snapshot, stderr_lines

OLD = {"outputs/bandit/bandit.json": "[]\n", "outputs/bandit/bandit.png": "not really a png\n"}


def _plant(repo: Path) -> None:
    for rel, text in OLD.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'mount failed'}); needs root")


@pytest.fixture
def small_outputs(stage_repo):
    where = stage_repo / "outputs"
    _mount_tmpfs(where, "256k")
    try:
        _plant(stage_repo)
        yield stage_repo
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.slow  # 5-13 s (subprocesses, a size-limited folder): out of the fast subset
def test_disk_full_is_one_line_naming_enospc(small_outputs):
    repo = small_outputs
    set_params(repo, bandit__updates=200, bandit__seeds=2)
    filler = repo / "outputs" / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the tmpfs, then leave about 8 KB free: the new JSON fits, the PNG does not
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - 8192)
    before = snapshot(repo, ("outputs/bandit",))
    proc = run_stage(repo, "stages/bandit.py")
    lines = stderr_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "no space left on device (ENOSPC)" in lines[0] and "Traceback" not in proc.stderr
    assert snapshot(repo, ("outputs/bandit",)) == before
    assert not (repo / "outputs/.bandit.staging").exists()


@pytest.mark.slow  # a remounted tmpfs and a stage subprocess: out of the fast subset
def test_read_only_output_folder(small_outputs):
    repo = small_outputs
    set_params(repo, bandit__updates=200, bandit__seeds=2)
    subprocess.run(["mount", "-o", "remount,ro", str(repo / "outputs")], check=True)
    before = snapshot(repo, ("outputs/bandit",))
    proc = run_stage(repo, "stages/bandit.py")
    lines = stderr_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "read-only file system (EROFS)" in lines[0] and "outputs" in lines[0]
    assert snapshot(repo, ("outputs/bandit",)) == before


@pytest.mark.slow  # waits for the stage to start updating before the signal: out of the fast subset
def test_ctrl_c_exits_130_and_keeps_the_outputs(stage_repo):
    repo = stage_repo
    _plant(repo)
    set_params(repo, bandit__updates=3_000_000, bandit__seeds=5)  # a minute or more of updates
    before = snapshot(repo, ("outputs",))
    e = env(PYTHONPATH=str(repo))
    # SIGINT at its default in the child: a runner started in the background (`cmd &`) passes it on ignored
    proc = subprocess.Popen([sys.executable, "stages/bandit.py"], cwd=repo, env=e, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging = repo / "outputs/.bandit.staging"
    deadline = time.monotonic() + 300
    while not staging.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert staging.exists(), "the stage never started writing"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=300)  # once (CI, loaded): still running 120 s after the signal
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"stages/bandit.py still ran 300 s after SIGINT: {proc.communicate()[1][-2000:]}") from None
    lines = [ln for ln in err.splitlines() if ln.startswith("stage ")]
    assert proc.returncode == 130 and lines == ["stage bandit: interrupted"], err[-2000:]
    assert "Traceback" not in err
    assert snapshot(repo, ("outputs",)) == before and not staging.exists()
