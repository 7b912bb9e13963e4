"""The fifth synthetic scene generator (benchmarks/fifth.py): what the benchmark harness reads from
it (shapes, links, sorted scores, one truth per person and frame), that a seed gives one scene,
and that its detections lie where its truth says people are seen."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from benchmarks.fifth import FIFTH_KINDS, make_fifth_scene
from benchmarks.scenes import Scene
from benchmarks.tracking import frames_of, match_bodies

FRAMES = 90


@functools.lru_cache(maxsize=None)
def scene(kind: str, seed: int = 0) -> Scene:
    return make_fifth_scene(kind, seed, FRAMES)


@pytest.mark.parametrize("kind", FIFTH_KINDS)
def test_scenes_hold_what_the_harness_reads(kind: str) -> None:
    s = scene(kind)
    assert len(s.results) == len(s.truth) == FRAMES and s.fps in (25.0, 30.0)
    people = len(s.truth[0])
    assert 2 <= people <= 6
    for r, truth in zip(s.results, s.truth):
        for part, joints in (("body", 13), ("hand", 21), ("face", 84)):
            a = r[part]
            assert a.pose2d.shape == (len(a), joints, 2) and a.pose3d.shape == (len(a), joints, 3)
            assert np.all(a.scores > 0) and np.all(np.diff(a.scores) <= 0)
            assert np.isfinite(a.pose2d).all() and np.isfinite(a.pose3d).all()
        for link, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
            v = r.body.fields[link]
            assert np.all((v >= -1) & (v < len(r[part])))
        assert [t.person for t in truth] == list(range(people))
    times = [f.item.time_s for f in frames_of(s)]
    assert np.all(np.diff(times) > 0)


def test_a_seed_gives_one_scene_and_another_seed_another() -> None:
    for kind in FIFTH_KINDS:
        a, b, c = make_fifth_scene(kind, 3, 20), make_fifth_scene(kind, 3, 20), make_fifth_scene(kind, 4, 20)
        for ra, rb in zip(a.results, b.results):
            np.testing.assert_array_equal(ra.body.pose2d, rb.body.pose2d)
            np.testing.assert_array_equal(ra.hand.pose3d, rb.hand.pose3d)
        assert len(c.truth[0]) != len(a.truth[0]) or not np.allclose(c.truth[0][0].body2d, a.truth[0][0].body2d)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        make_fifth_scene("ballet", 0)


@pytest.mark.parametrize("kind", ["crossing_depths", "occlusions", "drops_duplicates"])
def test_seen_people_are_detected_and_hidden_ones_are_not(kind: str) -> None:
    s = scene(kind)
    seen = matched = hidden = found = 0
    for r, truth in zip(s.results, s.truth):
        seen += sum(t.visible for t in truth)
        matched += len(match_bodies(r, truth))
        for t in truth:
            if not t.visible and len(r.body):
                hidden += 1
                size = np.linalg.norm(np.ptp(t.body2d, 0))
                found += bool((np.linalg.norm(r.body.pose2d - t.body2d, axis=-1).mean(-1) < 0.1 * size).any())
    assert matched >= (0.75 if kind == "drops_duplicates" else 0.85) * seen
    assert found <= 0.02 * max(hidden, 1)
    if kind == "occlusions":
        assert s.hidden_runs and max(s.hidden_runs) <= 30
