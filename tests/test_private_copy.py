"""inputs/private_copy.py: the checkpoint copied into memory while torch is imported, and loaded from it."""
from __future__ import annotations

import os
import sys

import pytest
import torch

from wholebody.inputs.private_copy import PrivateCopy
from wholebody.network.dopenet import read_checkpoint

LINUX = sys.platform.startswith("linux")


@pytest.mark.skipif(not LINUX, reason="memfd_create is Linux's")
def test_the_copy_holds_the_file_and_outlives_changes_to_it(tmp_path):
    path = tmp_path / "weights.bin"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    with PrivateCopy(str(path)) as copy:
        where = copy.path()
        assert where is not None and where.startswith("/proc/self/fd/")
        path.write_bytes(b"")  # truncated, as `curl -o` over it does first
        with open(where, "rb") as f:
            assert f.read() == data
    assert copy.path() is None  # closed


def test_no_copy_when_it_cannot_be_made(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc")
    monkeypatch.delattr(os, "memfd_create", raising=False)  # as on macOS or Windows
    assert PrivateCopy(str(path)).path() is None
    assert PrivateCopy(str(tmp_path / "missing.bin")).path() is None


def _loads_seen(monkeypatch) -> list[tuple[str, bool]]:
    seen = []
    load = torch.load

    def recording(f, *args, **kwargs):
        seen.append((str(f), kwargs.get("mmap", False)))
        return load(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", recording)
    return seen


@pytest.mark.skipif(not LINUX, reason="memfd_create is Linux's")
@pytest.mark.parametrize("zip_format", [True, False])
def test_checkpoint_read_from_the_copy_equals_the_file(checkpoint_dict, tmp_path, monkeypatch, zip_format):
    path = str(tmp_path / "model.pth")
    torch.save(checkpoint_dict, path, _use_new_zipfile_serialization=zip_format)
    plain = read_checkpoint(path)
    seen = _loads_seen(monkeypatch)
    with PrivateCopy(path) as copy:
        from_copy = read_checkpoint(path, copy=copy)
    assert seen[0] == (seen[0][0], True) and seen[0][0].startswith("/proc/self/fd/")
    if not zip_format:  # a legacy file cannot be mapped: the copy is read instead
        assert seen[-1][0] == seen[0][0] and seen[-1][1] is False
    assert from_copy.source == path and from_copy.config == plain.config
    if hasattr(torch.serialization, "set_default_mmap_options"):  # torch's default map flags are back
        import mmap
        from torch.utils.serialization import config
        assert config.load.mmap_flags == mmap.MAP_PRIVATE
    assert from_copy.state_dict.keys() == plain.state_dict.keys()
    for k, v in plain.state_dict.items():
        assert torch.equal(from_copy.state_dict[k], v), k


def test_dope_loads_a_checkpoint_file_from_its_copy(checkpoint_path, monkeypatch):
    from dope import DOPE
    seen = _loads_seen(monkeypatch)
    DOPE(checkpoint_path, device="cpu", max_proposals=20)
    assert len(seen) == 1
    if LINUX:
        assert seen[0][0].startswith("/proc/self/fd/") and seen[0][1] is True
    else:
        assert seen[0] == (checkpoint_path, False)


def test_a_copy_of_a_file_that_would_run_code_runs_nothing(tmp_path):
    from wholebody.network.dopenet import CheckpointError
    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    path = str(tmp_path / "bad.pth")
    torch.save({"state_dict": {}, "payload": RunsCode()}, path)
    with PrivateCopy(path) as copy, pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(path, copy=copy)
    assert not marker.exists()
