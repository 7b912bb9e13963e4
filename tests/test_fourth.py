"""The fourth synthetic scene generator (benchmarks/fourth.py): output contract, determinism, and
that its detections and truth agree the way the benchmark harness expects."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from benchmarks.fourth import BUILDERS, FOURTH_KINDS, make_fourth_scene
from benchmarks.scenes import Scene

FRAMES = 100
FPS = {"street_crossing": (24, 30), "doorway": (24, 30), "team_sport": (25, 50), "signers": (24, 60),
       "crowd": (24, 30), "phone_video": (24, 60), "low_frame_rate": (8, 15)}
PEOPLE = {"street_crossing": (4, 10), "doorway": (4, 8), "team_sport": (6, 12), "signers": (2, 3), "crowd": (50, 200),
          "phone_video": (1, 4), "low_frame_rate": (3, 8)}


@functools.lru_cache(maxsize=None)
def scene(kind: str, seed: int = 0, frames: int = FRAMES) -> Scene:
    return make_fourth_scene(kind, seed, frames)


def centre_match(s: Scene) -> tuple[list[tuple[bool, bool]], list[bool]]:
    """Per visible person-frame: (detected near, visible); per detected body: whether the nearest
    person (centre distance over their pixel height) is hidden and near."""
    per_person, hidden_hits = [], []
    for r, fr in zip(s.results, s.truth):
        centres = r.body.pose2d.mean(1)
        tc = np.array([t.body2d.mean(0) for t in fr])
        th = np.array([max(np.ptp(t.body2d[:, 1]), 20.0) for t in fr])
        vis = np.array([t.visible for t in fr])
        for i in np.flatnonzero(vis):
            d = np.linalg.norm(centres - tc[i], axis=1) if len(centres) else np.array([np.inf])
            per_person.append((bool(d.min() < 0.1 * th[i]), True))
        for c in centres:
            d = np.linalg.norm(tc - c, axis=1) / th
            j = int(d.argmin())
            hidden_hits.append(bool(d[j] < 0.1 and not vis[j]))
    return per_person, hidden_hits


@pytest.mark.parametrize("kind", FOURTH_KINDS)
def test_output_contract(kind: str) -> None:
    s = scene(kind)
    assert len(s.results) == len(s.truth) == FRAMES
    n = len(s.truth[0])
    lo, hi = PEOPLE[kind]
    assert lo <= n <= hi
    for r, fr in zip(s.results, s.truth):
        assert (r.height, r.width) == (s.results[0].height, s.results[0].width)
        for part, j in (("body", 13), ("hand", 21), ("face", 84)):
            a = r[part]
            assert a.scores.dtype == np.float32 and a.pose2d.dtype == np.float32 and a.pose3d.dtype == np.float32
            assert a.pose2d.shape == (len(a), j, 2) and a.pose3d.shape == (len(a), j, 3)
            assert np.all(a.scores > 0) and np.all(a.scores <= 1)
            assert np.all(np.diff(a.scores) <= 0), "rows sorted by decreasing score"
            assert np.isfinite(a.pose2d).all() and np.isfinite(a.pose3d).all()
        assert r.hand.is_right.dtype == bool
        for link, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
            v = r.body.fields[link]
            assert v.dtype == np.int64 and np.all((v >= -1) & (v < len(r[part])))
        assert [t.person for t in fr] == list(range(n))
        for t in fr:
            assert t.body2d.shape == (13, 2) and t.body3d.shape == (13, 3)
            assert t.hands2d.shape == (2, 21, 2) and t.hands3d.shape == (2, 21, 3)
            assert t.face2d.shape == (84, 2) and t.face3d.shape == (84, 3)
            assert np.abs(t.hands3d.mean(1)).max() < 1e-9 and np.abs(t.face3d.mean(0)).max() < 1e-9


@pytest.mark.parametrize("kind", FOURTH_KINDS)
def test_fps_and_size(kind: str) -> None:
    s = scene(kind)
    lo, hi = FPS[kind]
    assert lo <= s.fps <= hi
    r = s.results[0]
    if kind == "phone_video":
        assert (r.width, r.height) in ((1080, 1920), (720, 1280))
    else:
        assert r.width > r.height


def test_deterministic_and_seeded() -> None:
    for kind in FOURTH_KINDS:
        a, b = make_fourth_scene(kind, 3, 30), make_fourth_scene(kind, 3, 30)
        for ra, rb in zip(a.results, b.results):
            for part in ("body", "hand", "face"):
                for k, v in ra[part].fields.items():
                    np.testing.assert_array_equal(v, rb[part].fields[k])
        for fa, fb in zip(a.truth, b.truth):
            for ta, tb in zip(fa, fb):
                assert ta.visible == tb.visible
                np.testing.assert_array_equal(ta.body2d, tb.body2d)
                np.testing.assert_array_equal(ta.face3d, tb.face3d)
        assert a.hidden_runs == b.hidden_runs and a.fps == b.fps
        c = make_fourth_scene(kind, 4, 30)
        assert len(c.truth[0]) != len(a.truth[0]) or not np.allclose(c.truth[0][0].body2d, a.truth[0][0].body2d)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown scene kind"):
        make_fourth_scene("ballet", 0)


@pytest.mark.parametrize("kind", FOURTH_KINDS)
def test_visible_people_are_detected_hidden_ones_not(kind: str) -> None:
    per_person, hidden_hits = centre_match(scene(kind))
    assert np.mean([d for d, _ in per_person]) >= 0.85
    assert np.mean(hidden_hits) < 0.02  # duplicates and junk, rarely


@pytest.mark.parametrize("kind", FOURTH_KINDS)
def test_hidden_runs_match_visibility(kind: str) -> None:
    s = scene(kind)
    vis = np.array([[t.visible for t in fr] for fr in s.truth])
    runs = []
    for i in range(vis.shape[1]):
        seen = np.flatnonzero(vis[:, i])
        runs += [int(g) for g in np.diff(seen) - 1 if g > 0]
    assert sorted(runs) == sorted(s.hidden_runs)
    if kind == "signers":
        assert vis.all() and not s.hidden_runs


@pytest.mark.parametrize("kind", FOURTH_KINDS)
def test_truth_2d_is_the_projection_of_3d(kind: str) -> None:
    """Un-flipped, the body 3D truth seen from the front has the 2D truth's shape (perspective aside)."""
    iu = np.triu_indices(13, 1)
    corr = []
    for fr in scene(kind).truth[::4]:
        for t in fr:
            if not t.visible:
                continue
            xy = t.body3d[:, :2] * -1  # back to x right, y down
            d2 = np.linalg.norm(t.body2d[:, None] - t.body2d[None], axis=-1)[iu]
            d3 = np.linalg.norm(xy[:, None] - xy[None], axis=-1)[iu]
            corr.append(np.corrcoef(d2, d3)[0, 1])
            c2, c3 = t.body2d - t.body2d.mean(0), xy - xy.mean(0)
            assert (c2 * c3).sum() > 0.8 * np.linalg.norm(c2) * np.linalg.norm(c3)  # same orientation, not mirrored
    assert len(corr) > 5 and min(corr) > 0.93 and np.mean(corr) > 0.97


def test_signers_faces_and_hands() -> None:
    s = scene("signers")
    assert all(len(r.face) >= len(s.truth[0]) for r in s.results)  # faces always seen
    hands = sum(len(r.hand) for r in s.results)
    assert hands > 2.5 * FRAMES  # most of the hands, most of the time
    sizes = [np.ptp(t.body2d[:, 1]) for t in s.truth[0]]
    assert min(sizes) > 0.4 * s.results[0].height  # close-up


def test_phone_people_cut_by_the_border() -> None:
    cut = 0
    for seed in range(3):
        s = scene("phone_video", seed)
        h, w = s.results[0].height, s.results[0].width
        for r, fr in zip(s.results, s.truth):
            for t in fr:
                out = (t.body2d < 0).any(-1) | (t.body2d >= [w, h]).any(-1)
                cut += bool(t.visible and out.any())
    assert cut > 0


def test_team_sport_has_close_contacts() -> None:
    rng = np.random.default_rng(0)
    setup = BUILDERS["team_sport"](rng, 240)
    pos = setup.motion.pos
    d = np.linalg.norm(pos[:, :, None] - pos[:, None], axis=-1)
    d[:, np.arange(d.shape[1]), np.arange(d.shape[1])] = np.inf
    assert d.min() < 0.3


def test_crowd_is_small_and_partly_hidden() -> None:
    s = scene("crowd")
    heights = np.array([np.ptp(t.body2d[:, 1]) for fr in s.truth[::10] for t in fr if t.visible])
    assert 30 < np.median(heights) < 160
    vis = np.array([[t.visible for t in fr] for fr in s.truth])
    assert 0.5 < vis.mean() < 1 and len(s.hidden_runs) > 0


def test_low_frame_rate_moves_far_between_frames() -> None:
    s = scene("low_frame_rate")
    steps = []
    for a, b in zip(s.truth[:-1], s.truth[1:]):
        for ta, tb in zip(a, b):
            if ta.visible and tb.visible:
                steps.append(np.linalg.norm(tb.body2d.mean(0) - ta.body2d.mean(0)) / np.ptp(ta.body2d[:, 1]))
    assert np.percentile(steps, 90) > 0.08  # a tenth of the body's height per frame, often


def test_static_false_positive_in_some_scenes() -> None:
    """A mannequin or poster: a body detected over many frames that is nobody in the truth."""
    persistent = 0
    for seed in range(4):
        s = make_fourth_scene("doorway", seed, 60)
        frames = 0
        for r, fr in zip(s.results, s.truth):
            tc = np.array([t.body2d.mean(0) for t in fr])
            th = np.array([max(np.ptp(t.body2d[:, 1]), 20.0) for t in fr])
            for c in r.body.pose2d.mean(1):
                if (np.linalg.norm(tc - c, axis=1) / th).min() > 0.5:
                    frames += 1
                    break
        persistent += frames > 30
    assert persistent >= 1
