"""What a newcomer trips on (issue 21): drawing scale, 3D framing, patterns, thresholds, one-to-one
links, output names, misplaced inputs, error records, messages, the Python API, video time controls.

Library checks run in this process; CLI checks run `python dope.py` in a subprocess on the
synthetic checkpoint (three runs, a few seconds each).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FIXTURES, ROOT
from handmade import background, scene_result
from dope import cli
from dope.detector import DEFAULT_MIN_SCORE, DOPE, postprocess_outputs
from dope.drawing.draw2d import draw_result, line_width
from dope.files import output_name
from dope.inputs.replay import read_jsonl, replay
from dope.inputs.sources import Video, expand_images
from dope.parts import BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST
from dope.pipeline import replay_frames
from dope.postprocessing.assignment import assign
from dope.postprocessing.selection import limit_people
from dope.results import NO_LINK, Detection, PartArrays, Result
from dope.view3d.builtin_renderer import render_builtin
from dope.view3d.render import Visu3DError, choose_renderer, scene_and_camera
from dope.view3d.scene import View

MODEL = "synthetic_seed0"


def dope(*args, env=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def one_line_error(r, *fragments):
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("dope.py: error: ", "dope: error: ")), r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def write_video(path, frames=10, fps=10.0, size=(96, 64)):
    """A small mp4 whose frame k is filled with grey level 20 k (to tell frames apart)."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(frames):
        out.write(np.full((size[1], size[0], 3), 20 * k, np.uint8))
    out.release()


# --------------------------------------------------------------------------- 1. 2D drawing scale


def test_drawing_scales_with_the_image():
    small = scene_result(480, 640)
    big = scene_result(480 * 4, 640 * 4)  # the same people, 4x larger
    np.testing.assert_allclose(big.body.pose2d, 4 * small.body.pose2d, rtol=1e-5)
    drawn = [(draw_result(np.zeros((r.height, r.width, 3), np.uint8), r, pad=False) != 0).any(-1).sum()
             for r in (small, big)]
    assert drawn[1] >= 10 * drawn[0], drawn  # thicker, not only longer: 16x ideally
    assert line_width(480, 640) == line_width(640, 480) == 2  # SPEC §7 on the fixtures' size


def test_drawing_options_rgb_no_pad_and_fixed_line_width():
    r = scene_result()
    image = background()  # BGR
    bgr = draw_result(image, r, channels="bgr")
    rgb = draw_result(np.ascontiguousarray(image[:, :, ::-1]), r)  # RGB by default, as DOPE's images
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    shifted = r.replace(body=PartArrays("body", r.body.scores, r.body.pose2d - 60, r.body.pose3d,
                                        **{k: r.body.fields[k] for k in ("left_hand", "right_hand", "face")}))
    assert draw_result(image, shifted).shape[:2] != image.shape[:2]          # padded by default
    assert draw_result(image, shifted, pad=False).shape == image.shape       # --no-pad
    thin = (draw_result(np.zeros_like(image), r, lw=1) != 0).any(-1).sum()
    thick = (draw_result(np.zeros_like(image), r, lw=4) != 0).any(-1).sum()
    assert thick > 2 * thin


def test_hand_joints_leave_the_fingers_visible_and_scores_leave_the_face():
    hand = np.zeros((21, 2), np.float32)
    hand[0] = (100, 150)
    for f in range(5):  # short fingers, 8 px bones: SPEC's radius-4 joints would cover them
        for k, j in enumerate((f + 1, 3 * f + 6, 3 * f + 7, 3 * f + 8)):
            hand[j] = (80 + 10 * f, 142 - 8 * k)
    r = Result(height=480, width=640, hand=[Detection(0.9, hand, np.zeros((21, 3), np.float32))])
    out = draw_result(np.zeros((480, 640, 3), np.uint8), r, channels="bgr")
    red = (out == (0, 0, 255)).all(-1).sum()
    coloured = ((out != 0).any(-1) & ~(out == (0, 0, 255)).all(-1)).sum()
    assert coloured > red  # more finger colour than joint red

    people = scene_result()
    with_face = int(np.flatnonzero(people.body.face != NO_LINK)[0])
    one = people.select({"body": [with_face]})
    image = np.full((480, 640, 3), 255, np.uint8)
    diff = (draw_result(image, one, scores=True) != draw_result(image, one, scores=False)).any(-1)
    face = one.face.pose2d[one.body.face[0]]
    (x0, y0), (x1, y1) = face.min(0).astype(int), face.max(0).astype(int)
    assert diff.any() and not diff[y0:y1 + 1, x0:x1 + 1].any()  # the score is written, not over the face


# ---------------------------------------------------------------------------------- 2. 3D framing


@pytest.mark.parametrize("height, width", [(1280, 720), (720, 1280), (480, 640), (400, 1600)])
@pytest.mark.parametrize("azimuth, elevation", [(-45, 20), (30, 45)])
def test_3d_view_frames_the_scene(height, width, azimuth, elevation):
    result = scene_result(height, width)
    scene, camera = scene_and_camera(background(height, width)[:, :, ::-1], result,
                                     View(azimuth=azimuth, elevation=elevation))
    picture = render_builtin(scene, camera)
    ys, xs = np.nonzero((picture < 250).any(-1))
    h, w = picture.shape[:2]
    assert xs.min() >= 0.01 * w and xs.max() <= 0.99 * w and ys.min() >= 0.01 * h and ys.max() <= 0.99 * h
    assert (xs.max() - xs.min()) >= 0.6 * w or (ys.max() - ys.min()) >= 0.6 * h


# ------------------------------------------------------------------------------------- 3. patterns


def test_patterns_match_extensions_in_any_case(tmp_path):
    image = os.path.join(FIXTURES, "synthetic_480x640.png")
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "sub/B.JPG", "sub/c.Jpg", "d.png"):
        shutil.copy(image, tmp_path / name)
    found = expand_images([str(tmp_path / "**" / "*.jpg")])
    assert sorted(os.path.relpath(p, tmp_path) for p in found) == ["a.jpg", "sub/B.JPG", "sub/c.Jpg"]
    assert expand_images([str(tmp_path / "*.PNG")]) == [str(tmp_path / "d.png")]


# ------------------------------------------------------------------- 4. thresholds, people, parts


@pytest.fixture(scope="module")
def outputs(checkpoint_path):
    """The synthetic network's raw outputs on the fixture image (computed once)."""
    detector = DOPE(checkpoint_path, device="cpu", max_proposals=300)
    image = cv2.imread(os.path.join(FIXTURES, "synthetic_480x640.png"))[:, :, ::-1]
    return detector.network([np.ascontiguousarray(image)])[0], detector.checkpoint.ppi_kwargs


def test_min_score_on_ppi_scale_and_nms_defaults(outputs):
    out, kwargs = outputs
    everything = postprocess_outputs(out, 480, 640, "ppi", kwargs)
    scores = np.concatenate([everything[p].scores for p in ("body", "hand", "face")])
    assert scores.max() > 1  # PPI scores are sums of probabilities
    s = float(np.median(scores))
    kept = postprocess_outputs(out, 480, 640, "ppi", kwargs, s)
    for p in ("body", "hand", "face"):
        assert (kept[p].scores >= s).all()
    assert 0 < len(kept) < len(everything)
    # NMS: None is the published 0.3, identical to passing it
    a = postprocess_outputs(out, 480, 640, "nms", kwargs)
    b = postprocess_outputs(out, 480, 640, "nms", kwargs, DEFAULT_MIN_SCORE)
    assert a.to_dict() == b.to_dict()


def test_max_people_and_parts(outputs):
    out, kwargs = outputs
    full = postprocess_outputs(out, 480, 640, "ppi", kwargs)
    assert len(full.body) > 2
    two = postprocess_outputs(out, 480, 640, "ppi", kwargs, max_people=2)
    assert len(two.body) == 2 and len(two.hand) <= 4 and len(two.face) <= 2
    np.testing.assert_array_equal(two.body.scores, np.sort(full.body.scores)[::-1][:2])
    for link, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
        assert (two.body.fields[link] < len(two[part])).all()
    bodies = postprocess_outputs(out, 480, 640, "ppi", kwargs, parts=["body"])
    assert len(bodies.hand) == len(bodies.face) == 0 and len(bodies.body) == len(full.body)
    assert (bodies.body.left_hand == NO_LINK).all() and (bodies.body.face == NO_LINK).all()


def test_limit_people_keeps_the_hands_of_the_people_kept():
    r = scene_result()
    one = limit_people(r, 1)
    assert len(one.body) == 1
    best = int(np.argmax(r.body.scores))
    for link in ("left_hand", "right_hand"):
        if r.body.fields[link][best] != NO_LINK:
            kept = one.body.fields[link][0]
            np.testing.assert_array_equal(one.hand.pose2d[kept], r.hand.pose2d[r.body.fields[link][best]])


# --------------------------------------------------------------------------------- 5. --assign unique


def hands_together():
    """One body whose two wrists are 10 px apart and one hand between them; a second body far away
    with a hand near its right wrist."""
    body = np.zeros((2, 13, 2), np.float32)
    body[0, :] = (100, 100)
    body[0, BODY_L_WRIST], body[0, BODY_R_WRIST] = (205, 200), (195, 200)
    body[1, :] = (500, 100)
    body[1, BODY_L_WRIST], body[1, BODY_R_WRIST] = (560, 200), (440, 200)
    hand = np.zeros((2, 21, 2), np.float32)
    hand[0] = np.linspace((190, 195), (230, 240), 21)
    hand[0, HAND_WRIST] = (201, 201)
    hand[1] = np.linspace((430, 190), (400, 150), 21)
    hand[1, HAND_WRIST] = (442, 202)
    zeros = lambda n, j: np.zeros((n, j, 3), np.float32)
    return (PartArrays("body", [0.9, 0.8], body, zeros(2, 13)), PartArrays("hand", [0.9, 0.7], hand, zeros(2, 21)),
            PartArrays("face"))


def test_unique_assignment_never_gives_one_hand_twice():
    bodies, hands, faces = hands_together()
    nearest = assign(bodies, hands, faces)
    assert nearest.left_hand[0] == nearest.right_hand[0] == 0  # the published rule: one hand on both wrists
    unique = assign(bodies, hands, faces, "unique")
    links = [int(h) for h in np.concatenate([unique.left_hand, unique.right_hand]) if h != NO_LINK]
    assert len(links) == len(set(links)) == 2
    assert unique.right_hand[1] == 1  # the far body's hand stays where both rules put it
    assert {unique.left_hand[0], unique.right_hand[0]} == {0, NO_LINK}


def test_unique_faces_one_to_one():
    body = np.zeros((2, 13, 2), np.float32)
    body[0, 12], body[1, 12] = (100, 100), (110, 100)  # two heads in one face box
    face = np.zeros((1, 84, 2), np.float32)
    face[0] = np.linspace((80, 80), (125, 120), 84)
    zeros = lambda n, j: np.zeros((n, j, 3), np.float32)
    bodies, faces = PartArrays("body", [0.9, 0.8], body, zeros(2, 13)), PartArrays("face", [0.9], face, zeros(1, 84))
    assert (assign(bodies, PartArrays("hand"), faces).face == NO_LINK).all()  # published: ambiguous, none
    assert sorted(assign(bodies, PartArrays("hand"), faces, "unique").face.tolist()) == [NO_LINK, 0]


# -------------------------------------------------------------------------------- 6. output names


def test_output_names_carry_non_default_settings():
    assert output_name("M") == "M" and output_name("M", "ppi", "nearest") == "M"
    assert output_name("M", "nms") == "M_nms" and output_name("M", "nms", "unique") == "M_nms_unique"


# ------------------------------- 6, 8, 9 on the command line: two runs over a folder with a broken file


def test_folder_run_keeps_error_records_and_settings_do_not_collide(checkpoint_path, fixture_image, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    shutil.copy(fixture_image, shots / "a.png")
    (shots / "b.jpg").write_bytes(b"not a jpeg at all")
    shutil.copy(fixture_image, shots / "c.png")
    out = tmp_path / "new" / "folder" / "shots.jsonl"  # --json creates its folder
    r = dope("--model", checkpoint_path, "--image", shots, "--json", out, "--max-proposals", "100", "-v")
    assert r.returncode == 1, r.stderr  # a skipped input
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [os.path.basename(x["image"]) for x in records] == ["a.png", "b.jpg", "c.png"]
    assert set(records[1]) == {"image", "error"} and "b.jpg" in records[1]["error"]
    assert "height" in records[0] and "error" not in records[0]
    times = next(line for line in r.stderr.splitlines() if line.startswith("time: "))
    assert "network" in times and "post-processing" in times and "JsonFrames" in times
    assert (shots / f"a.png_{MODEL}.jpg").is_file()

    r = dope("--model", checkpoint_path, "--image", shots / "a.png", "--postprocess", "nms", "--max-proposals", "100",
             "--assign", "unique", "-q")
    assert r.returncode == 0, r.stderr
    assert (shots / f"a.png_{MODEL}.jpg").is_file() and (shots / f"a.png_{MODEL}_nms_unique.jpg").is_file()

    # replayed: the error record keeps its place, written back as it was; the results are read back
    again = tmp_path / "again.jsonl"
    assert cli.main(["--from-json", str(out), "--json", str(again), "-q"]) == 0
    assert [json.loads(line) for line in again.read_text().splitlines()][1] == records[1]
    seen = []
    assert len(list(replay_frames(str(out), on_skip=lambda item, e: seen.append((item.name, str(e)))))) == 2
    assert seen == [(records[1]["image"], records[1]["error"])]
    (item, result), _ = read_jsonl(str(out))
    assert item.name == records[0]["image"] and result.to_dict()["body"] == records[0]["body"]
    assert len(list(replay(str(out)))) == 2


# ---------------------------------------------------------------------- 7, 9: messages, option errors


def test_misplaced_inputs_and_options_get_one_line_before_the_model_loads(fixture_image, tmp_path):
    missing = str(tmp_path / "no_such_model.pth")  # would fail if the model were loaded
    one_line_error(dope("--model", missing, "--video", fixture_image), "is an image", "--image")
    one_line_error(dope("--model", missing, "--image", fixture_image, "--no-overlay"), "--no-overlay", "--json")
    one_line_error(dope("--model", missing, "--image", fixture_image, "--postprocess", "nms", "--min-score", "2"),
                   "NMS", "[0, 1]")
    one_line_error(dope("--model", missing, "--image", fixture_image, "--every", "2"), "--every", "--video")
    one_line_error(dope("--from-json", tmp_path / "x.jsonl", "--postprocess", "nms"), "--postprocess", "--from-json")
    one_line_error(dope("--model", missing, "--image", fixture_image, "--azimuth", "10"), "--visu3d")


def test_list_models_and_visvis_hints(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "nowhere"
    monkeypatch.setenv("DOPE_MODELS", str(folder))
    assert cli.main(["--list-models"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert str(folder) in first and "does not exist" in first and "set DOPE_MODELS" not in first
    with pytest.raises(Visu3DError) as e:
        choose_renderer("visvis", env={})
    assert "--renderer builtin" in str(e.value) and "xvfb-run" in str(e.value)


# ------------------------------------------------------------------------------ 10. the Python API


def test_stream_arrays_are_writable_for_images_and_video_frames(checkpoint_path, fixture_image, tmp_path):
    from PIL import Image
    video = tmp_path / "v.mp4"
    write_video(video, frames=2)
    detector = DOPE(checkpoint_path, device="cpu", max_proposals=30)
    sources = [[fixture_image], [Image.open(fixture_image)], str(video)]
    for source in sources:
        for item, image, _ in detector.stream(source):
            image[0, 0] = 7  # must not raise "assignment destination is read-only"
            assert image[0, 0, 0] == 7


# ---------------------------------------------------------------------------- 11. time controls


def test_video_selection_by_time_and_rate(tmp_path):
    video = tmp_path / "v.mp4"
    write_video(video)
    frames = lambda **kw: [(item.frame, round(item.time_s, 3)) for item, _ in Video(str(video), **kw)]
    assert frames(every=3) == [(0, 0.0), (3, 0.3), (6, 0.6), (9, 0.9)]
    assert [f for f, _ in frames(start_s=0.3, end_s=0.7)] == [3, 4, 5, 6]
    assert [f for f, _ in frames(rate=4.0)] == [0, 3, 5, 8]  # times 0, 0.25 -> 0.3, 0.5, 0.75 -> 0.8
    assert Video(str(video), every=3).expected_frames == 4
    pixels = [int(image[0, 0, 0]) for _, image in Video(str(video), start_s=0.5, every=2)]
    assert [round(p / 20) for p in pixels] == [5, 7, 9]  # the frames kept are the right ones


def test_every_3_keeps_frame_numbers_and_the_frame_rate(checkpoint_path, tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video)
    out = tmp_path / "clip.jsonl"
    r = dope("--model", checkpoint_path, "--video", video, "--every", "3", "--json", out, "--max-proposals", "30", "-q")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["frame"], x["time_s"]) for x in records] == [(0, 0.0), (3, 0.3), (6, 0.6), (9, 0.9)]
    drawn = cv2.VideoCapture(str(tmp_path / f"clip.mp4_{MODEL}.mp4"))
    assert drawn.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    levels = []
    while True:
        ok, frame = drawn.read()
        if not ok:
            break
        levels.append(round(float(np.median(frame)) / 20))
    drawn.release()
    assert levels == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]  # the last drawing repeated in between
