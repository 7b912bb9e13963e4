"""The tests' deterministic interruption points (dope/testpoints.py): the nth pass of a point
sends the signal, a once-file lets only one process act, and a malformed value never stops a run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import ROOT, interrupted

PASS_THREE_LINES = ("from dope import testpoints\n"
                    "for i in range(3):\n"
                    "    testpoints.passed('line'); print(i, flush=True)\n")


def run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PASS_THREE_LINES], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_nth_pass_sends_the_signal():
    p = run(interrupted("line", 2, "KILL"))
    assert p.returncode == -signal.SIGKILL and p.stdout.split() == ["0"]
    p = run(interrupted("line", 3, "TERM"))
    assert p.returncode == -signal.SIGTERM and p.stdout.split() == ["0", "1"]


def test_other_points_and_no_variable_change_nothing():
    assert run(interrupted("batch", 1, "KILL")).stdout.split() == ["0", "1", "2"]
    env = {k: v for k, v in os.environ.items() if k != "DOPE_TEST_INTERRUPT"}
    assert run(env).returncode == 0


def test_once_lets_one_process_act(tmp_path):
    marker = tmp_path / "once"
    env = interrupted("line", 1, "KILL", once=str(marker))
    assert run(env).returncode == -signal.SIGKILL and marker.exists()
    p = run(env)  # as a restarted Ray worker: it carries on
    assert p.returncode == 0 and p.stdout.split() == ["0", "1", "2"]


def test_a_malformed_value_warns_and_runs_on():
    for value in ("line:two:KILL", "line:1:HUP", "nowhere:1:KILL", "line:0:KILL", "line"):
        p = run({**os.environ, "DOPE_TEST_INTERRUPT": value})
        assert p.returncode == 0 and p.stdout.split() == ["0", "1", "2"], value
        assert "ignored DOPE_TEST_INTERRUPT" in p.stderr, value
