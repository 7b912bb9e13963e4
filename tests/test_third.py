"""Smoke test of the third synthetic scene generator (benchmarks/third.py): formats, links, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.third import MAX_HIDDEN, THIRD_KINDS, make_third_scene

FRAMES = 120


@pytest.fixture(scope="module", params=THIRD_KINDS)
def scene(request):
    return request.param, make_third_scene(request.param, 3, FRAMES)


def test_kinds():
    assert len(THIRD_KINDS) == 5 and len(set(THIRD_KINDS)) == 5
    with pytest.raises(ValueError):
        make_third_scene("no such kind", 0, 10)


def test_shapes_links_scores(scene):
    _, s = scene
    assert len(s.results) == len(s.truth) == FRAMES and s.fps > 0
    for r in s.results:
        n, m, k = len(r.body), len(r.hand), len(r.face)
        assert r.body.pose2d.shape == (n, 13, 2) and r.body.pose3d.shape == (n, 13, 3)
        assert r.hand.pose2d.shape == (m, 21, 2) and r.hand.pose3d.shape == (m, 21, 3)
        assert r.face.pose2d.shape == (k, 84, 2) and r.face.pose3d.shape == (k, 84, 3)
        assert r.hand.is_right.dtype == bool and r.hand.is_right.shape == (m,)
        for part, count in ((r.body, n), (r.hand, m), (r.face, k)):
            assert part.scores.dtype == np.float32 and part.scores.shape == (count,)
            assert np.all(part.scores > 0) and np.all(part.scores <= 1)
            assert np.all(np.diff(part.scores) <= 0), "scores must be sorted by decreasing value"
            assert np.isfinite(part.pose2d).all() and np.isfinite(part.pose3d).all()
        for link, size in (("left_hand", m), ("right_hand", m), ("face", k)):
            v = getattr(r.body, link)
            assert v.dtype == np.int64 and np.all((v == -1) | ((v >= 0) & (v < size)))
            used = v[v >= 0]
            assert len(np.unique(used)) == len(used), f"{link}: a part linked to two bodies"


def test_truth(scene):
    _, s = scene
    people = len(s.truth[0])
    assert people >= 2
    for frame in s.truth:
        assert [t.person for t in frame] == list(range(people))
        for t in frame:
            assert t.body2d.shape == (13, 2) and t.body3d.shape == (13, 3)
            assert t.hands2d.shape == (2, 21, 2) and t.hands3d.shape == (2, 21, 3)
            assert t.face2d.shape == (84, 2) and t.face3d.shape == (84, 3)
            # hands at the wrists (left hand = body joint 7, right = 6), 3D parts centred on their mean
            assert np.allclose(t.hands2d[0, 0], t.body2d[7]) and np.allclose(t.hands2d[1, 0], t.body2d[6])
            assert np.allclose(t.hands3d.mean(1), 0, atol=1e-9) and np.allclose(t.face3d.mean(0), 0, atol=1e-9)
    assert all(1 <= n <= MAX_HIDDEN for n in s.hidden_runs)


def test_deterministic(scene):
    kind, s = scene
    again = make_third_scene(kind, 3, FRAMES)
    for a, b in zip(s.results, again.results):
        for p in ("body", "hand", "face"):
            assert np.array_equal(a[p].pose2d, b[p].pose2d) and np.array_equal(a[p].scores, b[p].scores)
        assert np.array_equal(a.body.left_hand, b.body.left_hand) and np.array_equal(a.body.face, b.body.face)
    assert s.hidden_runs == again.hidden_runs
    other = make_third_scene(kind, 4, FRAMES)
    assert not np.array_equal(other.truth[0][0].body2d, s.truth[0][0].body2d)


def test_detections_near_truth(scene):
    _, s = scene
    near = total = 0
    for r, frame in zip(s.results, s.truth):
        vis = [t for t in frame if t.visible]
        for pose, score in zip(r.body.pose2d, r.body.scores):
            if score < 0.5:
                continue
            total += 1
            errs = [np.median(np.linalg.norm(pose - t.body2d, axis=1)) / np.ptp(t.body2d[:, 1]) for t in vis]
            near += bool(errs) and min(errs) < 0.15
    assert total > 0.5 * len(s.results) and near >= 0.85 * total
