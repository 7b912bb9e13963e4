"""--from-json: saved detections replayed through the later stages, without the network."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from handmade import background, scene_result
from dope.inputs.replay import ReplayError, replay
from dope.inputs.sources import Item
from dope.outputs.frames import JsonFrames
from dope.pipeline import replay_frames
from dope.stream import Frame


def dope(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def saved_clip(path, frames=5, extra=True):
    """A JSON Lines file as `--json` writes it for a video: hand-made people moving right."""
    writer = JsonFrames(str(path), model="handmade", postprocess="ppi")
    base = scene_result()
    for f in range(frames):
        r = base.replace(body=base.body.with_fields(), hand=base.hand, face=base.face)
        moved = r.replace(body=type(r.body)("body", r.body.scores, r.body.pose2d + (3 * f, 0), r.body.pose3d,
                                            **{k: r.body.fields[k] for k in ("left_hand", "right_hand", "face")}))
        if extra:
            moved.meta["note"] = f"frame {f}"
        writer.write(Frame(Item(f, "clip.mp4", f, f / 25), None, moved))
    writer.close()
    return [json.loads(line) for line in open(path)]


def test_replay_reads_back_what_was_written(tmp_path):
    records = saved_clip(tmp_path / "raw.jsonl")
    got = list(replay(str(tmp_path / "raw.jsonl")))
    assert [item.frame for item, _ in got] == list(range(5))
    assert [item.time_s for item, _ in got] == pytest.approx([f / 25 for f in range(5)])
    for (item, result), rec in zip(got, records):
        assert item.name == "clip.mp4"
        assert result.meta["note"] == rec["note"] and result.meta["model"] == "handmade"
        np.testing.assert_allclose(result.body.pose2d, np.asarray([b["pose2d"] for b in rec["body"]]), atol=1e-4)
        assert list(result.body.left_hand) == [-1 if b["left_hand"] is None else b["left_hand"] for b in rec["body"]]
        assert list(result.hand.is_right) == [h["is_right"] for h in rec["hand"]]


def test_cli_replay_without_stages_writes_the_same_records(tmp_path):
    records = saved_clip(tmp_path / "raw.jsonl")
    proc = dope("--from-json", tmp_path / "raw.jsonl", "--json", tmp_path / "out.jsonl", "--no-track", "-q")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert out == records  # unknown fields ("note") and the model name kept, everything in the same order


def test_unknown_per_detection_fields_are_kept(tmp_path):
    path = tmp_path / "raw.jsonl"
    rec = saved_clip(path, frames=1)[0]
    rec["body"][0]["custom"] = [1, 2]
    path.write_text(json.dumps(rec) + "\n")
    (_, result), = replay(str(path))
    assert list(result.body.custom[0]) == [1, 2] and result.body.custom[1] is None
    assert result.to_dict()["body"][0]["custom"] == [1, 2]


@pytest.mark.parametrize("bad,why", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"height": 10}', "missing field 'width'"),
    ('{"height": 10, "width": 10, "body": [{"score": 1, "pose2d": [[0, 0]], "pose3d": [[0, 0, 0]]}]}', "shape"),
    ('{"height": 10, "width": 10, "body": [], "hand": "x"}', "must be a list"),
])
def test_malformed_line_is_named_and_leaves_no_output(tmp_path, bad, why):
    path = tmp_path / "raw.jsonl"
    saved_clip(path, frames=3)
    lines = open(path).read().splitlines()
    lines.insert(2, bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match=rf"line 3: .*{why}"):
        list(replay(str(path)))
    out = tmp_path / "out.jsonl"
    proc = dope("--from-json", path, "--json", out, "-q")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "line 3" in proc.stderr, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["raw.jsonl"]  # nothing left behind, not even a partial file


def test_missing_file_and_output_over_the_input(tmp_path):
    proc = dope("--from-json", tmp_path / "nope.jsonl", "--json", tmp_path / "out.jsonl", "-q")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    saved_clip(tmp_path / "raw.jsonl", frames=1)
    proc = dope("--from-json", tmp_path / "raw.jsonl", "--json", tmp_path / "raw.jsonl", "-q")
    assert proc.returncode == 1 and "overwrite an input" in proc.stderr


def test_replay_with_images_draws_them(tmp_path):
    import cv2
    image = tmp_path / "room.png"
    cv2.imwrite(str(image), background()[:, :, ::-1])
    rec = scene_result().to_dict()
    rec["image"] = "elsewhere/room.png"  # matched by file name when the path differs
    (tmp_path / "raw.jsonl").write_text(json.dumps(rec) + "\n")
    proc = dope("--from-json", tmp_path / "raw.jsonl", "--image", image, "-q")
    assert proc.returncode == 0, proc.stderr
    drawing = cv2.imread(str(tmp_path / "room.png_replay.jpg"))
    assert drawing is not None and (np.abs(drawing.astype(int) - background()[:, :, ::-1]).sum(-1) > 100).sum() > 500


def test_replay_frames_match_video_frames_by_number():
    frames = [(Item(i, "v.mp4", i, i / 10), np.full((2, 2, 3), i, np.uint8)) for i in range(6)]


    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "r.jsonl")
        with open(path, "w") as f:
            for i in (1, 3, 4):
                rec = scene_result().to_dict()
                del rec["image"]
                f.write(json.dumps({"video": "v.mp4", "frame": i, "time_s": i / 10, **rec}) + "\n")
        got = list(replay_frames(path, frames))
    assert [f.item.frame for f in got] == [1, 3, 4]
    assert [int(f.image[0, 0, 0]) for f in got] == [1, 3, 4]


# ------------------------------------------------- --min-score: one point, live or replayed (issue 31)


@pytest.mark.parametrize("method, unthresholded", [("ppi", []), ("nms", ["--min-score", "0"])])
def test_min_score_live_equals_a_replay_of_the_unthresholded_run(method, unthresholded, checkpoint_path,
                                                                   fixture_image, tmp_path):
    common = ["--model", checkpoint_path, "--no-overlay", "--max-proposals", "200", "--postprocess", method]
    full = dope(*common, "--image", fixture_image, *unthresholded, "--json", tmp_path / "all.json")
    assert full.returncode == 0, full.stderr
    every = json.loads((tmp_path / "all.json").read_text())
    scores = sorted(d["score"] for part in ("body", "hand", "face") for d in every[part])
    threshold = repr(scores[len(scores) // 2])  # a detection's own score: kept (>=), those below not
    live = dope(*common, "--image", fixture_image, "--min-score", threshold, "--json", tmp_path / "live.json")
    assert live.returncode == 0, live.stderr
    replayed = dope("--from-json", tmp_path / "all.json", "--min-score", threshold, "--json", tmp_path / "replay.json",
                    "--no-overlay")
    assert replayed.returncode == 0, replayed.stderr
    got, want = (json.loads((tmp_path / n).read_text()) for n in ("replay.json", "live.json"))
    kept = sum(len(want[p]) for p in ("body", "hand", "face"))
    assert 0 < kept < len(scores)  # the threshold dropped some, kept some
    assert any(b["left_hand"] >= 0 or b["right_hand"] >= 0 or b["face"] >= 0 for b in want["body"])
    for part in ("body", "hand", "face"):
        assert got[part] == want[part], part  # the same detections and the same links, to the last digit


def test_min_score_over_a_video_live_equals_a_replay(checkpoint_path, tmp_path):
    # (without tracking: a tracker that sees the low-score detections too may match differently,
    # ByteTrack-like, and gives mirrored detections back in their track's left and right)
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4")
    common = ["--model", checkpoint_path, "--no-overlay", "--max-proposals", "200", "--no-track", "--video", clip]
    assert dope(*common, "--min-score", "2.5", "--json", tmp_path / "live.jsonl").returncode == 0
    assert dope(*common, "--json", tmp_path / "all.jsonl").returncode == 0
    p = dope("--from-json", tmp_path / "all.jsonl", "--min-score", "2.5", "--no-track", "--json",
             tmp_path / "replay.jsonl")
    assert p.returncode == 0, p.stderr
    strip = lambda path: [{k: r[k] for k in ("frame", "body", "hand", "face")}  # noqa: E731
                          for r in map(json.loads, open(path))]
    live = strip(tmp_path / "live.jsonl")
    assert sum(len(r["body"]) for r in live) > 0
    assert strip(tmp_path / "replay.jsonl") == live
