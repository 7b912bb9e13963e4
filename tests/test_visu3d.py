"""The 3D view (SPEC §8): fit, body flip, whole-body assembly, scene, camera, built-in renderer, CLI.

The visvis renderer has its own tests (test_visvis.py, under Xvfb).
"""
from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from scipy.optimize import least_squares

from conftest import FIXTURES, ROOT
from handmade import background, person, scene_result
from dope.parts import BLUE, FACE, GREEN, HAND, PART_NAMES, PARTS
from dope.view3d.render import Visu3DError, choose_renderer, visu3d_image
from dope.view3d.builtin_renderer import render_builtin
from dope.view3d.visvis_renderer import display_reachable
from dope.results import Detection, Result
from dope.view3d.scene import (BONE_RADIUS, GRID_CELLS, JOINT_RADIUS, PLANE_DEPTH, Camera, Scene, View, assemble,
                     build_scene, eye_rotation, fit_scaled_orthographic, flip_body, floor_grid, frame_scene,
                     image_plane, place)

H, W = 480, 640


# ------------------------------------------------------------------------------------ fitting


def lm_fit(xy: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, float]:
    """The published way: Levenberg-Marquardt for t with s = 1, then for (t, log s)."""
    def residuals(p, s=None):
        scale = np.exp(p[2]) if s is None else s
        return (scale * (xy + p[:2]) - uv).ravel()
    tight = dict(method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    t0 = least_squares(lambda p: residuals(np.r_[p, 0.0], s=1.0), np.zeros(2), **tight).x
    p = least_squares(residuals, np.r_[t0, 0.0], **tight).x
    return p[:2], float(np.exp(p[2]))


@pytest.mark.parametrize("joints, seed", [(13, 0), (21, 1), (84, 2), (13, 3)])
def test_closed_form_fit_agrees_with_levenberg_marquardt(joints, seed):
    rng = np.random.default_rng(seed)
    xy = rng.normal(0, 0.3, (joints, 2))
    angle = rng.uniform(-0.4, 0.4)  # not an exact scaled translation: a rotation and noise too
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    uv = rng.uniform(100, 400) * (xy @ rot.T + rng.normal(0, 1, 2)) + rng.normal(0, 3, (joints, 2))
    t, s = fit_scaled_orthographic(xy, uv)
    t_lm, s_lm = lm_fit(xy, uv)
    assert s > 0
    assert abs(s - s_lm) <= 1e-6 * s_lm
    np.testing.assert_allclose(t, t_lm, rtol=1e-6, atol=1e-6 * np.abs(t_lm).max())


def test_fit_recovers_an_exact_scaled_translation_and_is_vectorised():
    rng = np.random.default_rng(5)
    xy = rng.normal(0, 0.3, (2, 3, 13, 2))
    s_true = rng.uniform(50, 500, (2, 3))
    t_true = rng.normal(0, 2, (2, 3, 2))
    uv = s_true[..., None, None] * (xy + t_true[..., None, :])
    t, s = fit_scaled_orthographic(xy, uv)
    assert t.shape == (2, 3, 2) and s.shape == (2, 3)
    np.testing.assert_allclose(s, s_true, rtol=1e-10)
    np.testing.assert_allclose(t, t_true, rtol=1e-9, atol=1e-9)
    one_t, one_s = fit_scaled_orthographic(xy[1, 2], uv[1, 2])
    np.testing.assert_allclose(one_t, t[1, 2], rtol=1e-12)
    assert one_s == pytest.approx(s[1, 2], rel=1e-12)


def test_mirrored_pose_shrinks_onto_its_2d_centroid():
    # the best s would be negative: the constrained optimum is s -> 0+, the part at its 2D centroid
    xy = np.random.default_rng(1).normal(0, 0.3, (13, 2))
    uv = -200 * xy + (300, 200)
    t, s = fit_scaled_orthographic(xy, uv)
    assert 0 < s < 1e-3
    pts = place(np.c_[xy, np.ones(13)], uv)
    np.testing.assert_allclose(pts[:, :2], np.broadcast_to(uv.mean(0), (13, 2)), atol=1e-3)
    assert np.isfinite(pts).all() and np.abs(pts[:, 2]).max() < 1e-3


def test_a_3d_pose_without_spread_keeps_scale_one():
    xy = np.full((21, 2), 0.2)
    uv = np.random.default_rng(2).uniform(0, 100, (21, 2))
    t, s = fit_scaled_orthographic(xy, uv)
    assert s == 1.0
    np.testing.assert_allclose(xy[0] + t, uv.mean(0))


def test_place_scales_depth_with_the_fitted_scale():
    pose3d = np.array([[0.0, 0.0, 0.5], [1.0, 0.0, -0.5], [0.0, 1.0, 0.0]])
    pose2d = 100 * (pose3d[:, :2] + (2.0, 3.0))
    np.testing.assert_allclose(place(pose3d, pose2d), [[200, 300, 50], [300, 300, -50], [200, 400, 0]], atol=1e-9)


def test_flip_body_negates_x_and_y_on_a_copy():
    pose = np.arange(39, dtype=np.float32).reshape(13, 3)
    before = pose.copy()
    flipped = flip_body(pose)
    np.testing.assert_array_equal(pose, before)
    np.testing.assert_array_equal(flipped, before * (-1, -1, 1))


# ----------------------------------------------------------------------------------- assembly


def one_person_result(**kwargs) -> Result:
    body, (left, right), face = person(300, 250, 200, **kwargs)
    body.left_hand, body.right_hand, body.face = 0, 1, 0
    return Result(height=H, width=W, body=[body], hand=[left, right], face=[face])


def test_hands_are_translated_onto_the_wrists_not_collapsed():
    result = one_person_result(yaw=20, wave=1.0)
    placed = assemble(result)
    body = placed["body"][0]
    for k, wrist in ((0, 7), (1, 6)):  # left hand on the left wrist (7), right hand on the right wrist (6)
        hand = placed["hand"][k]
        own = place(result.hand[k].pose3d, result.hand[k].pose2d)
        np.testing.assert_allclose(hand[0], body[wrist], atol=1e-9)
        np.testing.assert_allclose(hand - hand[0], own - own[0], atol=1e-9)  # a pure translation
        assert np.ptp(hand, axis=0)[:2].min() > 5  # a whole hand, pixels apart
    assert placed["body"].shape == (1, 13, 3) and placed["hand"].shape == (2, 21, 3)


def test_faces_move_in_depth_only_to_the_head():
    result = one_person_result(yaw=-30)
    placed = assemble(result)
    face, head = placed["face"][0], placed["body"][0][12]
    own = place(result.face[0].pose3d, result.face[0].pose2d)
    assert face[:, 2].mean() == pytest.approx(head[2], abs=1e-9)
    np.testing.assert_allclose(face[:, :2], own[:, :2], atol=1e-9)
    np.testing.assert_allclose(face[:, 2] - face[:, 2].mean(), own[:, 2] - own[:, 2].mean(), atol=1e-9)


def test_bodies_are_flipped_and_land_on_their_2d_pose():
    # hand-made poses are exact orthographic projections: the fitted body lies on its 2D pose
    result = one_person_result(yaw=35, stride=0.3)
    body = assemble(result)["body"][0]
    np.testing.assert_allclose(body[:, :2], result.body[0].pose2d, atol=1e-3)
    # depth: the right leg strides towards the camera (smaller z) once the body is flipped back
    assert body[0, 2] < body[1, 2]


def test_assembly_never_modifies_the_result():
    result = one_person_result(wave=0.5)
    before = copy.deepcopy(result)
    assemble(result)
    build_scene(np.zeros((H, W, 3), np.uint8), result)
    for name in PART_NAMES:
        for a, b in zip(result[name], before[name]):
            np.testing.assert_array_equal(a.pose3d, b.pose3d)
            np.testing.assert_array_equal(a.pose2d, b.pose2d)
            assert (a.left_hand, a.right_hand, a.face) == (b.left_hand, b.right_hand, b.face)


def test_unattached_parts_keep_their_own_fit_and_a_shared_hand_moves_once():
    result = one_person_result()
    lone = Detection(score=0.5, pose2d=result.hand[0].pose2d + (200, 0), pose3d=result.hand[0].pose3d, is_right=False)
    other, _, _ = person(450, 250, 200)
    other.right_hand = 0  # the first body's left hand is also this body's right hand
    result = result.replace(hand=list(result.hand) + [lone], body=list(result.body) + [other])
    placed = assemble(result)
    np.testing.assert_allclose(placed["hand"][2], place(result.hand[2].pose3d, result.hand[2].pose2d), atol=1e-9)
    np.testing.assert_allclose(placed["hand"][0][0], placed["body"][1][6], atol=1e-9)  # the last claim wins
    own = place(result.hand[0].pose3d, result.hand[0].pose2d)
    np.testing.assert_allclose(placed["hand"][0] - placed["hand"][0][0], own - own[0], atol=1e-9)


def test_empty_parts_assemble_to_empty_arrays():
    placed = assemble(Result(height=H, width=W))
    assert {k: v.shape for k, v in placed.items()} == {"body": (0, 13, 3), "hand": (0, 21, 3), "face": (0, 84, 3)}
    body, _, _ = person(300, 250, 200)
    body.left_hand = body.right_hand = body.face = None
    placed = assemble(Result(height=H, width=W, body=[body]))
    assert placed["body"].shape == (1, 13, 3) and placed["hand"].shape == (0, 21, 3)


# -------------------------------------------------------------------------------------- scene


def test_scene_layout_in_image_heights():
    result = one_person_result()
    texture = np.zeros((H, W, 3), np.uint8)
    scene = build_scene(texture, result)
    aspect = W / H
    assert scene.aspect == pytest.approx(aspect)
    np.testing.assert_allclose(scene.plane, [[0, 0, 0.5], [aspect, 0, 0.5], [aspect, 1, 0.5], [0, 1, 0.5]])
    grid = scene.grid
    assert grid.shape == (2 * (GRID_CELLS + 1), 2, 3)
    assert (grid[..., 1] == 1).all()
    assert grid[..., 0].min() == 0 and grid[..., 0].max() == pytest.approx(aspect)
    assert grid[..., 2].min() == pytest.approx(0.5 - aspect) and grid[..., 2].max() == pytest.approx(0.5)
    # the body's joints are the assembled points divided by H
    body = assemble(result)["body"][0] / H
    shin = PARTS["body"].bones[4]  # right shin, (0,) -> (2,)
    i = [k for k, b in enumerate(scene.bones) if np.allclose(b, [body[0], body[2]])]
    assert len(i) == 1 and tuple(scene.bone_colors[i[0]]) == shin.color == BLUE


def test_scene_drops_the_neck_and_head_sphere_of_bodies_with_a_face_and_face_spheres():
    with_face = one_person_result()
    no_face, _, _ = person(500, 250, 150)
    with_face = with_face.replace(body=list(with_face.body) + [no_face])
    scene = build_scene(np.zeros((H, W, 3), np.uint8), with_face)
    count = {name: (int((scene.bone_parts == k).sum()), int((scene.joint_parts == k).sum()))
             for k, name in enumerate(PART_NAMES)}
    nb = len(PARTS["body"].bones)
    assert count["body"] == ((nb - 1) + nb, 12 + 13)
    assert count["hand"] == (2 * len(HAND.bones), 2 * 21)
    assert count["face"] == (len(FACE.bones), 0)
    # the neck of the second body is there: head to mid-shoulders
    body = assemble(with_face)["body"][1] / H
    neck = [body[12], body[[10, 11]].mean(0)]
    assert any(np.allclose(b, neck) for b in scene.bones)
    assert not any(np.allclose(b, [assemble(with_face)["body"][0][12] / H, b[1]]) for b in scene.bones[:nb])


def test_scene_without_detections():
    scene = build_scene(np.zeros((H, W, 3), np.uint8), Result(height=H, width=W))
    assert scene.bones.shape == (0, 2, 3) and scene.joints.shape == (0, 3) and scene.bone_colors.shape == (0, 3)
    camera = frame_scene(scene)
    img = render_builtin(scene, camera)
    assert img.shape == (720, 1280, 3)


# ------------------------------------------------------------------------------------- camera


def test_camera_looks_from_the_front_left_and_above():
    scene = build_scene(np.zeros((H, W, 3), np.uint8), Result(height=H, width=W))
    camera = frame_scene(scene)
    (tl, tr, br, bl), depth = camera.project(scene.plane)
    assert tl[0] == pytest.approx(bl[0]) and tl[1] < bl[1]                # image-up is up, edges vertical
    run, rise = tr - tl
    assert run > 0 and -rise / run == pytest.approx(np.sin(np.radians(20)))  # the image's x: right and up
    front, _ = camera.project([0.0, 1.0, 0.5 - W / H])                   # the grid's front corner
    assert front[0] > bl[0] and front[1] > bl[1]                           # towards the viewer: right and down
    assert camera.project([0, 0, 0])[1] > camera.project([0, 0, 1])[1]     # smaller z is closer
    # framed: the projected scene centred, touching the margin (4% of the frame) on two opposite sides
    px, _ = camera.project(scene.points())
    lo, hi = px.min(0), px.max(0)
    np.testing.assert_allclose((lo + hi) / 2, [639.5, 359.5], atol=1e-6)
    room = np.array([1280, 720]) * 0.92
    assert ((hi - lo) <= room + 1e-6).all() and np.isclose(hi - lo, room, rtol=1e-3).any()


def test_eye_rotation_is_a_rotation():
    r = eye_rotation(-45, 20)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1)


# ---------------------------------------------------------------------------- built-in renderer


def fixed_camera(scale: float = 400.0) -> Camera:
    return Camera(rotation=eye_rotation(-45, 20), center=np.array([0.6, 0.5, 0.0]), scale=scale,
                  size=(1280, 720), azimuth=-45, elevation=20)


def at_eye(camera: Camera, eye: np.ndarray) -> np.ndarray:
    """Scene points whose eye coordinates are `eye` float[..., 3]."""
    return np.asarray(eye, np.float64) @ camera.rotation + camera.center


def quadrant_texture() -> np.ndarray:
    tex = np.zeros((H, W, 3), np.uint8)
    tex[: H // 2, : W // 2] = (40, 40, 200)
    tex[: H // 2, W // 2:] = (40, 200, 40)
    tex[H // 2:, : W // 2] = (200, 40, 40)
    tex[H // 2:, W // 2:] = (200, 200, 40)
    return tex


def synthetic_scene(bones=np.zeros((0, 2, 3)), colors=np.zeros((0, 3)), joints=np.zeros((0, 3)),
                    texture=None) -> Scene:
    aspect = W / H
    return Scene(aspect=aspect, texture=quadrant_texture() if texture is None else texture, plane=image_plane(aspect), grid=floor_grid(aspect),
                 bones=np.asarray(bones, np.float64).reshape(-1, 2, 3),
                 bone_colors=np.asarray(colors, np.uint8).reshape(-1, 3),
                 bone_parts=np.zeros(len(bones), np.intp), joints=np.asarray(joints, np.float64).reshape(-1, 3),
                 joint_parts=np.zeros(len(joints), np.intp))


def pixel(img: np.ndarray, px: np.ndarray) -> np.ndarray:
    x, y = np.rint(px).astype(int)
    return img[y, x].astype(int)


def test_image_plane_grid_and_background_land_where_projected():
    camera = fixed_camera()
    scene = synthetic_scene()
    img = render_builtin(scene, camera)
    assert img.shape == (720, 1280, 3) and img.dtype == np.uint8
    tex = scene.texture
    aspect = W / H
    for u, v in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        px, _ = camera.project([u * aspect, v, PLANE_DEPTH])
        expected = tex[int(v * H), int(u * W)].astype(int)
        assert np.abs(pixel(img, px) - expected).max() <= 3, (u, v)
    corner_px, _ = camera.project([[0, 0, PLANE_DEPTH], [aspect, 1, PLANE_DEPTH]])
    assert (pixel(img, corner_px[0] + (-3, 0)) == 255).all()   # just left of the plane: background
    # grid crossings are dark, the middle of a cell is not
    step = aspect / GRID_CELLS
    cross, _ = camera.project([3 * step, 1.0, PLANE_DEPTH - 4 * step])
    cell, _ = camera.project([3.5 * step, 1.0, PLANE_DEPTH - 4.5 * step])
    assert pixel(img, cross).max() < 120 and pixel(img, cell).min() == 255
    assert (img[:5] == 255).all() and (img[-5:] == 255).all()


def test_bones_and_joints_land_on_their_projected_pixels():
    camera = fixed_camera()
    bones = at_eye(camera, [[[-0.3, 0.1, 0.6], [0.0, 0.1, 0.6]], [[0.1, -0.2, 0.6], [0.1, 0.0, 0.6]]])
    joints = at_eye(camera, [[-0.3, -0.2, 0.6]])
    scene = synthetic_scene(bones, [BLUE, GREEN], joints, texture=np.full((H, W, 3), 255, np.uint8))
    img = render_builtin(scene, camera)
    (blue_mid, green_mid), _ = camera.project(bones.mean(1))
    b, g = pixel(img, blue_mid), pixel(img, green_mid)
    assert b[0] > 150 and b[1] < 60 and b[2] < 60, b
    assert g[1] > 150 and g[0] < 60 and g[2] < 60, g
    j = pixel(img, camera.project(joints[0])[0])
    assert j[2] > 150 and j[0] < 60 and j[1] < 60, j
    # bone width: 2 * radius * scale pixels (4 px here), within a pixel
    x, y = np.rint(blue_mid).astype(int)
    column = img[y - 10:y + 11, x].astype(float)
    coverage = (255 - column[:, 1]) / (255 - column[:, 1].min())
    assert abs(coverage.sum() - 2 * BONE_RADIUS * camera.scale) < 1.0
    # joints are wider than bones
    jx, jy = np.rint(camera.project(joints[0])[0]).astype(int)
    row = img[jy, jx - 10:jx + 11].astype(float)
    disc = (255 - row[:, 0]) / (255 - row[:, 0].min())
    assert abs(disc.sum() - 2 * JOINT_RADIUS * camera.scale) < 1.0


def test_closer_primitives_are_drawn_over_farther_ones():
    camera = fixed_camera()
    near = at_eye(camera, [[[-0.2, -0.4, 0.8], [0.2, -0.4, 0.8]]])  # horizontal, closer to the viewer
    far = at_eye(camera, [[[0.0, -0.6, 0.7], [0.0, -0.2, 0.7]]])    # vertical, crossing it
    for bones, colors in (([near[0], far[0]], [GREEN, BLUE]), ([far[0], near[0]], [BLUE, GREEN])):
        img = render_builtin(synthetic_scene(np.array(bones), colors), camera)
        crossing, _ = camera.project(at_eye(camera, [0.0, -0.4, 0.8]))
        c = pixel(img, crossing)
        assert c[1] > 150 and c[0] < 60, c  # green, whatever the input order


def test_the_image_plane_hides_what_is_behind_it():
    camera = fixed_camera()
    aspect = W / H
    behind = [[0.5 * aspect, 0.5, PLANE_DEPTH + 0.2]]
    ray_hits_plane = camera.project(behind)[0][0]
    img = render_builtin(synthetic_scene(joints=behind), camera)
    plain = render_builtin(synthetic_scene(), camera)
    x, y = np.rint(ray_hits_plane).astype(int)
    np.testing.assert_array_equal(img[y - 5:y + 6, x - 5:x + 6], plain[y - 5:y + 6, x - 5:x + 6])  # the texture
    img = render_builtin(synthetic_scene(joints=[[0.5 * aspect, 0.5, PLANE_DEPTH - 0.2]]), camera)
    in_front = camera.project([[0.5 * aspect, 0.5, PLANE_DEPTH - 0.2]])[0][0]
    assert pixel(img, in_front)[2] > 150


def test_hundreds_of_detections_render_fast():
    with gzip.open(os.path.join(FIXTURES, "network_seed0_ppi.json.gz"), "rt") as f:
        result = Result.from_dict(json.load(f))
    assert len(result.body) > 200 and len(result.face) > 200
    image = cv2.imread(os.path.join(FIXTURES, "synthetic_480x640.png"))[:, :, ::-1]
    scene = build_scene(np.ascontiguousarray(image[:, :, ::-1]), result)
    camera = frame_scene(scene)
    render_builtin(scene, camera)  # warm up
    start = time.perf_counter()
    img = render_builtin(scene, camera)
    elapsed = time.perf_counter() - start
    assert img.shape == (720, 1280, 3)
    assert elapsed < 2.0, f"{elapsed:.2f} s for {len(scene.bones)} bones and {len(scene.joints)} joints"


def test_hand_made_people_look_like_people():
    img, used = visu3d_image(background(), scene_result(), renderer="builtin")
    assert used == "builtin" and img.shape == (720, 1280, 3)
    colours = {"blue": (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80),
               "green": (img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80),
               "red": (img[..., 2] > 150) & (img[..., 0] < 80) & (img[..., 1] < 80)}
    for name, mask in colours.items():
        assert mask.sum() > 200, name
    assert (img == 255).all(-1).mean() > 0.5  # mostly background, as published


@pytest.mark.parametrize("parts", [(), ("body",), ("hand",), ("face",), ("hand", "face")])
def test_missing_parts_render_cleanly(parts):
    full = scene_result()
    result = full.filter(parts=parts)  # links to parts that are not there become -1
    if "body" in parts:
        assert (result.body.face == -1).all() and (result.body.left_hand == -1).all()
    img, _ = visu3d_image(background(), result, renderer="builtin")
    empty, _ = visu3d_image(background(), Result(height=full.height, width=full.width), renderer="builtin")
    assert img.shape == (720, 1280, 3)
    assert (img != empty).any() == bool(parts)


@pytest.mark.parametrize("azimuth", [30, 90, 135])
def test_views_other_than_the_default(azimuth):
    img, _ = visu3d_image(background(240, 320), scene_result(240, 320), renderer="builtin",
                          view=View(azimuth=azimuth, elevation=45, size=(640, 360)))
    assert img.shape == (360, 640, 3) and (img != 255).any()


def test_seen_from_behind_the_plane_hides_what_is_in_front_of_it():
    camera = Camera(rotation=eye_rotation(135, 20), center=np.array([0.6, 0.5, 0.0]), scale=400.0,
                    size=(1280, 720), azimuth=135, elevation=20)
    aspect = W / H
    joint = [[0.5 * aspect, 0.5, PLANE_DEPTH - 0.2]]  # in front of the image, which now faces away
    x, y = np.rint(camera.project(joint)[0][0]).astype(int)
    img = render_builtin(synthetic_scene(joints=joint), camera)
    plain = render_builtin(synthetic_scene(), camera)
    np.testing.assert_array_equal(img[y - 5:y + 6, x - 5:x + 6], plain[y - 5:y + 6, x - 5:x + 6])


# ------------------------------------------------------------------------------ renderer choice


def test_renderer_choice_without_a_display():
    no_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    if sys.platform in ("darwin", "win32"):
        pytest.skip("no $DISPLAY to take away here")
    assert choose_renderer("builtin") == "builtin"
    assert choose_renderer("auto", env=no_display) == "builtin"
    with pytest.raises(Visu3DError, match="visvis"):
        choose_renderer("visvis", env=no_display)
    with pytest.raises(Visu3DError, match="interactive"):
        choose_renderer("builtin", interactive=True)
    with pytest.raises(Visu3DError, match="interactive"):
        choose_renderer("auto", interactive=True, env=no_display)
    with pytest.raises(Visu3DError, match="unknown"):
        choose_renderer("opengl")


def test_display_reachable_says_why_not():
    assert "DISPLAY" in display_reachable({})
    assert "not reachable" in display_reachable({"DISPLAY": ":54321"})
    assert "parse" in display_reachable({"DISPLAY": "nonsense"})


# ------------------------------------------------------------------------------------------ CLI


def dope(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, env=env if env is not None else os.environ.copy(), timeout=timeout)


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("visu3d") / "small.png"
    cv2.imwrite(str(path), cv2.imread(os.path.join(FIXTURES, "synthetic_480x640.png"))[100:220, 200:360])
    return str(path)


def test_cli_writes_the_3d_view(checkpoint_path, small_image):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # auto -> built-in
    r = dope("--model", checkpoint_path, "--image", small_image, "--visu3d", "-v", "--max-proposals", 30, env=env)
    assert r.returncode == 0, r.stderr
    model = os.path.splitext(os.path.basename(checkpoint_path))[0]
    out = f"{small_image}_{model}_visu3d.jpg"
    img = cv2.imread(out)
    assert img is not None and img.shape == (720, 1280, 3)
    assert os.path.exists(f"{small_image}_{model}.jpg")  # the 2D drawing as well
    assert "builtin renderer" in r.stderr and "no display" in r.stderr


def test_cli_refuses_impossible_3d_options_before_loading_the_model(small_image):
    r = dope("--model", "no/such/model.pth", "--image", small_image, "--visu3d", "--renderer", "builtin",
             "--interactive")
    assert r.returncode == 1 and "interactive" in r.stderr and "Traceback" not in r.stderr
    r = dope("--model", "no/such/model.pth", "--image", small_image, "--interactive")
    assert r.returncode == 1 and "--visu3d" in r.stderr
