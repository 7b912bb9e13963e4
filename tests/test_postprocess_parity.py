"""postprocess.ppi and postprocess.nms against the published pipeline on the fixtures' proposal sets."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import FIXTURES
from parity import assert_part_close
from dope.postprocessing.proposals import nms, ppi

CASES = [(part, i) for part in ("body", "hand", "face") for i in (1, 2, 3)]


def load_case(part: str, i: int):
    arrays = np.load(os.path.join(FIXTURES, f"ppi_{part}_{i}.npz"))
    with open(os.path.join(FIXTURES, f"ppi_{part}_{i}.json")) as f:
        expected = json.load(f)
    return arrays, expected


@pytest.mark.parametrize("part,i", CASES)
def test_ppi_matches_fixture(part, i):
    a, expected = load_case(part, i)
    got = ppi(a["scores"], a["boxes"], a["pose2d"], a["pose3d"], a["resolution"], **expected["ppi_kwargs"])
    assert len(expected["ppi"]) > 0
    assert_part_close(got, expected["ppi"], part)
    assert all(g1.score >= g2.score for g1, g2 in zip(got, got[1:]))


@pytest.mark.parametrize("part,i", CASES)
def test_nms_matches_fixture(part, i):
    a, expected = load_case(part, i)
    K = expected["ppi_kwargs"].get("K") if part == "hand" else None
    got = nms(a["scores"], a["boxes"], a["pose2d"], a["pose3d"], min_score=expected["nms_min_score"], K=K)
    assert_part_close(got, expected["nms"], part)


def test_inputs_are_not_modified():
    a, expected = load_case("body", 1)
    arrays = {k: a[k].copy() for k in ("scores", "boxes", "pose2d", "pose3d")}
    ppi(*arrays.values(), a["resolution"], **expected["ppi_kwargs"])
    nms(*arrays.values())
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, a[k])


def test_no_candidate_gives_empty_lists():
    n, A, J = 5, 10, 21
    scores = np.zeros((n, A + 1), np.float32)
    scores[:, 0] = 1.0  # everything is background
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (n, 1))
    p2, p3 = np.zeros((n, A, J, 2), np.float32), np.zeros((n, A, J, 3), np.float32)
    assert len(ppi(scores, boxes, p2, p3, (100, 100))) == 0
    assert len(nms(scores, boxes, p2, p3)) == 0
    empty = (np.zeros((0, A + 1), np.float32), np.zeros((0, 4), np.float32), p2[:0], p3[:0])
    assert len(ppi(*empty, (100, 100))) == 0 and len(nms(*empty)) == 0


def test_ppi_handedness_comes_from_the_modes_top_candidate():
    # One proposal, two hand anchor poses close in 3D: the mode's top candidate is label 7 (left
    # when K=5) although label 2 (right) comes first in candidate order.
    A, J = 10, 21
    scores = np.zeros((1, A + 1), np.float32)
    scores[0, 1 + 2], scores[0, 1 + 7] = 0.3, 0.6
    boxes = np.array([[0, 0, 50, 50]], np.float32)
    p2 = np.zeros((1, A, J, 2), np.float32)
    p3 = np.zeros((1, A, J, 3), np.float32)
    (det,) = ppi(scores, boxes, p2, p3, (100, 100), K=5)
    assert det.is_right is False
    assert det.score == pytest.approx(0.9)
    scores[0, 1 + 2] = 0.7
    (det,) = ppi(scores, boxes, p2, p3, (100, 100), K=5)
    assert det.is_right is True


def test_ppi_upper_body_legs_weigh_less():
    # Two body candidates in one mode: label 0 (full body) and label K (upper body), equal scores.
    A, J, K = 20, 13, 10
    scores = np.zeros((1, A + 1), np.float32)
    scores[0, 1 + 0] = scores[0, 1 + K] = 0.4
    boxes = np.array([[0, 0, 100, 100]], np.float32)
    p2 = np.zeros((1, A, J, 2), np.float32)
    p2[0, K] = 10.0  # the upper-body candidate's joints all at (10, 10)
    p3 = np.zeros((1, A, J, 3), np.float32)
    (det,) = ppi(scores, boxes, p2, p3, (100, 100), K=K)
    np.testing.assert_allclose(det.pose2d[4:], 5.0, rtol=1e-6)  # equal weights
    np.testing.assert_allclose(det.pose2d[:4], 10.0 * 0.1 / 1.1, rtol=1e-6)  # upper body counts 0.1x
    assert det.score == pytest.approx(0.8)


@pytest.mark.parametrize("iou_func", ["mje", "torso", "torsohead", "head", "shoulderhead", "torsoLR",
                                      "torsoheadLR", "shoulderheadLR", "bbox_torsohead"])
def test_ppi_overlap_variants_run_and_separate_far_people(iou_func):
    # Two people far apart: every overlap function finds two groups.
    A, J = 20, 13
    rng = np.random.default_rng(0)
    scores = np.full((4, A + 1), 0.01, np.float32)
    scores[:, 1] = 0.8
    boxes = np.array([[0, 0, 50, 100], [2, 1, 52, 101], [300, 0, 350, 100], [301, 2, 351, 102]], np.float32)
    person = rng.uniform(0, 50, (J, 2))
    p2 = (boxes[:, None, None, :2] + person + rng.uniform(0, 2, (4, A, J, 2))).astype(np.float32)
    p3 = np.zeros((4, A, J, 3), np.float32)
    dets = ppi(scores, boxes, p2, p3, (200, 400), K=10, iou_func=iou_func)
    assert len(dets) == 2
    assert sorted(round(float(d.pose2d[:, 0].mean()) // 100) for d in dets) == [0, 3]


def test_ppi_rejects_unknown_overlap_function():
    a, _ = load_case("hand", 1)
    with pytest.raises(ValueError, match="iou_func"):
        ppi(a["scores"], a["boxes"], a["pose2d"], a["pose3d"], a["resolution"], iou_func="nope")
    with pytest.raises(ValueError, match="bodies only"):
        ppi(a["scores"], a["boxes"], a["pose2d"], a["pose3d"], a["resolution"], iou_func="torso")
