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
        # groups of hundreds of members (joint-major from the second mode on), and of a few dozen
        for boxes, noise, seed in ((200, 0.05, 1), (200, 0.12, 2), (12, 0.15, 3)):
            arrays = synthetic_proposals(part, num_boxes=boxes, num_people=4, pose_noise=noise, seed=seed)
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


def _numpy_box_people(scores, boxes, score_th, th_iou):
    """ppi's candidates sorted by group, as its numpy code finds them: (flat, s, starts)."""
    cand_n, cand_a = np.nonzero(scores[:, 1:] >= score_th)
    s = scores[cand_n, 1 + cand_a]
    group, _ = proposals._groups_by_box(cand_n, s, boxes, th_iou)
    order = np.argsort(group, kind="stable")
    flat = cand_n[order] * (scores.shape[1] - 1) + cand_a[order]
    return flat, s[order], proposals._segments(group[order])[0]


@pytest.mark.parametrize("case", ["dense", "sparse", "non-finite", "ties", "signed zeros", "degenerate"])
def test_compiled_box_groups_are_the_numpy_code(fresh_cache, case):
    kernel = proposals._kernels(True)
    assert kernel is not None, "no compiled code: is a C compiler installed?"
    rng = np.random.default_rng(len(case))
    people = 40 if case == "sparse" else 5
    scores, boxes, pose2d, pose3d = (a.copy() for a in synthetic_proposals("hand", num_boxes=300, num_people=people,
                                                                          seed=len(case)))
    if case == "non-finite":
        hit = rng.random(boxes.shape) < 0.05
        boxes[hit] = rng.choice([np.nan, np.inf, -np.inf], hit.sum())
    elif case == "ties":  # equal best scores, and boxes on a coarse grid
        scores[:] = np.round(scores, 2)
        boxes[:] = np.round(boxes / 10) * 10
    elif case == "signed zeros":  # every score -0.0 or 0.0: equal for numpy's sort, so proposals in index order
        scores[:] = np.where(rng.random(scores.shape) < 0.5, np.float32(-0.0), np.float32(0.0))
    elif case == "degenerate":  # x2 < x1: empty or negative areas
        boxes[::3, 2] = boxes[::3, 0] - rng.uniform(0, 3, len(boxes[::3]))
    with np.errstate(invalid="ignore", over="ignore"):
        for score_th, th_iou in ((0.01, 0.2), (0.0, 0.0), (np.float64(0.01), np.float64(0.2)), (0.05, 0.6)):
            want = _numpy_box_people(scores, boxes, score_th, th_iou)
            got = kernel.box_people(scores, boxes, score_th, th_iou)
            for w, g in zip(want, got):
                np.testing.assert_array_equal(g, w)
            a = proposals.ppi(scores, boxes, pose2d, pose3d, K=5, score_th=score_th, th_iou=th_iou, compiled=False)
            b = proposals.ppi(scores, boxes, pose2d, pose3d, K=5, score_th=score_th, th_iou=th_iou, compiled=kernel)
            np.testing.assert_array_equal(b.scores, a.scores)
            np.testing.assert_array_equal(b.is_right, a.is_right)
