"""A pose's 3D x and y brought towards its 2D pose (dope.motion.agreement): what a camera explains
is kept, a share of the 3D error the 2D pose does not share is taken out, z is never touched, and
poses whose 3D frame is not the image's are left alone."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scenes import make_family_scene
from benchmarks.tracking import frames_of, match_bodies, pose_metrics
from dope.motion.agreement import AMOUNT, agree_with_2d
from dope.motion.smoothing import smooth
from dope.motion.tracking import track


def seen(n, rng, depth=4.0, off_centre=1.5, focal=1000.0):
    """n bodies (float[n, 13, 3], camera frame: x right, y down, z away; metres) at `depth`,
    `off_centre` metres to the side, and their pinhole projections (pixels): the 3D poses centred,
    in the detector's axes (x left, y up)."""
    pose = rng.normal(0.0, [0.2, 0.5, 0.12], (n, 13, 3))
    cam = pose + np.array([off_centre, 0.3, depth])
    pose2d = focal * cam[..., :2] / cam[..., 2:] + np.array([640.0, 360.0])
    pose3d = (cam - cam.mean(1, keepdims=True)) * np.array([-1.0, -1.0, 1.0])
    return pose2d, pose3d


def test_3d_error_that_the_2d_pose_does_not_share_is_reduced_and_depth_is_untouched():
    rng = np.random.default_rng(0)
    pose2d, truth = seen(400, rng)
    noisy = truth + rng.normal(0.0, 0.02, truth.shape)
    out = agree_with_2d(pose2d, noisy, amount=0.2)
    err = lambda p: np.linalg.norm(p[..., :2] - truth[..., :2], axis=-1).mean()
    # a fifth of the error beyond what the fit absorbs (3 of 13 degrees of freedom): about 15%
    assert err(out) < 0.9 * err(noisy), (err(out), err(noisy))
    assert np.array_equal(out[..., 2], noisy[..., 2])
    # more of it with a larger share, and the change is that share of the residual only
    half = agree_with_2d(pose2d, noisy, amount=0.5)
    assert err(half) < err(out)
    assert np.allclose(half[..., :2] - noisy[..., :2], 2.5 * (out[..., :2] - noisy[..., :2]))


def test_a_pose_that_agrees_with_its_2d_pose_is_left_as_it_is():
    rng = np.random.default_rng(1)
    pose3d = rng.normal(0.0, 0.3, (20, 13, 3))
    pose3d -= pose3d.mean(1, keepdims=True)
    # a linear camera: any scale and direction of the axes, and a depth term (off the image centre)
    pose2d = np.stack([500 - 180 * pose3d[..., 0] + 40 * pose3d[..., 2], 300 + 170 * pose3d[..., 1]], -1)
    out = agree_with_2d(pose2d, pose3d)
    assert np.abs(out - pose3d).max() < 1e-6  # (a micrometre: the fit is computed in float32)
    # the real camera (a pinhole), exactly: the same (the fit is exact for it)
    pose2d, truth = seen(50, rng, depth=3.0, off_centre=1.0)
    assert np.abs(agree_with_2d(pose2d, truth) - truth).max() < 1e-5


def test_a_3d_frame_that_is_not_the_image_s_and_poses_that_cannot_be_fitted_are_left_alone():
    rng = np.random.default_rng(2)
    pose2d, pose3d = seen(30, rng)
    turned = pose3d[..., [1, 0, 2]]  # 3D x is the image's y: the 2D pose explains little of it
    noisy = turned + np.random.default_rng(3).normal(0, 0.02, turned.shape)
    assert np.array_equal(agree_with_2d(pose2d, noisy), noisy)
    # a joint not found, too few joints, nothing to take, no poses
    broken = pose3d + np.random.default_rng(4).normal(0, 0.02, pose3d.shape)
    broken[0, 3] = np.nan
    out = agree_with_2d(pose2d, broken)
    assert np.array_equal(out[0], broken[0], equal_nan=True) and not np.array_equal(out[1:], broken[1:])
    assert np.array_equal(agree_with_2d(pose2d[:, :3], broken[:, :3]), broken[:, :3], equal_nan=True)
    assert np.array_equal(agree_with_2d(pose2d, broken, amount=0.0), broken, equal_nan=True)
    assert agree_with_2d(np.zeros((0, 13, 2)), np.zeros((0, 13, 3))).shape == (0, 13, 3)
    # a pose without depth is fitted on its 2D pose alone
    flat2d, flat = seen(30, rng)
    flat[..., 2] = 0.0
    flat2d = np.stack([640 - 250 * flat[..., 0], 360 - 250 * flat[..., 1]], -1)
    noisy = flat + np.concatenate([rng.normal(0, 0.02, flat[..., :2].shape), np.zeros(flat[..., 2:].shape)], -1)
    out = agree_with_2d(flat2d, noisy)
    assert np.abs(out - flat).mean() < 0.9 * np.abs(noisy - flat).mean()
    # float32 poses (what results hold) stay float32
    assert agree_with_2d(pose2d.astype(np.float32), broken.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_both_smoothers_bring_3d_poses_nearer_the_truth_and_leave_2d_as_it_was(mode):
    scene = make_family_scene("noisy_scores", 3, 90)
    tracked = list(track(frames_of(scene)))
    runs = {0.0: [f.result for f in smooth(iter(tracked), mode, agree=0.0)],
            AMOUNT: [f.result for f in smooth(iter(tracked), mode)]}  # (the default)
    metrics = {}
    for agree, results in runs.items():
        matches = [match_bodies(r, people) for r, people in zip(results, scene.truth)]
        metrics[agree] = pose_metrics(results, scene, matches)
    assert metrics[AMOUNT]["err3d"] < 0.95 * metrics[0.0]["err3d"], metrics
    assert metrics[AMOUNT]["err2d"] == metrics[0.0]["err2d"]
    for a, b in zip(runs[0.0], runs[AMOUNT]):
        assert np.array_equal(a.body.pose2d, b.body.pose2d) and np.array_equal(a.hand.pose2d, b.hand.pose2d)
    with pytest.raises(ValueError, match="agree"):
        list(smooth(iter(tracked[:2]), mode, agree=1.5))


def test_joints_at_the_image_s_border_are_left_out_of_the_fit_and_keep_their_3d():
    """A detector puts joints outside the image on its border, or guesses them: their 2D says
    nothing of their 3D. The fit is made on the joints inside alone, and a pose mostly outside is
    left as it is."""
    rng = np.random.default_rng(5)
    pose2d, truth = seen(40, rng, off_centre=0.0)
    noisy = truth + rng.normal(0.0, 0.02, truth.shape)
    cut = pose2d.copy()
    cut[:, :3, 0] = 0.0  # three joints clamped to the left border
    out = agree_with_2d(cut, noisy, image=(1280, 1200))
    assert np.array_equal(out[:, :3], noisy[:, :3])
    assert np.abs(out[:, 3:] - agree_with_2d(cut[:, 3:], noisy[:, 3:])).max() < 1e-6
    assert not np.array_equal(out[:, 3:], noisy[:, 3:])
    # without the image's size, the clamped joints spoil the fit: most poses are left alone
    # (the fit explains less than `min_fit`) or changed everywhere
    assert not np.allclose(agree_with_2d(cut, noisy)[:, 3:], out[:, 3:], atol=1e-4)
    cut[:, :7, 0] = -50.0  # 7 of 13 outside: left alone
    assert np.array_equal(agree_with_2d(cut, noisy, image=(1280, 1200)), noisy)
