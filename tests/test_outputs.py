"""Output writers: a target is replaced only by a finished file (or one finalised on Ctrl-C)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from dope.outputs.writers import JsonLinesWriter, OutputError, VideoWriter, partial_path, record
from dope.results import Detection, Result
from dope.inputs.sources import Item


def leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n.startswith(".")]


def test_json_lines_are_flushed_and_replace_the_target_at_the_end(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with JsonLinesWriter(target) as w:
        w.write({"a": 1})
        (temp,) = leftovers(tmp_path)
        assert (tmp_path / temp).read_text() == '{"a": 1}\n'  # flushed: on disk already
        assert target.read_text() == "old\n"  # the old file stays until the new one is done
        w.write({"a": 2})
    assert [json.loads(x) for x in target.read_text().splitlines()] == [{"a": 1}, {"a": 2}]
    assert not leftovers(tmp_path)


def test_ctrl_c_finalises_other_errors_keep_a_partial_file(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with JsonLinesWriter(target) as w:
            w.write({"frame": 0})
            raise KeyboardInterrupt
    assert target.read_text() == '{"frame": 0}\n'
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with JsonLinesWriter(target) as w:
            w.write({"frame": 0})
            raise RuntimeError("the network failed")
    assert target.read_text() == "old\n"
    assert (tmp_path / "out.partial.jsonl").read_text() == '{"frame": 0}\n'
    assert partial_path(str(target)) == str(tmp_path / "out.partial.jsonl")
    with pytest.raises(RuntimeError):
        with JsonLinesWriter(tmp_path / "other.jsonl"):
            raise RuntimeError("before anything was written")
    assert not (tmp_path / "other.jsonl").exists() and not (tmp_path / "other.partial.jsonl").exists()
    assert not leftovers(tmp_path)


def test_unwritable_targets_are_named(tmp_path):
    with pytest.raises(OutputError, match="missing"):
        JsonLinesWriter(tmp_path / "missing" / "out.jsonl")
    with pytest.raises(OutputError, match="folder"):
        VideoWriter(tmp_path, fps=10)


def test_video_plays_after_ctrl_c_and_resizes_odd_frames(tmp_path):
    target = tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(target, fps=12.5) as w:
            for i in range(3):
                w.write(np.full((48, 64, 3), 60 * i, np.uint8))
            w.write(np.zeros((30, 30, 3), np.uint8))  # another size: fitted to the first
            raise KeyboardInterrupt
    capture = cv2.VideoCapture(str(target))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)
    assert len(frames) == 4 and all(f.shape == (48, 64, 3) for f in frames)
    assert [round(float(np.median(f)) / 60) for f in frames] == [0, 1, 2, 0]
    assert not leftovers(tmp_path)
    with VideoWriter(tmp_path / "empty.mp4", fps=10):
        pass
    assert not (tmp_path / "empty.mp4").exists()  # no frames, no file


def test_record_for_images_and_frames():
    result = Result(height=4, width=5, body=[Detection(0.5, np.zeros((13, 2)), np.zeros((13, 3)))], image="x.jpg")
    image = record(Item(0, "x.jpg"), result, model="M")
    assert list(image)[:3] == ["image", "height", "width"] and image["model"] == "M"
    assert image["body"][0]["score"] == 0.5
    frame = record(Item(7, "clip.mp4", frame=7, time_s=0.2800000001), result, model="M")
    assert "image" not in frame
    assert (frame["video"], frame["frame"], frame["time_s"]) == ("clip.mp4", 7, 0.28)
    assert frame["body"] == image["body"] and frame["model"] == "M"
