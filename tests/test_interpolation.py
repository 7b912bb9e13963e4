"""Filling the frames left out (--every, --fps): interpolation per track on synthetic tracks, links
and fields of the frames made, the stage's order and pixels, and the CLI on a tiny video."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from dope.inputs.sources import Item
from dope.motion.interpolation import INTERPOLATED, fill_skipped, interpolate_between
from dope.motion.tracking import track
from dope.results import NO_LINK, PartArrays, Result
from dope.stream import Frame


def person_result(people, t):
    """Bodies (track ids given) whose joints move along x = x0 + v t + a t^2, each with a left hand
    attached (right wrist empty) and a lone hand of track 99 at the end."""
    bodies, hands = [], []
    for track_id, x0, v, a in people:
        x = x0 + v * t + a * t * t
        b2 = np.stack([x + np.arange(13) * 5.0, 300 + np.arange(13) * 20.0], 1)
        bodies.append((track_id, b2, len(hands)))
        hands.append((track_id, b2[:1] + np.arange(21)[:, None] * 2.0, False))
    hands.append((99, 50.0 + t + np.arange(42.0).reshape(21, 2) * 3, True))
    body = PartArrays("body", [0.9] * len(bodies), np.stack([b[1] for b in bodies]),
                      np.zeros((len(bodies), 13, 3)) + t / 100, left_hand=[b[2] for b in bodies],
                      right_hand=[NO_LINK] * len(bodies), face=[NO_LINK] * len(bodies),
                      track=np.array([b[0] for b in bodies], np.int64))
    hand = PartArrays("hand", [0.8] * len(hands), np.stack([h[1] for h in hands]), np.zeros((len(hands), 21, 3)),
                      is_right=[h[2] for h in hands], track=np.array([h[0] for h in hands], np.int64))
    return Result(720, 1280, body=body, hand=hand)


def frames_at(numbers, people, fps=30.0, pixels=False):
    return [Frame(Item(n, "clip.mp4", n, n / fps), np.full((4, 4, 3), n, np.uint8) if pixels else None,
                  person_result(people, n)) for n in numbers]


def test_linear_interpolation_is_exact_on_straight_lines_and_marks_the_frames():
    people = [(0, 100.0, 4.0, 0.0), (1, 700.0, -3.0, 0.0)]
    out = list(fill_skipped(frames_at([0, 4, 8, 9], people)))
    assert [f.item.frame for f in out] == list(range(10))
    assert [f.item.time_s for f in out] == pytest.approx([n / 30 for n in range(10)])
    for f in out:
        n = f.item.frame
        want = person_result(people, n)
        assert bool(f.result.meta.get(INTERPOLATED)) == (n not in (0, 4, 8, 9))
        np.testing.assert_allclose(f.result.body.pose2d, want.body.pose2d, atol=1e-3)
        np.testing.assert_allclose(f.result.body.pose3d, want.body.pose3d, atol=1e-5)
        np.testing.assert_allclose(f.result.hand.pose2d, want.hand.pose2d, atol=1e-3)
        assert list(f.result.body.track) == [0, 1] and list(f.result.hand.track) == [0, 1, 99]
        # links point at the hands made in the same frame: each body's own
        for b, tid in enumerate(f.result.body.track):
            assert f.result.hand.track[f.result.body.left_hand[b]] == tid
        assert list(f.result.body.right_hand) == [NO_LINK, NO_LINK]
        assert list(f.result.hand.is_right) == [False, False, True]


def test_cubic_follows_a_curve_better_than_straight_lines():
    people = [(0, 100.0, 2.0, 0.5)]  # accelerating
    kept = frames_at(range(0, 25, 4), people)
    truth = {n: person_result(people, n).body.pose2d for n in range(25)}
    err = {}
    for method in ("linear", "cubic"):
        out = [f for f in fill_skipped(kept, method) if f.result.meta.get(INTERPOLATED)]
        err[method] = np.mean([np.abs(f.result.body.pose2d - truth[f.item.frame]).mean() for f in out])
    assert err["cubic"] < 0.25 * err["linear"], err


def test_a_person_seen_on_one_side_only_is_not_made_up():
    a = frames_at([0], [(0, 100.0, 4.0, 0.0), (1, 700.0, -3.0, 0.0)])
    b = frames_at([3], [(0, 100.0, 4.0, 0.0), (2, 400.0, 1.0, 0.0)])  # 1 left, 2 came
    out = list(fill_skipped(a + b))
    assert [f.item.frame for f in out] == [0, 1, 2, 3]
    for f in out[1:3]:
        assert list(f.result.body.track) == [0] and list(f.result.hand.track) == [0, 99]
        assert f.result.body.left_hand[0] == 0
    # untracked detections are not interpolated either
    r = person_result([(0, 100.0, 4.0, 0.0)], 0)
    r = r.replace(body=r.body.with_fields(track=np.array([-1])))
    made = interpolate_between(None, (0, r), (2, r), None, [1])
    assert len(made[0].body) == 0 and list(made[0].hand.track) == [0, 99]


def test_frames_without_gaps_pass_unchanged_and_pixels_come_from_images():
    kept = frames_at([0, 1, 2], [(0, 100.0, 4.0, 0.0)])
    assert [f.result for f in fill_skipped(kept)] == [f.result for f in kept]
    every = [(Item(n, "clip.mp4", n, n / 30), np.full((4, 4, 3), 100 + n, np.uint8)) for n in range(7)]
    out = list(fill_skipped(frames_at([0, 3, 6], [(0, 100.0, 4.0, 0.0)], pixels=True), images=iter(every)))
    assert [int(f.image[0, 0, 0]) for f in out] == [0, 101, 102, 3, 104, 105, 6]  # kept frames keep theirs
    assert list(fill_skipped(kept[:1])) == kept[:1]
    assert list(fill_skipped([])) == []


def test_after_tracking_on_frame_numbers():
    """The tracker reads the items' frame numbers: a stream of every 4th frame keeps one id."""
    raw = []
    for f in frames_at(range(0, 40, 4), [(0, 100.0, 6.0, 0.0), (1, 900.0, -6.0, 0.0)]):
        r = f.result
        body = PartArrays("body", r.body.scores, r.body.pose2d, r.body.pose3d,
                          **{k: r.body.fields[k] for k in ("left_hand", "right_hand", "face")})
        hand = PartArrays("hand", r.hand.scores, r.hand.pose2d, r.hand.pose3d, is_right=r.hand.is_right)
        raw.append(f._replace(result=r.replace(body=body, hand=hand)))
    out = list(fill_skipped(track(raw)))
    assert [f.item.frame for f in out] == list(range(37))
    assert {tuple(f.result.body.track) for f in out} == {(0, 1)}
    assert all(len(f.result.hand) == 3 for f in out)  # the attached hands and the lone one, filled too


def dope(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def ten_frame_video(path, width: int, height: int):
    """A 10-frame video at 10 fps whose frame k is a flat grey of level 20 k."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))
    for k in range(10):
        out.write(np.full((height, width, 3), 20 * k, np.uint8))
    out.release()
    return path


def test_cli_fill_skipped_on_a_replay_with_its_tiny_video(tmp_path):
    video = ten_frame_video(tmp_path / "clip.mp4", 160, 120)
    raw = tmp_path / "raw.jsonl"
    with open(raw, "w") as f:  # what --every 3 gives: frames 0, 3, 6, 9, one person moving right
        for n in (0, 3, 6, 9):
            d = person_result([(0, 20.0, 2.0, 0.0)], n).to_dict()
            del d["image"]
            d["width"], d["height"] = 160, 120  # the video's size: other pixels would be refused
            for part in ("body", "hand"):
                for det in d[part]:
                    del det["track"]
            f.write(json.dumps({"video": str(video), "frame": n, "time_s": n / 10, **d, "model": "handmade"}) + "\n")
    res = tmp_path / "filled.jsonl"
    r = dope("--from-json", raw, "--video", video, "--fill-skipped", "--smooth", "off", "--json", res,
             "--output-dir", tmp_path / "drawn", "-q")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in res.read_text().splitlines()]
    assert [(x["frame"], x["time_s"], bool(x.get("interpolated"))) for x in records] == [
        (n, pytest.approx(n / 10), n % 3 != 0) for n in range(10)]
    for x in records:
        assert [b["track"] for b in x["body"]] == [0]
        want = person_result([(0, 20.0, 2.0, 0.0)], x["frame"]).body.pose2d[0]
        np.testing.assert_allclose(x["body"][0]["pose2d"], want, atol=0.01)
    drawn = [p for p in os.listdir(tmp_path / "drawn") if p.endswith(".mp4")]
    cap = cv2.VideoCapture(str(tmp_path / "drawn" / drawn[0]))
    levels = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        levels.append(round(float(np.median(frame)) / 20))
    cap.release()
    assert levels == list(range(10))  # every frame drawn on its own pixels, none repeated
    # without tracks there is nothing to interpolate
    r = dope("--from-json", raw, "--fill-skipped", "--no-track", "--json", tmp_path / "x.jsonl", "-q")
    assert r.returncode != 0 and "--no-track" in r.stderr and "Traceback" not in r.stderr


def test_cli_every_3_with_fill_skipped_runs_the_network_on_the_frames_kept_only(checkpoint_path, tmp_path):
    video = ten_frame_video(tmp_path / "clip.mp4", 96, 64)
    res = tmp_path / "clip.jsonl"
    r = dope("--model", checkpoint_path, "--video", video, "--every", "3", "--fill-skipped", "--json", res,
             "--no-overlay", "--max-proposals", "30", "-q")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in res.read_text().splitlines()]
    assert [(x["frame"], bool(x.get("interpolated"))) for x in records] == [(n, n % 3 != 0) for n in range(10)]
    assert [x["time_s"] for x in records] == pytest.approx([n / 10 for n in range(10)])
