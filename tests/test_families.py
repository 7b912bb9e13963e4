"""Held-out scenes (benchmarks/scenes.py families, seeds never tuned on, the held-out family
included): identities hold, online smoothing never costs accuracy, offline smoothing holds."""
from __future__ import annotations

import pytest

from benchmarks.foreign import FOREIGN_HELD_OUT_SEEDS, FOREIGN_KINDS, make_foreign_scene
from benchmarks.scenes import FAMILIES, HELD_OUT_FAMILY, HELD_OUT_SEEDS, TUNING_SEEDS, make_family_scene
from benchmarks.tracking import evaluate, run_crowd

SEED = HELD_OUT_SEEDS[0]


def test_families_are_seeded_and_draw_their_own_noise():
    a, b = make_family_scene("signers", SEED, 20), make_family_scene("signers", SEED, 20)
    assert (a.results[5].body.pose2d == b.results[5].body.pose2d).all()
    c = make_family_scene("signers", SEED + 1, 20)
    assert (a.results[5].body.pose2d != c.results[5].body.pose2d).any()
    assert HELD_OUT_FAMILY in FAMILIES and not set(HELD_OUT_SEEDS) & set(TUNING_SEEDS)
    with pytest.raises(ValueError, match="unknown scene family"):
        make_family_scene("juggling", 0)


@pytest.mark.parametrize("family", ["crossing_same_depth", "crossing_depths", "occlusions", "enter_leave", "signers",
                                    HELD_OUT_FAMILY])
def test_held_out_scene(family):
    """On a held-out scene: ids held (not yet under the panning camera: people who leave the view
    for long come back with new ids), online smoothing lowers 2D and 3D error (at most 0.9x raw,
    the issue's target) and jitter (at most 0.4x raw, the issue's target), with lag under a frame;
    offline as before."""
    ev = evaluate(make_family_scene(family, SEED))  # the scenes bench.py --tracking reports
    raw, online, offline = ev["off"], ev["online"], ev["offline"]
    assert raw["coverage"] >= 0.97
    if family != HELD_OUT_FAMILY:
        assert raw["id_switches"] == 0
    for k in ("err2d", "err3d"):
        assert online[k] <= 0.9 * raw[k], (k, online[k] / raw[k])
    assert online["accel2d"] <= 0.4 * raw["accel2d"] and abs(online["lag"]) <= 1  # the target
    assert offline["err2d"] <= (0.9 if family == "signers" else 0.6) * raw["err2d"]
    assert offline["accel2d"] <= 0.12 * raw["accel2d"] and abs(offline["lag"]) <= 0.5


def test_run_crowd_reports_milliseconds_per_frame():
    r = run_crowd(people=10, frames=5, repeat=1)
    assert r["people"] == 10 and r["detections_per_frame"] > 0
    assert all(r[k] > 0 for k in ("tracking_ms", "online_ms", "offline_ms"))


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_scene_of_another_generator(kind):
    """On a held-out scene of benchmarks/foreign.py (written without reading scenes.py or the
    tracker: pinhole camera, waypoint walkers, runners, a pillar): ids held but where runners
    speed up while hidden; online smoothing lowers 2D error and jitter; offline smoothing never
    costs accuracy, even on precise, fast hands and faces (its 3D noise is correlated in time,
    which no smoothing removes: 3D at most raw)."""
    scene = make_foreign_scene(kind, FOREIGN_HELD_OUT_SEEDS[0])
    ev = evaluate(scene)
    raw, online, offline = ev["off"], ev["online"], ev["offline"]
    assert raw["coverage"] >= 0.97
    if kind != "runners":
        assert raw["id_switches"] == 0
    assert online["err2d"] <= 0.9 * raw["err2d"] and online["err3d"] <= raw["err3d"]
    assert online["accel2d"] <= 0.4 * raw["accel2d"] and abs(online["lag"]) <= 1
    assert offline["err2d"] <= (0.85 if kind == "runners" else 0.6) * raw["err2d"]
    assert offline["err3d"] <= 0.9 * raw["err3d"] and abs(offline["lag"]) <= 0.5


@pytest.mark.parametrize("kind", ["kids_among_adults", "posture_changes", "handheld_camera", "border_truncation",
                                  "fast_dancers"])
def test_scene_of_a_third_generator(kind):
    """On a held-out scene of benchmarks/third.py (written without reading the other generators or
    the tracker): most detections carry an id, and online smoothing never costs 2D accuracy nor
    lags, even under a shaking camera (dancers at 15 fps: at most 1.5x, see below). (What it does
    not meet yet, in docs/people-over-time.md, known limits: identity switches, online smoothing of dancers at
    15 fps, and offline smoothing of dancers' hands.)"""
    from benchmarks.third import make_third_scene
    scene = make_third_scene(kind, 100)
    ev = evaluate(scene)
    raw, online = ev["off"], ev["online"]
    # (dancers: a detection after a miss or a left-right confusion may start a new track, without
    # an id for its first frames: 0.85 on this scene)
    assert raw["coverage"] >= (0.8 if kind == "fast_dancers" else 0.9)
    # (dancers at 15 fps: 1.27x raw, see test_online_smoothing_of_fast_dancers_at_15_fps)
    assert online["err2d"] <= (1.5 if kind == "fast_dancers" else 1.0) * raw["err2d"] and abs(online["lag"]) <= 1


@pytest.mark.xfail(strict=True, reason="known: the constant-velocity filter overshoots the hands' and faces' "
                   "centres of dancers spinning at 15 fps (1.27x raw; docs/people-over-time.md, known limits)")
def test_online_smoothing_of_fast_dancers_at_15_fps():
    """The issue's promise on the third generator's dancers (seed 100, 15 frames a second): online
    smoothing never costs 2D accuracy. It held only while the filter, counting in 30ths of a
    second, never measured the noise of a 15 fps stream and ran on its priors."""
    from benchmarks.third import make_third_scene
    ev = evaluate(make_third_scene("fast_dancers", 100))
    assert ev["online"]["err2d"] <= ev["off"]["err2d"]


@pytest.mark.parametrize("kind", ["crossing_depths", "occlusions", "enter_leave", "signers"])
def test_scene_of_a_fifth_generator(kind):
    """On a held-out scene of benchmarks/fifth.py (written after every setting was chosen, without
    reading the tracker, the smoothers or the other generators): ids held, every person-frame with
    an id, and neither smoother costs accuracy nor lags. (What it does not meet, in
    docs/people-over-time.md: the issue's ratios, on its walkers whose feet stop dead at each step.)"""
    from benchmarks.fifth import make_fifth_scene
    ev = evaluate(make_fifth_scene(kind, 400))
    raw, online, offline = ev["off"], ev["online"], ev["offline"]
    assert raw["coverage"] >= 0.97 and raw["id_switches"] == 0
    for mode in (online, offline):
        assert mode["err2d"] <= raw["err2d"] and mode["err3d"] <= raw["err3d"]
        assert mode["accel2d"] <= 0.6 * raw["accel2d"]
    assert abs(online["lag"]) <= 1 and abs(offline["lag"]) <= 0.5


@pytest.mark.xfail(strict=True, reason="known: offline smoothing does not follow a walker's foot that stops dead "
                   "at each step (the fifth generator: 0.71x raw in 2D, ankles 1.15x; docs/people-over-time.md)")
def test_offline_smoothing_of_the_fifth_generator_s_walkers():
    """The issue's offline target (2D at most 0.5x raw) on a held-out scene of the fifth generator."""
    from benchmarks.fifth import make_fifth_scene
    ev = evaluate(make_fifth_scene("crossing_same_depth", 400))
    assert ev["offline"]["err2d"] <= 0.5 * ev["off"]["err2d"]
