"""Shared fixtures: synthetic checkpoints (made once per session) and the reference fixtures."""
from __future__ import annotations

import os

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
FIXTURES = os.path.join(TESTS, "fixtures")
from make_synthetic_checkpoint import build_checkpoint

SMALL = {"min_size": 320, "max_size": 512}  # the fixtures' network input size


@pytest.fixture(scope="session")
def checkpoint_dict() -> dict:
    """The fixtures' checkpoint as loaded: seed 0, 320/512 input size, fp32. Do not modify it."""
    return build_checkpoint(0, dope_kwargs=SMALL)


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory, checkpoint_dict) -> str:
    """The fixtures' checkpoint file."""
    path = tmp_path_factory.mktemp("models") / "synthetic_seed0.pth"
    torch.save(checkpoint_dict, path)
    return str(path)


@pytest.fixture(scope="session")
def fixture_image() -> str:
    return os.path.join(FIXTURES, "synthetic_480x640.png")


def interrupted(where: str, n: int, signal_name: str, once: str | None = None, env: dict | None = None) -> dict:
    """An environment in which the command sends itself SIGNAL the nth time it passes the point
    `where` (dope/testpoints.py): a deterministic interruption, not a race with a poll."""
    value = f"{where}:{n}:{signal_name}" + (f":{once}" if once else "")
    return {**(os.environ if env is None else env), "DOPE_TEST_INTERRUPT": value}


def wait_killed(proc, signal_number: int, timeout: float = 600) -> tuple[str, str]:
    """Wait for a command started with `interrupted(...)` (in a session of its own) to end by that
    signal; its output. Whatever it left running in its process group goes too."""
    import signal as _signal
    try:
        proc.wait(timeout)
    finally:
        try:
            os.killpg(proc.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, err = proc.communicate()
    assert proc.returncode == -signal_number, (proc.returncode, err)
    return out, err
