"""The compiled PPI code (wholebody/postprocessing/modes.c) against the numpy code, and its fallback."""
from __future__ import annotations

import numpy as np
import pytest

from bench import synthetic_proposals
from wholebody.postprocessing import compiled, proposals


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOPE_CACHE", str(tmp_path))
    compiled.clear_loaded()
    yield tmp_path
    compiled.clear_loaded()


def test_compiled_decides_as_the_numpy_code(fresh_cache):
    kernel = proposals._kernels(True)
    assert kernel is not None, "no compiled code: is a C compiler installed?"
    assert list((fresh_cache / "kernels").glob("modes-*.so"))
    for part, k in (("body", 10), ("hand", 5), ("face", 10)):
        for noise, seed in ((0.05, 1), (0.12, 2)):
            arrays = synthetic_proposals(part, num_boxes=200, num_people=4, pose_noise=noise, seed=seed)
            want = proposals.ppi(*arrays, K=k, compiled=False)
            got = proposals.ppi(*arrays, K=k, compiled=kernel)
            assert len(got) == len(want) > 0
            np.testing.assert_array_equal(got.scores, want.scores)  # the same modes, summed alike
            np.testing.assert_allclose(got.pose2d, want.pose2d, rtol=0, atol=1e-3)
            np.testing.assert_allclose(got.pose3d, want.pose3d, rtol=0, atol=1e-5)
            if part == "hand":
                np.testing.assert_array_equal(got.is_right, want.is_right)


def test_no_compiler_falls_back_to_numpy(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert proposals._kernels(True) is None
    assert not list(fresh_cache.glob("**/*.so")) and not list(fresh_cache.glob("**/*.failed"))
    arrays = synthetic_proposals("body", num_boxes=100, num_people=3, seed=3)
    assert len(proposals.ppi(*arrays, K=10)) == len(proposals.ppi(*arrays, K=10, compiled=False)) > 0


def test_switched_off(fresh_cache, monkeypatch):
    monkeypatch.setenv("DOPE_COMPILED", "0")
    assert proposals._kernels(True) is None
    assert not (fresh_cache / "kernels").exists()


def test_float64_poses_use_the_numpy_code(fresh_cache):
    arrays = [a.astype(np.float64) for a in synthetic_proposals("hand", num_boxes=100, num_people=3, seed=4)]
    kernel = proposals._kernels(True)
    assert not proposals._float32_modes(kernel, arrays[2], arrays[3], arrays[0][:, 0])
    assert len(proposals.ppi(*arrays, K=5)) > 0
