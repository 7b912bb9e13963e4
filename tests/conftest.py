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
