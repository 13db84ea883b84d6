"""A Ray worker dies with its raylet: the kernel's parent-death signal, tested on plain processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")

# parent: starts a child that (optionally) calls die_with_parent, prints the child's pid, then waits
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
child.wait()
"""
CHILD = """
import time
if {call}:
    from riskrl.embedded.ray_runner import die_with_parent
    assert die_with_parent()
print("ready", flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def _orphan_after_parent_kill(call: bool) -> bool:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD.format(call=call)], stdout=subprocess.PIPE,
                              text=True, cwd=os.getcwd())
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "ready"  # the child has imported riskrl and set the signal
    assert _alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(0.5)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    return alive


@pytest.mark.slow  # 5-13 s (subprocesses, a size-limited folder): out of the fast subset
def test_child_dies_when_its_parent_is_killed():
    assert not _orphan_after_parent_kill(call=True)


def test_without_it_the_child_outlives_its_parent():
    assert _orphan_after_parent_kill(call=False)
