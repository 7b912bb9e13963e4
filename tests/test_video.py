"""Videos: reading frames, the streaming API, and `dope.py --video` (JSON Lines, annotated mp4, Ctrl-C).

The clips are written here with OpenCV (mp4v, tiny frames); the network runs with 20 proposals
to keep each pass short: these tests check the plumbing, test_cli.py checks the numbers.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import ROOT
from parity import assert_result_close

H, W, FPS = 64, 80, 10.0
LEVELS = (20, 70, 120, 170, 220)  # grey level of each frame of the clip: recognisable after encoding
PROPOSALS = "20"


def write_clip(path, levels=LEVELS, size=(H, W), fps=FPS, colour=None) -> str:
    """An mp4 whose frame i is flat grey levels[i] (or flat BGR `colour`), with a small mark that moves."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    assert writer.isOpened()
    for i, level in enumerate(levels):
        frame = np.full((*size, 3), colour if colour is not None else level, np.uint8)
        frame[4:12, 4 + 8 * (i % 8):12 + 8 * (i % 8)] = 255 - level
        writer.write(frame)
    writer.release()
    return str(path)


def read_back(path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def dope(*args, **kwargs):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)],
                          capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4")


# ------------------------------------------------------------------------------ reading, no network


def test_video_frames_are_rgb_in_order_with_times(tmp_path, clip):
    from dope.inputs.sources import Item, Video
    with Video(clip) as video:
        assert (video.name, video.fps, video.frame_count, video.is_camera) == (clip, FPS, 5, False)
        frames = list(video)
    assert [item for item, _ in frames] == [Item(i, clip, frame=i, time_s=pytest.approx(i / FPS)) for i in range(5)]
    for (_, rgb), level in zip(frames, LEVELS):
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        assert abs(float(np.median(rgb)) - level) < 8
    with pytest.raises(ValueError, match="already read"):
        list(video)
    # BGR pure blue in the file is (0, 0, 255) in RGB
    with Video(write_clip(tmp_path / "blue.mp4", levels=(0,), colour=(255, 0, 0))) as blue:
        (_, rgb), = list(blue)
    b, g, r = (float(np.median(rgb[..., c])) for c in (2, 1, 0))
    assert b > 200 and r < 50 and g < 50


def test_video_sources_that_do_not_open(tmp_path):
    from dope.inputs.sources import SourceError, Video, camera_or_path
    with pytest.raises(SourceError, match="does not exist"):
        Video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(SourceError, match="cannot open video .*junk.mp4"):
        Video(tmp_path / "junk.mp4")
    with pytest.raises(SourceError, match="folder"):
        Video(tmp_path)
    assert camera_or_path("0") == 0 and camera_or_path("12") == 12
    assert camera_or_path("clip.mp4") == "clip.mp4"
    (tmp_path / "3").write_bytes(b"x")
    assert camera_or_path(str(tmp_path / "3")) == str(tmp_path / "3")


# ------------------------------------------------------------------------------------- streaming API


@pytest.fixture(scope="module")
def detector(checkpoint_dict):
    from dope import DOPE
    return DOPE(checkpoint_dict, device="cpu", max_proposals=int(PROPOSALS))


def test_stream_over_a_video_in_batches(detector, clip):
    from dope.inputs.sources import Item
    got = list(detector.stream(clip, batch_size=3))  # two network passes: 3 frames, then 2
    assert [item.frame for item, _, _ in got] == [0, 1, 2, 3, 4]
    assert all(isinstance(item, Item) and item.name == clip for item, _, _ in got)
    for (item, image, result), level in zip(got, LEVELS):
        assert image.shape == (H, W, 3) and abs(float(np.median(image)) - level) < 8
        assert (result.height, result.width) == (H, W) and result.image is None
        assert len(result.body) > 0  # random weights: plenty of detections
    # a batch gives what one image at a time gives
    item, image, result = got[3]
    assert_result_close(result.to_dict(), detector(image).to_dict())


def test_stream_over_arrays_and_paths_skips_unreadable(detector, tmp_path):
    from dope.inputs.sources import Item
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((H, W, 3), 90, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    array = np.full((H, W, 3), 150, np.uint8)
    skipped = []
    got = list(detector.stream([str(good), str(bad), array], batch_size=2,
                               on_skip=lambda item, error: skipped.append((item, str(error)))))
    assert [(item.index, item.name) for item, _, _ in got] == [(0, str(good)), (2, None)]
    assert [r.image for _, _, r in got] == [str(good), None]
    assert len(skipped) == 1 and skipped[0][0] == Item(1, str(bad)) and "bad.png" in skipped[0][1]
    np.testing.assert_array_equal(got[1][1], array)


def test_stream_stops_cleanly_when_closed_early(detector, tmp_path):
    import threading
    path = write_clip(tmp_path / "long.mp4", levels=tuple(range(0, 250, 5)))  # 50 frames
    stream = detector.stream(path, batch_size=1, prefetch=2)
    first = next(stream)
    assert first[0].frame == 0
    assert [t for t in threading.enumerate() if t.name == "dope-prefetch"]  # reading ahead
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "dope-prefetch"]  # joined on close


# --------------------------------------------------------------------------------------------- CLI


def test_cli_video_writes_json_lines_and_annotated_video(checkpoint_path, clip, tmp_path):
    out = tmp_path / "frames.jsonl"
    out.write_text('{"stale": true}\n')
    drawings = tmp_path / "drawings"
    r = dope("--model", checkpoint_path, "--video", clip, "--json", out, "--output-dir", drawings,
             "--batch-size", "2", "--max-proposals", PROPOSALS)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    records = [json.loads(line) for line in lines]
    assert [d["frame"] for d in records] == [0, 1, 2, 3, 4]
    assert [d["time_s"] for d in records] == pytest.approx([i / FPS for i in range(5)])
    for d in records:
        assert d["video"] == clip and "image" not in d
        assert (d["height"], d["width"]) == (H, W) and d["model"] == "synthetic_seed0"
        assert set(d) >= {"body", "hand", "face"} and d["body"]
    # VIDEO_MODEL.mp4: same frame count, size and rate; the drawing is on it
    frames, fps = read_back(drawings / "clip.mp4_synthetic_seed0.mp4")
    assert len(frames) == 5 and fps == pytest.approx(FPS)
    assert all(f.shape == (H, W, 3) for f in frames)
    source, _ = read_back(clip)
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, source)]) > 2
    assert not glob.glob(str(tmp_path / ".*")) and not glob.glob(str(drawings / ".*"))  # no temporary files


def test_cli_ctrl_c_keeps_what_was_written(checkpoint_path, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", levels=tuple(range(0, 240, 8)))  # 30 frames
    out = tmp_path / "frames.jsonl"
    out.write_text('{"stale": true}\n')
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--video", clip,
                          "--json", out, "--max-proposals", PROPOSALS],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # a shell's background job starts with SIGINT ignored, and Python then never
                         # raises KeyboardInterrupt: give the child the default, as a terminal would
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and p.poll() is None:
            temp = glob.glob(str(tmp_path / ".frames.jsonl.*"))
            if temp and len(open(temp[0]).read().splitlines()) >= 2:
                break
            time.sleep(0.1)
        assert p.poll() is None, p.stderr.read()
        assert out.read_text() == '{"stale": true}\n'  # not replaced while running
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert 2 <= len(records) < 30
    assert [d["frame"] for d in records] == list(range(len(records)))
    frames, _ = read_back(tmp_path / "long.mp4_synthetic_seed0.mp4")  # plays, up to the last frame drawn
    assert len(records) - 1 <= len(frames) <= len(records)
    assert not glob.glob(str(tmp_path / ".*"))


def test_cli_input_errors(tmp_path, clip):
    # Before the model is loaded (the model path does not even exist): the input is named.
    r = dope("--model", tmp_path / "none.pth", "--video", tmp_path / "missing.mp4")
    assert r.returncode == 1 and "missing.mp4" in r.stderr and "does not exist" in r.stderr
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    r = dope("--model", tmp_path / "none.pth", "--video", tmp_path / "junk.mp4")
    assert r.returncode == 1 and "cannot open video" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # not FFmpeg's own "moov atom not found"
    r = dope("--model", tmp_path / "none.pth", "--image", clip)
    assert r.returncode == 1 and "--video" in r.stderr
    r = dope("--image", clip, "--video", clip)
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = dope("--model", tmp_path / "none.pth")
    assert r.returncode == 2 and "--image" in r.stderr and "--video" in r.stderr
    r = dope("--video", clip, "--batch-size", "0")
    assert r.returncode == 2 and "--batch-size" in r.stderr


def test_stream_with_tracks_and_smoothing(detector, clip):
    plain = list(detector.stream(clip))
    for mode, params in (("online", {"rate": 25.0}), ("offline", {"window": 2})):
        got = list(detector.stream(clip, track=True, smooth=mode, smooth_params=params))
        assert [item.frame for item, _, _ in got] == [0, 1, 2, 3, 4]
        assert all("track" in r.body.fields and len(r.body) == len(p.body) for (_, _, r), (_, _, p) in zip(got, plain))
        assert all(image is not None for _, image, _ in got)  # images travel with their (delayed) results
