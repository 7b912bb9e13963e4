"""Camera space (dope/motion/camera.py): intrinsics, placement of bodies, hands and faces, the stage, the CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from handmade import camera_scene
from dope.inputs.sources import Item
from dope.motion.camera import (CameraError, Intrinsics, check_focal, check_fov, exif_focal_35mm, fit_translation,
                                     intrinsics, place, place_result)
from dope.results import PartArrays
from dope.stream import Frame
from dope.view3d.scene import assemble_camera, build_scene, is_placed

FOCAL = 1000.0
H, W = 720, 1280


def cam() -> Intrinsics:
    return intrinsics(W, H, focal=FOCAL)


def project(points: np.ndarray) -> np.ndarray:
    """The test's own pinhole projection (principal point at W/2, H/2)."""
    return np.stack([FOCAL * points[..., 0] / points[..., 2] + W / 2, FOCAL * points[..., 1] / points[..., 2] + H / 2], -1)


def with_body(result, pose2d=None, pose3d=None):
    b = result.body
    links = {k: b.fields[k] for k in ("left_hand", "right_hand", "face")}
    return result.replace(body=PartArrays("body", b.scores, b.pose2d if pose2d is None else pose2d,
                                          b.pose3d if pose3d is None else pose3d, **links))


# ------------------------------------------------------------------------------------ intrinsics


def test_intrinsics_from_focal_fov_exif_and_default():
    c = intrinsics(W, H, focal=800)
    assert (c.focal_px, c.cx, c.cy, c.source) == (800, W / 2, H / 2, "focal")
    c = intrinsics(W, H, fov=90)
    assert c.focal_px == pytest.approx(W / 2) and c.source == "fov"
    c = intrinsics(W, H)
    assert c.source == "fov" and c.horizontal_fov_deg(W) == pytest.approx(60)
    # a 35 mm-equivalent focal length is relative to the 36 x 24 mm frame's diagonal
    c = intrinsics(1500, 1000, focal_35mm=50)
    assert c.source == "exif" and c.focal_px == pytest.approx(50 / 36 * 1500)
    assert intrinsics(W, H, focal=700, focal_35mm=50).source == "focal"


def test_exif_focal_length_is_read_from_the_image(tmp_path):
    path = tmp_path / "shot.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 28  # FocalLengthIn35mmFilm
    Image.new("RGB", (60, 40)).save(path, exif=exif)
    assert exif_focal_35mm(str(path)) == 28
    plain = tmp_path / "plain.png"
    Image.new("RGB", (60, 40)).save(plain)
    assert exif_focal_35mm(str(plain)) is None and exif_focal_35mm(str(tmp_path / "none.jpg")) is None


def test_the_stage_uses_each_image_s_exif_focal_length(tmp_path):
    path = tmp_path / "shot.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 24
    Image.new("RGB", (W, H)).save(path, exif=exif)
    result, truths = camera_scene([(0.0, 0.2, 3.0)])
    frames = [Frame(Item(0, str(path)), None, result), Frame(Item(1, str(tmp_path / "other.png")), None, result)]
    first, second = [f.result.meta["camera"] for f in place(frames)]
    assert first["source"] == "exif" and first["focal_px"] == pytest.approx(24 * np.hypot(W, H) / np.hypot(36, 24))
    assert second["source"] == "fov"  # no such file: the 60 degree default
    assert [f.result.meta["camera"]["source"] for f in place(frames, focal=900)] == ["focal", "focal"]


@pytest.mark.parametrize("bad", [-5, 0, float("nan"), 0.5, 1e9])
def test_bad_focal_lengths_are_refused(bad):
    with pytest.raises(CameraError):
        check_focal(bad)


@pytest.mark.parametrize("bad", [0, -10, 180, 200, 0.5])
def test_bad_fields_of_view_are_refused(bad):
    with pytest.raises(CameraError, match="degrees"):
        check_fov(bad)


# ------------------------------------------------------------------------------------ placement


def test_people_at_3_and_9_metres_are_placed_exactly():
    result, truths = camera_scene([(-1.0, 0.2, 3.0), (1.5, 0.4, 9.0)], yaws=[30, -60], lone_hand=True)
    out = place_result(result, cam())
    assert out.meta["camera"] == {"focal_px": FOCAL, "cx": W / 2, "cy": H / 2, "source": "focal"}
    for i in range(2):
        body = out.body.pose3d_camera[i]
        np.testing.assert_allclose(body, truths[i]["body"], atol=2e-6)  # float32 inputs
        assert body[:, 2].mean() == pytest.approx(truths[i]["body"][:, 2].mean(), abs=1e-6)
        assert out.body.reprojection_error_px[i] < 1e-3
        left, right = out.body.left_hand[i], out.body.right_hand[i]
        np.testing.assert_allclose(out.hand.pose3d_camera[left], truths[i]["left_hand"], atol=2e-6)
        np.testing.assert_allclose(out.hand.pose3d_camera[right], truths[i]["right_hand"], atol=2e-6)
        # the face is put on the head: its centre at the head's depth, its 2D matched
        face = out.face.pose3d_camera[out.body.face[i]]
        assert face[:, 2].mean() == pytest.approx(body[12, 2], abs=1e-6)
        assert out.face.reprojection_error_px[out.body.face[i]] < 0.05
    np.testing.assert_allclose(out.hand.pose3d_camera[4], truths[2]["lone_hand"], atol=2e-6)  # from its own fit
    assert result.body.fields.keys() == {"scores", "pose2d", "pose3d", "left_hand", "right_hand", "face"}  # untouched


def test_an_attached_hand_of_the_wrong_size_is_scaled_at_the_wrist():
    result, truths = camera_scene([(0.3, 0.2, 4.0)])
    h = result.hand
    out = place_result(result.replace(hand=PartArrays("hand", h.scores, h.pose2d, h.pose3d * 1.6, is_right=h.is_right)),
                       cam())
    for k, key in ((0, "left_hand"), (1, "right_hand")):
        np.testing.assert_allclose(out.hand.pose3d_camera[k], truths[0][key], atol=1e-5)


def test_noise_of_3_px_and_2_cm_moves_people_by_centimetres_not_metres():
    rng = np.random.default_rng(0)
    errors = {3.0: [], 9.0: []}
    for depth in errors:
        for _ in range(40):
            result, truths = camera_scene([(0.5, 0.2, depth)])
            b = result.body
            noisy = with_body(result, b.pose2d + rng.normal(0, 3, b.pose2d.shape),
                              b.pose3d + rng.normal(0, 0.02, b.pose3d.shape))
            out = place_result(noisy, cam())
            errors[depth].append(np.linalg.norm(out.body.pose3d_camera[0] - truths[0]["body"], axis=-1).mean())
            assert 1 < out.body.reprojection_error_px[0] < 20  # 2 cm at 3 m is 7 px
    # depth from a 1.7 m body's size in pixels: 3 px on ~190 px at 9 m is 1.5% of 9 m
    assert np.mean(errors[3.0]) < 0.08 and np.mean(errors[9.0]) < 0.25
    assert np.mean(errors[9.0]) > np.mean(errors[3.0])  # farther is harder: the test can tell


def test_a_few_bad_joints_do_not_move_the_body():
    result, truths = camera_scene([(0.5, 0.2, 5.0)])
    p2 = result.body.pose2d.copy()
    p2[0, [0, 12]] += (80, -60)  # an ankle and the head 100 px off
    bad = with_body(result, p2)
    robust = place_result(bad, cam()).body.pose3d_camera[0]
    assert np.abs(robust - truths[0]["body"]).max() < 0.01
    # plain least squares (one solve, unit weights) is pulled by decimetres
    body3d = bad.body.pose3d[:1].astype(np.float64) * (-1, -1, 1)
    du = p2[:1] - (W / 2, H / 2)
    a = np.zeros((13, 2, 3))
    a[:, 0] = np.c_[np.full(13, FOCAL), np.zeros(13), -du[0, :, 0]]
    a[:, 1] = np.c_[np.zeros(13), np.full(13, FOCAL), -du[0, :, 1]]
    b = np.stack([du[0, :, 0] * body3d[0, :, 2] - FOCAL * body3d[0, :, 0],
                  du[0, :, 1] * body3d[0, :, 2] - FOCAL * body3d[0, :, 1]], -1)
    t = np.linalg.lstsq(a.reshape(26, 3), b.reshape(26), rcond=None)[0]
    assert np.abs(body3d[0] + t - truths[0]["body"]).max() > 0.1


def test_a_pose_that_fits_best_behind_the_camera_is_put_in_front():
    # a body whose 3D pose was not flipped (x and y along the image's) matches its 2D pose mirrored:
    # least squares would put it behind the camera, where projections mirror
    result, truths = camera_scene([(0.3, 0.2, 4.0)])
    out = place_result(with_body(result, pose3d=result.body.pose3d * (-1, -1, 1)), cam())
    body = out.body.pose3d_camera[0]
    assert (body[:, 2] > 0).all() and abs(body[:, 2].mean() - truths[0]["body"][:, 2].mean()) < 0.5
    centre = project(body.mean(0, keepdims=True))[0]
    np.testing.assert_allclose(centre, result.body.pose2d[0].mean(0), atol=30)  # over its 2D pose
    assert out.body.reprojection_error_px[0] > 10  # and the error says it does not fit


def test_missing_joints_are_left_out_and_hopeless_detections_get_nan():
    result, truths = camera_scene([(0.0, 0.2, 3.0)])
    p3 = result.body.pose3d.copy()
    p3[0, 3] = np.nan
    out = place_result(with_body(result, pose3d=p3), cam())
    good = np.arange(13) != 3
    np.testing.assert_allclose(out.body.pose3d_camera[0][good], truths[0]["body"][good], atol=2e-6)
    t = fit_translation(np.full((1, 13, 3), np.nan), np.zeros((1, 13, 2)), cam())
    assert np.isnan(t).all()


def test_empty_results_and_the_stage_over_frames(tmp_path):
    result, truths = camera_scene([(0.0, 0.2, 3.0)])
    empty = result.select({"body": [], "hand": [], "face": []})
    frames = [Frame(Item(0, "a.png"), None, empty), Frame(Item(1, "b.png"), None, result)]
    out = list(place(frames, fov=90))
    assert [len(f.result.body) for f in out] == [0, 1]
    assert out[0].result.body.pose3d_camera.shape == (0, 13, 3)
    assert out[1].result.meta["camera"]["source"] == "fov"
    assert out[1].result.to_dict()["body"][0]["reprojection_error_px"] >= 0
    with pytest.raises(CameraError):
        list(place(frames, focal=-1))


# ------------------------------------------------------------------------------------ 3D view


def test_3d_view_in_camera_mode_puts_joints_on_their_rays_at_their_depths():
    result, truths = camera_scene([(-1.0, 0.2, 3.0), (1.5, 0.4, 9.0)])
    placed = place_result(result, cam())
    assert is_placed(placed) and not is_placed(result)
    points, plane_depth = assemble_camera(placed)
    origin = np.array([W / 2 / H, H / 2 / H, 0.0])  # the camera, in scene units
    for i in range(2):
        body = points["body"][i]
        ray = body - origin
        # seen from the camera, each joint lies on its pixel's ray: x/z = (u - cx) / f, y/z = (v - cy) / f
        np.testing.assert_allclose(ray[:, :2] / ray[:, 2:] * FOCAL + (W / 2, H / 2), result.body.pose2d[i], atol=1e-3)
    near, far = points["body"][0][:, 2].mean(), points["body"][1][:, 2].mean()
    true_ratio = truths[1]["body"][:, 2].mean() / truths[0]["body"][:, 2].mean()  # about 3: 9 m and 3 m
    assert far / near == pytest.approx(true_ratio, rel=1e-6) and plane_depth > points["body"][1][:, 2].max()
    scene = build_scene(np.zeros((H, W, 3), np.uint8), placed)
    assert scene.plane[0, 2] == pytest.approx(plane_depth)
    default = build_scene(np.zeros((H, W, 3), np.uint8), result)  # not placed: the published layout
    assert default.plane[0, 2] == 0.5


# ------------------------------------------------------------------------------------ CLI


def dope(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def write_clip(path, positions=((-1.0, 0.2, 3.0), (1.5, 0.4, 9.0))):
    result, truths = camera_scene(positions)
    path.write_text(json.dumps(result.to_dict()) + "\n")
    return truths


def test_cli_writes_pose3d_camera_and_says_which_focal(tmp_path):
    truths = write_clip(tmp_path / "cam.jsonl")
    proc = dope("--from-json", tmp_path / "cam.jsonl", "--focal", FOCAL, "--smooth", "off", "-q",
                "--json", tmp_path / "out.jsonl")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(open(tmp_path / "out.jsonl").read())
    assert rec["camera"]["focal_px"] == FOCAL and rec["camera"]["source"] == "focal"
    for i, body in enumerate(rec["body"]):
        assert np.abs(np.array(body["pose3d_camera"]) - truths[i]["body"]).max() < 1e-4
        assert body["reprojection_error_px"] < 0.01
        hand = rec["hand"][body["left_hand"]]
        assert np.abs(np.array(hand["pose3d_camera"]) - truths[i]["left_hand"]).max() < 1e-4
    proc = dope("--from-json", tmp_path / "cam.jsonl", "--camera-space", "-q", "--json", tmp_path / "d.jsonl")
    rec = json.loads(open(tmp_path / "d.jsonl").read())
    assert rec["camera"]["source"] == "fov" and rec["camera"]["focal_px"] == pytest.approx(W / 2 / math.tan(math.pi / 6),
                                                                                           abs=1e-3)


def test_replayed_placed_detections_keep_their_camera(tmp_path):
    truths = write_clip(tmp_path / "cam.jsonl")
    assert dope("--from-json", tmp_path / "cam.jsonl", "--focal", 1400, "-q", "--json", tmp_path / "a.jsonl").returncode == 0
    proc = dope("--from-json", tmp_path / "a.jsonl", "-q", "--export", tmp_path / "a.npz", "--json", tmp_path / "b.jsonl")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(open(tmp_path / "b.jsonl").read())
    assert rec["camera"]["focal_px"] == 1400 and rec["camera"]["source"] == "focal"
    with np.load(tmp_path / "a.npz") as z:
        assert float(z["focal_px"]) == 1400
    # --focal still decides when given
    proc = dope("--from-json", tmp_path / "a.jsonl", "-q", "--focal", FOCAL, "--json", tmp_path / "c.jsonl")
    rec = json.loads(open(tmp_path / "c.jsonl").read())
    assert rec["camera"]["focal_px"] == FOCAL
    assert np.abs(np.array(rec["body"][0]["pose3d_camera"]) - truths[0]["body"]).max() < 1e-4


@pytest.mark.parametrize("args, words", [(["--focal", "-5"], "positive"), (["--focal", "1e9"], "absurd"),
                                         (["--fov", "0"], "degrees"), (["--fov", "190"], "degrees")])
def test_cli_bad_camera_gets_one_line(tmp_path, args, words):
    write_clip(tmp_path / "cam.jsonl")
    proc = dope("--from-json", tmp_path / "cam.jsonl", *args, "-q", "--json", tmp_path / "out.jsonl")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
