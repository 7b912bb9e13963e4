"""Tracks: ids stable through crossings and occlusions, never reused, none for one-frame false
positives, carried by attached hands and faces; handedness kept; the CLI replays saved detections."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from dope.inputs.sources import Item
from benchmarks.scenes import _person_parts, make_scene
from dope.motion.tracking import NO_TRACK, Tracker, track
from dope.results import PartArrays, Result
from dope.stream import Frame


def people_frame(people, noise=0.0, rng=None, score=0.9, width=1280, height=720):
    """A Result with one whole body (two hands and a face attached) per (x, y, scale) in `people`."""
    bodies, hands, faces = [], [], []
    for x, y, scale in people:
        b2, b3, h2, h3, f2, f3 = _person_parts(np.array([x, y]), scale, 0.3, 0.0)
        if noise:
            b2 = b2 + rng.normal(0, noise, b2.shape)
        bodies.append((b2, b3, len(hands), len(hands) + 1, len(faces)))
        hands += [(h2[0], h3[0], False), (h2[1], h3[1], True)]
        faces.append((f2, f3))
    body = PartArrays("body", [score] * len(bodies), np.reshape([b[0] for b in bodies], (-1, 13, 2)),
                      np.reshape([b[1] for b in bodies], (-1, 13, 3)), left_hand=[b[2] for b in bodies],
                      right_hand=[b[3] for b in bodies], face=[b[4] for b in bodies])
    hand = PartArrays("hand", [0.8] * len(hands), np.reshape([h[0] for h in hands], (-1, 21, 2)),
                      np.reshape([h[1] for h in hands], (-1, 21, 3)), is_right=[h[2] for h in hands])
    face = PartArrays("face", [0.8] * len(faces), np.reshape([f[0] for f in faces], (-1, 84, 2)),
                      np.reshape([f[1] for f in faces], (-1, 84, 3)))
    return Result(height, width, body=body, hand=hand, face=face)


def ids_by_name(out, names):
    """{name: the set of track ids its bodies carried}, names[t] naming frame t's bodies in order."""
    ids = {}
    for r, who in zip(out, names):
        for name, tid in zip(who, r.body.track):
            ids.setdefault(name, set()).add(int(tid))
    return ids


def body_ids_by_x(result):
    """{rounded body centre x: track}"""
    return {round(float(p[:, 0].mean())): int(t) for p, t in zip(result.body.pose2d, result.body.track)}


def test_crossing_with_occlusion_keeps_both_ids():
    rng = np.random.default_rng(0)
    results, truth = [], []
    for t in range(90):
        a = (200 + 8 * t, 400, 250)     # walks right, in front
        b = (900 - 8 * t, 380, 200)     # walks left, behind: hidden while they overlap
        hidden = 38 <= t < 56           # 18 frames
        results.append(people_frame([a] if hidden else [a, b], noise=2.0, rng=rng))
        truth.append(["a"] if hidden else ["a", "b"])
    out = list(Tracker().run(results))
    ids = {"a": set(), "b": set()}
    for r, names in zip(out, truth):
        for name, tid in zip(names, r.body.track):  # bodies keep the order they were given in
            ids[name].add(int(tid))
    assert ids["a"] == {ids["a"].copy().pop()} and len(ids["b"]) == 1, ids
    assert ids["a"] != ids["b"] and NO_TRACK not in ids["a"] | ids["b"]


def test_ids_are_never_reused_and_false_positives_get_none():
    frames = [people_frame([(300 + 2 * t, 400, 250)]) for t in range(10)]
    fp = people_frame([(300 + 20, 400, 250), (1000, 300, 220)])  # frame 10: a stranger, this frame only
    frames.append(fp)
    frames += [people_frame([(300 + 2 * t, 400, 250)]) for t in range(11, 15)]
    frames += [people_frame([]) for _ in range(70)]  # everyone gone for longer than max_age and reid_age
    frames += [people_frame([(300, 400, 250)]) for _ in range(5)]  # the same place: a new person
    out = list(Tracker(max_age=30).run(frames))
    first = {int(t) for r in out[:15] for t in r.body.track[:1]}
    assert len(first) == 1
    assert out[10].body.track[1] == NO_TRACK  # the one-frame false positive: no id ...
    assert out[10].body.track[0] == out[9].body.track[0]  # ... and it stole none
    later = {int(t) for r in out[-5:] for t in r.body.track}
    assert len(later) == 1 and later.isdisjoint(first), (first, later)
    # The false positive's hands and face do not get an id either; nobody else's id was handed out.
    assert set(out[10].hand.track[2:]) == {NO_TRACK}


def test_first_frames_get_the_id_their_track_is_confirmed_with():
    out = list(Tracker(n_init=3).run([people_frame([(300 + 3 * t, 400, 250)]) for t in range(6)]))
    assert [int(r.body.track[0]) for r in out] == [0] * 6
    # Tracker.update alone is causal: the first frames come out before confirmation, without an id.
    tr = Tracker(n_init=3)
    live = [int(tr.update(people_frame([(300 + 3 * t, 400, 250)])).body.track[0]) for t in range(4)]
    assert live == [NO_TRACK, NO_TRACK, 0, 0]


def test_attached_parts_carry_the_body_id_and_lone_parts_their_own():
    frames = []
    for t in range(6):
        r = people_frame([(300 + 3 * t, 400, 250), (800 - 3 * t, 380, 230)])
        lone = PartArrays("hand", [0.7], r.hand.pose2d[:1] + (0, -300), r.hand.pose3d[:1], is_right=[True])
        hand = PartArrays("hand", np.r_[r.hand.scores, 0.7], np.concatenate([r.hand.pose2d, lone.pose2d]),
                          np.concatenate([r.hand.pose3d, lone.pose3d]), is_right=np.r_[r.hand.is_right, True])
        frames.append(r.replace(hand=hand))
    out = list(Tracker().run(frames))
    for r in out:
        for b, tid in enumerate(r.body.track):
            assert tid != NO_TRACK
            assert r.hand.track[r.body.left_hand[b]] == tid and r.hand.track[r.body.right_hand[b]] == tid
            assert r.face.track[r.body.face[b]] == tid
        lone_id = r.hand.track[-1]
        assert lone_id != NO_TRACK and lone_id not in set(r.body.track)
    assert len({int(r.hand.track[-1]) for r in out}) == 1
    js = out[-1].to_dict()
    assert js["body"][0]["track"] == js["hand"][js["body"][0]["left_hand"]]["track"]


def test_handedness_flip_is_corrected():
    frames = [people_frame([(300 + 3 * t, 400, 250)]) for t in range(12)]
    flipped = frames[8].hand.with_fields(is_right=~frames[8].hand.is_right)
    frames[8] = frames[8].replace(hand=flipped)
    out = list(Tracker().run(frames))
    assert [list(r.hand.is_right) for r in out] == [[False, True]] * 12


def test_track_stage_on_frames_and_a_scene_without_switches():
    scene = make_scene(3, 150, seed=3, width=1600)
    frames = [Frame(Item(t, "clip.mp4", t, t / 30), None, r) for t, r in enumerate(scene.results)]
    from benchmarks.tracking import identity_metrics
    out = [f.result for f in track(frames)]
    assert len(out) == len(frames) and all("track" in r.body.fields for r in out)
    m = identity_metrics(out, scene)
    assert m["id_switches"] == 0 and m["mota"] > 0.9, m


# ------------------------------------------------------------------------------------ command line


def dope(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved clip (JSON Lines as --json writes it) of a synthetic scene, and its truth."""
    from benchmarks.tracking import write_scene
    folder = tmp_path_factory.mktemp("scene")
    scene = make_scene(3, 60, seed=0, width=1600)
    raw, _ = write_scene(scene, str(folder))
    return folder, raw, scene


@pytest.mark.parametrize("mode", ["off", "online", "offline"])
def test_cli_replay_tracks_and_smooths(saved, mode):
    folder, raw, scene = saved
    out = folder / f"out_{mode}.jsonl"
    proc = dope("--from-json", raw, "--json", out, "--smooth", mode, "-q")
    assert proc.returncode == 0, proc.stderr
    before = [json.loads(line) for line in open(raw)]
    after = [json.loads(line) for line in open(out)]
    assert len(after) == len(before) and [a["frame"] for a in after] == [b["frame"] for b in before]
    for a, b in zip(after, before):
        assert len(a["body"]) == len(b["body"]) and all("track" in d for d in a["body"] + a["hand"] + a["face"])
        for d in a["body"]:
            for link in ("left_hand", "right_hand"):
                if d[link] is not None:
                    assert a["hand"][d[link]]["track"] == d["track"]
        same = all(x["pose2d"] == y["pose2d"] and x["pose3d"] == y["pose3d"] for x, y in zip(a["body"], b["body"]))
        if mode == "off":
            assert same  # the very numbers that were read, even past 1000 px
    if mode != "off":
        moved = [np.abs(np.asarray(x["pose2d"]) - np.asarray(y["pose2d"])).max()
                 for a, b in zip(after, before) for x, y in zip(a["body"], b["body"]) if x["track"] >= 0]
        assert max(moved) > 0.1


def test_cli_malformed_line_is_named_and_leaves_no_output(saved, tmp_path):
    _, raw, _ = saved
    lines = open(raw).read().splitlines()
    lines[7] = lines[7][:50]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    proc = dope("--from-json", bad, "--json", tmp_path / "out.jsonl", "--smooth", "offline", "-q")
    assert proc.returncode != 0
    assert "line 8" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == ["bad.jsonl"]


def test_cli_smoothing_needs_tracks(saved, tmp_path):
    _, raw, _ = saved
    proc = dope("--from-json", raw, "--json", tmp_path / "o.jsonl", "--no-track", "--smooth", "online", "-q")
    assert proc.returncode == 1 and "--no-track" in proc.stderr


# ------------------------------------------------------------------------------------ drawing and video


def test_drawings_label_tracks_in_stable_colours():
    from dope.drawing.draw2d import draw_result, track_color
    r = list(Tracker(n_init=1).run([people_frame([(300, 400, 250), (800, 380, 230)])]))[0]
    image = np.full((720, 1280, 3), 255, np.uint8)
    plain, labelled = draw_result(image, r, labels=False, channels="bgr"), draw_result(image, r, channels="bgr")
    assert (plain != labelled).any()
    assert track_color(3) == track_color(3) and track_color(3) != track_color(4)
    colour = np.array(track_color(int(r.body.track[0])), np.uint8)
    assert (labelled == colour).all(-1).sum() > 50  # the label's box, in the track's colour


def test_annotated_video_is_h264_and_plays(tmp_path):
    import av
    from dope.outputs.writers import VideoWriter, h264_available
    assert h264_available()  # `av` is in requirements.txt: its wheels bundle libx264
    with VideoWriter(tmp_path / "v.mp4", fps=25) as w:
        for i in range(5):
            w.write(np.full((61, 81, 3), 40 * i, np.uint8))  # odd sizes: padded by one pixel
    with av.open(str(tmp_path / "v.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (82, 62)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert [round(float(np.median(f)) / 40) for f in frames] == [0, 1, 2, 3, 4]


def test_a_duplicate_detection_carries_the_id_and_a_panned_away_person_keeps_theirs():
    frames = []
    for t in range(12):
        people = [(300 + 3 * t, 400, 250), (800, 380, 230)]
        r = people_frame(people)
        if t >= 6:  # from frame 6, the first person is detected twice, a few pixels apart
            twice = people_frame(people + [(300 + 3 * t + 4, 402, 250)])
            b = twice.body
            r = twice.replace(body=PartArrays("body", [0.9, 0.9, 0.6], b.pose2d, b.pose3d,
                                              **{k: b.fields[k] for k in ("left_hand", "right_hand", "face")}))
        frames.append(r)
    out = list(Tracker().run(frames))
    assert {int(r.body.track[0]) for r in out} == {0} and {int(r.body.track[1]) for r in out} == {1}
    assert all(int(r.body.track[2]) == 0 for r in out[6:])  # the same person: the same id
    # The camera pans: both people move left by 20 px a frame; the second one is hidden for 15
    # frames while the first is seen, then comes back where the pan took them.
    frames = [people_frame([(1000 - 20 * t, 400, 250)] + ([] if 10 <= t < 25 else [(1200 - 20 * t, 380, 240)]))
              for t in range(40)]
    out = list(Tracker(velocity_gain=0.05).run(frames))
    assert {int(r.body.track[-1]) for r in out[:10] + out[25:]} == {1}


def test_crowd_path_gives_the_same_ids_as_the_dense_one(monkeypatch):
    """The k-d tree gate and the assignment per group of candidate pairs (used on large cost
    matrices) give exactly the ids of the dense cost matrix and one assignment."""
    import dope.motion.tracking as tracking
    from benchmarks.scenes import make_family_scene
    from benchmarks.tracking import frames_of
    scene = make_family_scene("crowd", 3, 25, people=40)
    monkeypatch.setattr(tracking, "_DENSE_PAIRS", 10 ** 12)
    dense = [f.result.body.track for f in track(frames_of(scene))]
    monkeypatch.setattr(tracking, "_DENSE_PAIRS", 0)
    sparse = [f.result.body.track for f in track(frames_of(scene))]
    assert all((a == b).all() for a, b in zip(dense, sparse))
    assert sum(int((t != NO_TRACK).sum()) for t in sparse) > 25 * 20


def test_log_scale_is_pixels_per_metre_whatever_the_posture():
    from dope.motion.tracking import log_scale
    for yaw, phase in ((0.0, 0.0), (0.8, 1.5)):
        b2, b3, *_ = _person_parts(np.array([500.0, 400.0]), 200.0, yaw, phase)
        assert np.isclose(log_scale(b2[None], b3[None])[0], np.log(200.0))
    assert np.isnan(log_scale(np.zeros((1, 13, 2)), np.zeros((1, 13, 3)))[0])


def test_a_person_who_turns_while_hidden_is_reidentified():
    """Walking right at 8 px per frame, hidden 25 frames during which they turn back: the
    constant-velocity prediction is far off, their depth proxy and 3D pose are not."""
    rng = np.random.default_rng(2)
    x, results, seen = 400.0, [], []
    other = lambda t: (1100 - 3 * t, 380, 170)  # someone else, farther away, elsewhere
    for t in range(70):
        x += 8 if t < 30 else -8
        hidden = 30 <= t < 55
        results.append(people_frame([other(t)] if hidden else [other(t), (x, 420, 250)], noise=2.0, rng=rng))
        seen.append(not hidden)
    ids = lambda tracker: {int(r.body.track[1]) for r, s in zip(tracker.run(results), seen) if s}
    assert len(ids(Tracker())) == 1, ids(Tracker())
    assert len(ids(Tracker(reidentify=False))) == 2  # a new id where they reappear


def test_a_missed_person_does_not_take_a_neighbours_second_detection():
    """A walks past B (a step apart, at one depth); in one frame A is missed and B is detected
    twice. B's second detection must not go to A's track to keep the matching maximal: it carries
    B's id, and both keep theirs once A is seen again."""
    rng = np.random.default_rng(3)
    results, names = [], []
    for t in range(40):
        a, b = (400 + 6 * t, 400, 220), (430 + 6 * t, 400, 220)
        if t == 20:
            frame = people_frame([b, (b[0] - 12, b[1] + 2, b[2])], noise=1.0, rng=rng)  # B twice, once nearer A
            names.append(["b", "b"])
        else:
            frame = people_frame([a, b], noise=1.0, rng=rng)
            names.append(["a", "b"])
        results.append(frame)
    out = list(Tracker().run(results))
    ids = ids_by_name(out, names)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"], ids
    twice = out[20].body.track
    assert twice[0] == twice[1] == next(iter(ids["b"]))


def test_joint_reductions_agree_with_numpy_s_own():
    """The tracker's reductions over joints (written for speed) give numpy's plain ones, NaN included."""
    from dope.motion.tracking import _joint_distance, _joint_extent, _joint_sum, _size, log_scale, log_spread
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 50, (7, 21, 2)), rng.normal(0, 50, (7, 21, 2))
    a[3, 5, 1] = np.nan
    np.testing.assert_allclose(_joint_sum(a), a.sum(1), rtol=1e-12)
    assert np.isnan(_joint_sum(a)[3, 1]) and not np.isnan(_joint_sum(a)[2]).any()
    lo, hi = _joint_extent(a)
    np.testing.assert_array_equal(lo, a.min(1))
    np.testing.assert_array_equal(hi, a.max(1))
    np.testing.assert_allclose(_joint_distance(a, b), np.linalg.norm(a - b, axis=-1).mean(-1), rtol=1e-12)
    span = b.max(1) - b.min(1)
    np.testing.assert_allclose(_size(b), np.maximum(np.linalg.norm(span, axis=-1), 1.0), rtol=1e-12)
    d = b - b.mean(1, keepdims=True)
    np.testing.assert_allclose(log_spread(b), 0.5 * np.log(np.maximum((d ** 2).sum((1, 2)) / 21, 1.0)), rtol=1e-12)
    b3 = rng.normal(0, 0.3, (7, 21, 3))
    d3 = b3[..., :2] - b3[..., :2].mean(1, keepdims=True)
    expected = 0.5 * np.log((d ** 2).sum((1, 2)) / (d3 ** 2).sum((1, 2)))
    np.testing.assert_allclose(log_scale(b, b3), expected, rtol=1e-10)


def test_a_bad_detection_of_a_person_in_view_is_not_a_lost_track_s():
    """L walks and is then missed for 20 frames; B stays in view. In one frame B's detection is
    shifted beyond B's gate, towards where L could have walked: it must not carry L's id (B's
    track, seen a frame ago and unmatched now, is its likelier owner)."""
    rng = np.random.default_rng(5)
    results, who = [], []
    for t in range(45):
        lost_x, b_x = 286 + 6 * t, 700 + 2 * t
        people, names = [], []
        if t < 20:
            people.append((lost_x, 400, 220))
            names.append("L")
        people.append((b_x - 70 if t == 40 else b_x, 400, 220))  # frame 40: B's detection 70 px off
        names.append("B")
        results.append(people_frame(people, noise=1.0, rng=rng))
        who.append(names)
    out = list(Tracker().run(results))
    first = {name: int(tid) for name, tid in zip(who[10], out[10].body.track)}
    assert first["L"] != first["B"] and first["L"] != NO_TRACK
    assert int(out[40].body.track[0]) != first["L"], "B's bad detection was given to L's lost track"
    assert int(out[44].body.track[0]) == first["B"]


def test_a_spinning_dancer_missed_for_two_frames_keeps_their_id():
    """A dancer turns 60 degrees a frame (3D posture: about 16 cm a frame) beside a man standing
    still, and is missed for a frame or two now and then: the 3D check of a returning track allows
    for the posture's own rate of change (`posture_rate`), so the dancer's detections all carry one
    id; with a fixed 3D sigma, a detection after a miss starts a new track (no id until re-identified)."""
    rng = np.random.default_rng(7)
    results, seen = [], []
    for t in range(60):
        missed = t in (20, 21, 35, 50)
        people = [(700, 400, 230)] if missed else [(400 + 2 * t, 400, 220), (700, 400, 230)]
        frame = people_frame(people, noise=1.0, rng=rng)
        if not missed:  # the dancer's 3D pose turned about the vertical axis
            c, s = np.cos(np.radians(60) * t), np.sin(np.radians(60) * t)
            pose3d = frame.body.pose3d.copy()
            pose3d[0] = pose3d[0] @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
            frame = frame.replace(body=PartArrays("body", **{**frame.body.fields, "pose3d": pose3d}))
        results.append(frame)
        seen.append(not missed)
    dancer = lambda tracker: [int(r.body.track[0]) for t, (r, s) in enumerate(zip(tracker.run(results), seen)) if s and t >= 5]
    ids = dancer(Tracker())
    assert len(set(ids)) == 1 and ids[0] != NO_TRACK, ids
    fixed = dancer(Tracker(posture_rate=0.0))
    assert len(set(fixed)) > 1, fixed


def test_a_track_s_state_does_not_depend_on_others_coming_and_going():
    """Tracks' state lives in shared arrays whose rows are reused when a track ends: a person walking
    alone and the same person among people who appear and vanish far away (their rows freed and
    taken again, the walker's own among them) keep one id and the same state, frame after frame."""
    rng = np.random.default_rng(3)
    walker = [(200 + 6 * t + rng.normal(0, 1.5), 400 + rng.normal(0, 1.5), 250) for t in range(60)]
    alone, crowd = Tracker(), Tracker()
    seen, ids_alone, ids_crowd = set(), set(), set()
    for t in range(70):
        # others: a few people on the right, at new places every other frame (tentative tracks that
        # end), then one who stays (a confirmed track)
        if t % 2 == 0:
            others = [(700 + rng.uniform(0, 500), 250 + rng.uniform(0, 200), 200) for _ in range(rng.integers(1, 5))]
        else:  # seen twice, moving: tentative tracks with a speed, which end in the next frame
            others = [(x + 15, y + 5, s) for x, y, s in others]
        if 30 <= t < 40:
            others = [(1000, 300, 200)]
        a = [walker[t - 10]] if t >= 10 else []
        ra, rc = alone.update(people_frame(a)), crowd.update(people_frame(a + others))
        seen |= set(crowd.keys["body"].tolist())
        if not a:
            continue
        ids_alone.add(int(ra.body.track[0]))
        ids_crowd.add(int(rc.body.track[0]))
        ta = alone._parts["body"].confirmed + alone._parts["body"].tentative
        tc = [x for x in crowd._parts["body"].confirmed + crowd._parts["body"].tentative
              if abs(x.centre[0] - ta[0].centre[0]) < 1e-9]
        assert len(ta) == 1 and len(tc) == 1
        for name in ("pose", "centre", "velocity", "swing", "pose3d", "last", "size", "spread", "hits", "scale", "rate3d"):
            np.testing.assert_array_equal(getattr(tc[0], name), getattr(ta[0], name), err_msg=name)
        np.testing.assert_array_equal(tc[0].predicted(t + 1), ta[0].predicted(t + 1))
    assert len(ids_alone - {NO_TRACK}) == len(ids_crowd - {NO_TRACK}) == 1
    assert len(crowd._parts["body"].rows.used) < len(seen) / 2  # rows were reused, not one per track


def test_without_the_3d_pose_a_lost_person_is_reidentified_by_depth_and_reach_alone():
    """`pose3d_sigma=0` (the 3D pose not used): a person who turned back while hidden, far from where
    their track expected them, is still re-identified, on the depth proxy and where they could have
    walked, without dividing by a zero sigma."""
    import warnings
    rng = np.random.default_rng(2)
    seen = [t for t in range(60) if t < 20 or t >= 32]
    ids = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker = Tracker(pose3d_sigma=0)
        for t in range(60):
            x = 300 + 5 * t if t < 20 else 395 - 5 * (t - 19)  # turns back while hidden (frames 20-31)
            person = (x + rng.normal(0, 1.0), 420 + rng.normal(0, 1.0), 200)
            ids |= set(tracker.update(people_frame([person] if t in seen else [])).body.track.tolist())
    assert len(ids - {NO_TRACK}) == 1, ids


def mirrored(frame, index):
    """frame with body `index` reported mirrored: its left and right joints exchanged, 2D and 3D,
    and with them its hands' links (a hand is attached to the body by the wrist nearest it)."""
    from dope.motion.tracking import _MIRROR
    fields = dict(frame.body.fields)
    for name in ("pose2d", "pose3d"):
        a = fields[name].copy()
        a[index] = a[index][_MIRROR]
        fields[name] = a
    left, right = fields["left_hand"].copy(), fields["right_hand"].copy()
    left[index], right[index] = right[index], left[index]
    fields.update(left_hand=left, right_hand=right)
    return frame.replace(body=PartArrays("body", **fields))


def test_a_person_reported_mirrored_for_a_few_frames_keeps_their_id_and_their_left_and_right():
    """A detector often reports a person seen from behind with left and right exchanged. For five
    frames the walker's detections are mirrored: they still fit the track (at `swap_cost`), so the
    walker keeps one id throughout, and those detections come back in the track's left and right
    (joints 2D and 3D, and the hands' links); compared as detected only, the mirrored detections
    are too far from the track and start another."""
    rng = np.random.default_rng(11)
    results, truth = [], []
    for t in range(45):
        frame = people_frame([(300 + 5 * t, 400, 250), (1000, 380, 240)], noise=1.0, rng=rng)
        truth.append(frame)
        results.append(mirrored(frame, 0) if 20 <= t < 25 else frame)
    out = list(Tracker().run(results))
    ids = [int(r.body.track[0]) for r in out][5:]
    assert len(set(ids)) == 1 and ids[0] != NO_TRACK, ids
    for r, right in zip(out, truth):
        assert np.array_equal(r.body.pose2d, right.body.pose2d) and np.array_equal(r.body.pose3d, right.body.pose3d)
        assert np.array_equal(r.body.left_hand, right.body.left_hand)
    plain = [int(r.body.track[0]) for r in Tracker(swap_cost=float("inf")).run(results)][5:]
    assert len(set(plain)) > 1, plain


def test_a_track_born_mirrored_takes_the_detector_s_left_and_right():
    """The walker's first twelve detections are mirrored, the rest not: the track first holds the
    mirrored left and right, so the correct detections that follow fit it mirrored and come back
    mirrored; at the `mirror_rebase`-th of them in a row (10), the track takes the detector's left
    and right, and the detections come back as they were."""
    rng = np.random.default_rng(12)
    results = []
    for t in range(40):
        frame = people_frame([(300 + 5 * t, 400, 250)], noise=1.0, rng=rng)
        results.append(mirrored(frame, 0) if t < 12 else frame)
    out = list(Tracker(mirror_rebase=10).run(results))
    changed = [not np.array_equal(r.body.pose2d, x.body.pose2d) for r, x in zip(out, results)]
    assert not any(changed[:12]) and all(changed[12:21]) and not any(changed[21:]), changed
    assert len({int(r.body.track[0]) for r in out}) == 1


def test_two_people_side_by_side_are_not_taken_for_one_detected_twice():
    """A catches up with B and walks beside them, closer than `duplicate` and in one posture: their
    detections look like a detector's two proposals for one person. A is missed for three frames;
    when A is seen again, A's track fits A's detection best and B's track B's: A's detection is not
    a second one of B, and A keeps their id."""
    rng = np.random.default_rng(5)
    results, names = [], []
    for t in range(40):
        a, b = (400 + 4 * t - max(60 - 6 * t, 0), 400, 240), (408 + 4 * t, 388, 240)
        missed = 15 <= t < 18
        results.append(people_frame([b] if missed else [a, b], noise=0.5, rng=rng))
        names.append(["b"] if missed else ["a", "b"])
    out = list(Tracker().run(results))
    ids = ids_by_name(out, names)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"], ids


def test_a_lost_person_walking_away_cannot_take_the_id_of_one_who_sped_up_behind():
    """A and B, one size, posture and depth, walk right at 10 px a frame, B 400 px ahead. B is lost
    for good after frame 21; A speeds up while hidden (frames 20-35) and reappears beyond their
    track's gate. Both lost tracks could have walked there, but B only by turning back at once: A's
    is the one in reach at the speed it kept, and A keeps their id."""
    results, names, a, v = [], [], 300.0, 10.0
    for t in range(45):
        if t >= 20:
            v = min(v + 0.75, 22.0)
        a += v
        people, who = [], []
        if not 20 <= t < 36:
            people.append((a, 420, 120)), who.append("A")
        if t < 22:
            people.append((700 + 10 * t, 420, 120)), who.append("B")
        results.append(people_frame(people))
        names.append(who)
    for tracker, count in ((Tracker(), 1), (Tracker(reidentify=False), 2)):
        ids = ids_by_name(list(tracker.run(results)), names)
        assert len(ids["A"] - {NO_TRACK}) == count and not ids["A"] & ids["B"], ids


def test_of_two_lost_tracks_the_one_far_more_likely_to_have_come_back_takes_the_detection():
    """B runs right at 20 px a frame and is lost for good after frame 9; A, standing 400 px
    further on, is hidden for 14 frames (40-53) and reappears 100 px away, beyond their track's
    gate. Both lost tracks could have reached A's detection, in the same posture and at the same
    depth; but B, lost for 44 frames at speed, could be anywhere in a disc about 8 times as wide
    as the one A could have walked in: A's track is more than e^4 times as likely (`reid_odds`),
    and A keeps their id. Refusing
    every detection that two lost tracks fit (`reid_odds=0`) gave A a new one."""
    results, names = [], []
    for t in range(70):
        people, who = [], []
        if t < 10:
            people.append((60 + 20.0 * t, 420, 120)), who.append("B")
        if not 40 <= t < 54:
            people.append((800.0 if t < 40 else 900.0 + 2.0 * (t - 54), 420, 120)), who.append("A")
        results.append(people_frame(people))
        names.append(who)
    for tracker, count in ((Tracker(), 1), (Tracker(reid_odds=0), 2)):
        ids = ids_by_name(list(tracker.run(results)), names)
        assert len(ids["A"] - {NO_TRACK}) == count and not ids["A"] & ids["B"], ids


def test_a_runner_who_sped_up_just_before_being_missed_is_reidentified():
    """Walking at 4 px a frame, then sprinting up to 24 within 5 frames, then missed for 5: the
    filtered speed (13 px a frame) puts the reach of re-identification short of where they
    reappear; the last steps (20 px a frame) do not."""
    rng = np.random.default_rng(0)
    speeds = [4.0] * 15 + [8.0, 12.0, 16.0, 20.0] + [24.0] * 21
    x, results, names = 200.0, [], []
    for t, v in enumerate(speeds):
        x += v
        seen = not 20 <= t < 25
        results.append(people_frame([(x, 420, 120)] if seen else [], noise=1.0, rng=rng))
        names.append(["A"] if seen else [])
    assert ids_by_name(list(Tracker().run(results)), names) == {"A": {0}}


def test_a_person_coming_out_from_behind_with_the_better_score_keeps_their_id():
    """B, at A's depth and size, catches up with A and walks behind them (hidden), then comes out
    16 px to their right, in the frame where A's detection scores 0.4 and B's 0.8. High scores are
    matched first (ByteTrack), and B's detection fits A's track better than B's hidden one; but A's
    own detection fits A's track better still, and B's fits B's: the ids stay."""
    from dope.results import PartArrays
    results, names, out = [], [], None
    for t in range(70):
        a, b = 500 + 4 * t, 300 + 8 * t
        hidden = -60 < b - a < 16
        r = people_frame([(a, 420, 200)] + ([] if hidden else [(b, 420, 200)]))
        if not hidden and b > a and out is None:
            out = t
            r = r.replace(body=PartArrays("body", **{**r.body.fields, "scores": np.array([0.4, 0.8])}))
        results.append(r)
        names.append(["A"] + ([] if hidden else ["B"]))
    assert out is not None
    assert ids_by_name(list(Tracker().run(results)), names) == {"A": {0}, "B": {1}}
    assert ids_by_name(list(Tracker(yield_gate=0).run(results)), names) != {"A": {0}, "B": {1}}  # ByteTrack alone


def test_a_person_hidden_by_someone_who_just_came_into_view_keeps_their_id():
    """A walks right; B, nearer (a sixth larger, lower in the image) comes into view walking left
    and, two frames later, hides A for 6 frames. B's detection fits A's track only beyond
    `joint_gate` (size, depth, place together), B's own new track well: A's track must not take
    it in the round after the high scores' (it would, being the only confirmed track near, and B's
    track would end), so that A finds their id again and B keeps their own."""
    rng = np.random.default_rng(0)
    results, names = [], []
    for t in range(40):
        a, b = 300 + 8 * t, 480 - 8 * t  # they meet at t = 11
        people, who = [], []
        if not 11 <= t < 17:
            people.append((a, 415, 200))
            who.append("A")
        if t >= 9:
            people.append((b, 453, 232))
            who.append("B")
        results.append(people_frame(people, noise=1.0, rng=rng))
        names.append(who)
    assert ids_by_name(list(Tracker().run(results)), names) == {"A": {0}, "B": {1}}


def test_a_detection_with_one_joint_far_off_keeps_its_person_s_id():
    # A detector's bad joint (an ankle a body's height away) moves a pose's mean, spread and box as
    # far as a step to someone else would: the pair is measured with that joint at its predicted
    # place, at `glitch_cost`. Frames 25-26 (two in a row) and 30, with someone lost nearby.
    def ids(**params):
        rng = np.random.default_rng(1)
        frames = []
        for t in range(40):
            people = [(300 + 6 * t, 400, 250)] + ([(520 + 6 * t, 420, 240)] if t < 15 else [])
            r = people_frame(people, noise=1.5, rng=rng)
            if t in (25, 26, 30):
                r.body.pose2d[0, 1, 1] += 300.0 if t != 30 else -300.0
            frames.append(r)
        return [int(r.body.track[0]) for r in Tracker(**params).run(frames)]

    kept, without = ids(), ids(glitch=0)
    assert set(kept) == {kept[0]} and kept[0] != NO_TRACK
    assert without[25] != without[0]  # (without it those detections lose the id)


def test_a_person_running_in_from_their_first_frame_gets_a_track():
    # 0.18 of their size a frame from the start: before its second match a track's speed is unknown
    # (`speed0`), beyond the fixed gate that a tentative track needs three frames in a row to pass.
    def ids(**params):
        rng = np.random.default_rng(2)
        frames, x, v = [], 100.0, 30.0
        for t in range(40):
            frames.append(people_frame([(x, 400, 90), (2300 - 4 * t, 380, 90)], noise=1.0, rng=rng, width=2400))
            v += 3.0 if 10 <= t < 20 else 0.0  # and speeds up to 60 px a frame
            x += v
        return [int(r.body.track[0]) for r in Tracker(**params).run(frames)]

    kept = ids()
    assert len(set(kept)) == 1 and NO_TRACK not in kept
    assert set(ids(speed0=0)) == {NO_TRACK}


@pytest.mark.parametrize("seed", [3, 5])
def test_a_person_moving_erratically_keeps_one_track(seed):
    # A dodging player, a shaking camera: each track's sigmas follow its own errors one frame on
    # (`own_sigma`), not the fixed ones that suit a walker.
    def ids(**params):
        rng = np.random.default_rng(seed)
        frames, x, y, v = [], 600.0, 400.0, np.zeros(2)
        for _ in range(60):
            frames.append(people_frame([(x, y, 90), (1800, 380, 90)], noise=1.0, rng=rng, width=2400, height=1200))
            v = 0.7 * v + rng.normal(0, 10, 2)
            x, y = x + v[0], y + 0.3 * v[1]
        return [int(r.body.track[0]) for r in Tracker(**params).run(frames)]

    kept = ids()
    assert len(set(kept)) == 1 and NO_TRACK not in kept
    assert len(set(ids(own_sigma=0))) > 1


def test_row_median_is_numpys():
    """The glitch check's row median (one partition, not np.median) gives np.median's numbers,
    odd and even rows (bodies 13 joints, hands 21, faces 84)."""
    from dope.motion.tracking import _median
    rng = np.random.default_rng(0)
    for joints in (13, 21, 84, 2):
        a = rng.random((50, joints)) * 100
        a[:5, :3] = 7.0  # ties
        assert np.array_equal(_median(a), np.median(a, 1))
