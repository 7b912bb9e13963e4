"""The fast paths give what the plain ones give; bench.py runs and reports what it promises.

No timing is asserted here (the test machine's speed is unknown): bench.py is where times are read.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dope.postprocessing import proposals as postprocess
from bench import synthetic_proposals
from conftest import ROOT
from parity import assert_part_close
from ppi_reference import ppi_reference

OVERLAPS = ["bbox", "mje", "torso", "torsohead", "head", "shoulderhead", "torsoLR", "torsoheadLR",
            "shoulderheadLR", "bbox_torsohead"]


def reference(arrays, **kw):
    return ppi_reference(*arrays, **kw)


@pytest.mark.parametrize("part", ["body", "hand", "face"])
@pytest.mark.parametrize("noise", [0.05, 0.15])
def test_ppi_equals_the_plain_version_on_crowded_sets(part, noise):
    # 120 boxes around 4 people: big groups, and with noise 0.15 dozens of modes per person.
    arrays = synthetic_proposals(part, num_boxes=120, num_people=4, pose_noise=noise, seed=1)
    K = {"body": 10, "hand": 5, "face": 10}[part]
    got = postprocess.ppi(*arrays, (720, 1280), K=K)
    assert len(got) >= 4
    assert_part_close(got, reference(arrays, K=K), part)


@pytest.mark.parametrize("iou_func", OVERLAPS)
def test_ppi_equals_the_plain_version_for_every_overlap(iou_func):
    arrays = synthetic_proposals("body", num_boxes=60, num_people=5, pose_noise=0.1, seed=2)
    kw = dict(K=10, iou_func=iou_func, th_iou=0.1 if iou_func not in ("bbox", "bbox_torsohead") else 0.2)
    got = postprocess.ppi(*arrays, None, **kw)
    assert len(got) >= 2
    assert_part_close(got, reference(arrays, **kw), "body")


@pytest.mark.parametrize("kw", [dict(score_th=0.2, th_pose3D=0.1), dict(min_mode_score=0.0, th_persondetect=0.5),
                                dict(th_iou=0.0, th_pose3D=1.0), dict(K=None, score_th=0.0)])
def test_ppi_equals_the_plain_version_with_other_settings(kw):
    arrays = synthetic_proposals("hand", num_boxes=80, num_people=6, pose_noise=0.1, seed=3)
    kw = {"K": 5, **kw}
    assert_part_close(postprocess.ppi(*arrays, None, **kw), reference(arrays, **kw), "hand")


@pytest.mark.parametrize("large_group", [None, 1])
def test_ppi_ties_and_scattered_proposals(large_group, monkeypatch):
    # Saturated probabilities (exact ties, first candidate wins) and isolated proposals (groups of
    # one), as random network weights give: hundreds of small groups; searched together, and (1)
    # one group at a time.
    if large_group:
        monkeypatch.setattr(postprocess, "LARGE_GROUP", large_group)
    rng = np.random.default_rng(4)
    n, a, j = 300, 10, 21
    scores = np.zeros((n, a + 1), np.float32)
    scores[np.arange(n), 1 + rng.integers(0, a, n)] = 1.0
    scores[::7, 0], scores[::7, 1:] = 0.5, 0.05  # some spread ones
    xy = rng.uniform(0, 1200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 80, (n, 2))], 1).astype(np.float32)
    boxes[1::9] = boxes[::9][: len(boxes[1::9])]  # duplicated boxes
    p2 = (boxes[:, None, None, :2] + rng.uniform(0, 20, (n, a, j, 2))).astype(np.float32)
    p3 = rng.normal(0, 0.2, (n, a, j, 3)).astype(np.float32)
    got = postprocess.ppi(scores, boxes, p2, p3, None, K=5)
    assert len(got) > 100
    assert_part_close(got, reference((scores, boxes, p2, p3), K=5), "hand")


def test_greedy_groups_equal_one_leader_at_a_time():
    rng = np.random.default_rng(5)
    for n, density in ((1, 0.5), (40, 0.02), (200, 0.05), (300, 0.6)):
        ov = rng.random((n, n)) < density  # not symmetric: overlap(head, item) may differ from (item, head)
        order = rng.permutation(n)
        label, count = postprocess._greedy_groups(order, lambda h, i: ov[np.ix_(h, i)].copy())
        expected, left, k = np.full(n, -1), list(order), 0
        while left:
            head = left[0]
            taken = [i for i in left if i == head or ov[head, i]]
            expected[taken] = k
            left, k = [i for i in left if i not in set(taken)], k + 1
        assert count == k
        np.testing.assert_array_equal(label, expected)


def test_joint_distance_is_the_plain_formula_to_the_bit():
    rng = np.random.default_rng(6)
    for j, d in ((13, 3), (84, 3), (21, 2), (5, 2)):
        p = rng.normal(0, 1, (50, j, d)).astype(np.float32)
        r = p[7]
        np.testing.assert_array_equal(postprocess._mean_joint_distance(p, r),
                                      np.sqrt(((p - r) ** 2).sum(-1)).mean(-1))


def test_joint_distances_of_many_leaders_are_the_plain_formula_to_the_bit():
    # the joint-major kernel of the mode search, its mean over joints in numpy's summation order
    rng = np.random.default_rng(8)
    for j in (84, 21, 13, 9, 8, 5, 1):
        p = rng.normal(0, 0.3, (300, j, 3)).astype(np.float32)
        leaders = [3, 0, 299, 150]
        members = np.ascontiguousarray(p.transpose(2, 1, 0))
        got = postprocess._joint_distances(members, members[:, :, leaders])
        expected = np.stack([np.sqrt(((p - p[i]) ** 2).sum(-1)).mean(-1) for i in leaders])
        np.testing.assert_array_equal(got, expected)


def test_paired_distances_of_the_rounds_are_the_plain_formula_to_the_bit():
    # the rounds' kernel: each item against its group's leader, tiles of items, coordinate-major rows
    rng = np.random.default_rng(12)
    for j in (84, 21, 13, 9, 8, 5, 1):
        n = 3 * postprocess.DISTANCE_TILE // (2 * j) + 17  # three tiles and a bit
        p = rng.normal(0, 0.3, (n, j, 3)).astype(np.float32)
        p[5, j // 2] = np.nan
        p[9, 0] = np.inf
        p[11] *= np.float32(1e20)  # squares overflow
        partner = np.repeat(np.arange(0, n, 7), 7)[:n]
        partner[::50] = rng.integers(0, n, len(partner[::50]))  # and some anywhere
        rows = postprocess._coordinate_major(p)
        assert rows.shape == (3, n, j) and np.array_equal(rows[1], p[:, :, 1], equal_nan=True)
        with np.errstate(over="ignore", invalid="ignore"):
            got = postprocess._paired_distances(rows, partner)
            expected = np.sqrt(((p - p[partner]) ** 2).sum(-1)).mean(-1)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("part", ["body", "hand", "face"])
@pytest.mark.parametrize("noise", [0.05, 0.15])
def test_mode_search_one_group_at_a_time_equals_all_groups_together(part, noise, monkeypatch):
    # the blocked per-group search (large groups) against the rounds over all groups (small ones),
    # and a mix of both, to the bit
    arrays = synthetic_proposals(part, num_boxes=200, num_people=5, pose_noise=noise, seed=9)
    K = {"body": 10, "hand": 5, "face": 10}[part]
    results = []
    for large in (10 ** 9, 1, 300):
        monkeypatch.setattr(postprocess, "LARGE_GROUP", large)
        results.append(postprocess.ppi(*arrays, None, K=K))
    assert len(results[0]) >= 3
    for other in results[1:]:
        np.testing.assert_array_equal(other.scores, results[0].scores)
        np.testing.assert_array_equal(other.pose2d, results[0].pose2d)
        np.testing.assert_array_equal(other.pose3d, results[0].pose3d)
    monkeypatch.setattr(postprocess, "LARGE_GROUP", 1)
    monkeypatch.setattr(postprocess, "LEADER_BLOCK", 1)  # one leader per block
    assert_part_close(postprocess.ppi(*arrays, None, K=K), reference(arrays, K=K), part)


def test_model_uses_the_checkpoint_tensors_without_copies(checkpoint_dict):
    from dope.network.checkpoint import read_checkpoint
    from dope.network.dopenet import build_model
    ckpt = read_checkpoint(checkpoint_dict)
    net = build_model(ckpt)
    assert not any(t.is_meta for t in [*net.parameters(), *net.buffers()])
    w = net.rpn.head.conv[0][0].weight
    assert w.data_ptr() == ckpt.state_dict["rpn.head.conv.0.0.weight"].data_ptr()
    assert net.rpn.anchor_generator.cell_anchors[0].device.type == "cpu"  # built outside the meta device


def _boxes_everywhere(n: int, rng: torch.Generator, width: float, height: float) -> torch.Tensor:
    """Boxes inside, across and beyond the borders of a width x height image, some under 1 px."""
    xy = torch.rand(n, 2, generator=rng) * torch.tensor([width * 1.4, height * 1.4]) - torch.tensor([width, height]) * 0.2
    wh = torch.rand(n, 2, generator=rng) * torch.tensor([width, height]) * 0.6
    wh[: n // 10] *= 0.002  # tiny: the kernel makes them 1 px
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_gathered_roi_align_equals_torchvisions(layout):
    import torchvision
    from dope.network.ops import roi_align_gathered
    rng = torch.Generator().manual_seed(7)
    features = torch.randn(2, 64, 20, 30, generator=rng).contiguous(memory_format=layout)
    proposals = [_boxes_everywhere(300, rng, 480, 320), _boxes_everywhere(150, rng, 480, 320)]
    proposals[1][:3] = torch.tensor([[0.0, 0.0, 480.0, 320.0], [-16.0, -16.0, 0.0, 0.0], [479.0, 319.0, 500.0, 340.0]])
    expected = torchvision.ops.roi_align(features, proposals, 7, spatial_scale=1 / 16, sampling_ratio=2)
    got = roi_align_gathered(features, proposals, 7, 1 / 16, 2)
    assert got.shape == (450, 64, 7, 7) and got.is_contiguous(memory_format=torch.channels_last)
    assert (expected == 0).float().mean() < 0.5  # most boxes see the map
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_gathered_roi_align_edge_cases():
    from dope.network.ops import roi_align_gathered
    features = torch.randn(1, 8, 5, 6)
    assert roi_align_gathered(features, [torch.zeros(0, 4)], 7, 1 / 16, 2).shape == (0, 8, 7, 7)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [float("nan"), 0.0, 32.0, 32.0], [0.0, 0.0, float("inf"), 8.0]])
    got = roi_align_gathered(features, [boxes], 7, 1 / 16, 2)
    assert torch.isfinite(got[0]).all() and torch.isnan(got[1:]).all()
    with pytest.raises(ValueError, match="fixed sampling ratio"):
        roi_align_gathered(features, [boxes], 7, 1 / 16, 0)


def test_roi_pool_on_cpu_is_the_gathered_one(checkpoint_dict):
    import torchvision
    from dope.network.checkpoint import read_checkpoint
    from dope.network.dopenet import build_model
    heads = build_model(read_checkpoint(checkpoint_dict)).roi_heads
    rng = torch.Generator().manual_seed(3)
    features = torch.randn(1, 1024, 20, 30, generator=rng).contiguous(memory_format=torch.channels_last)
    proposals = [_boxes_everywhere(200, rng, 480, 320)]
    with torch.inference_mode():
        pooled = heads.box_roi_pool(features, proposals)
    expected = torchvision.ops.roi_align(features, proposals, 7, spatial_scale=1 / 16, sampling_ratio=2)
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-6)


def test_channels_last_gives_the_contiguous_results(checkpoint_path, fixture_image):
    from dope import DOPE
    from dope.inputs.sources import load_image
    image = load_image(fixture_image)
    results = []
    for layout in (False, True):
        det = DOPE(checkpoint_path, device="cpu", channels_last=layout, max_proposals=200)
        assert det.channels_last is layout
        assert det.net.channels_last is layout
        seen = []
        # modules both paths call as modules (the CPU fast path runs other convolutions as products)
        hook = det.net.roi_heads.dope_head.resnet_backbone.layer4[0].conv2.register_forward_pre_hook(
            lambda module, inputs: seen.append(("head", inputs[0].is_contiguous(memory_format=torch.channels_last))))
        hook_backbone = det.net.backbone.resnet_backbone.maxpool.register_forward_pre_hook(
            lambda module, inputs: seen.append(("backbone", inputs[0].is_contiguous(memory_format=torch.channels_last))))
        results.append(det(image).to_dict())
        hook.remove(), hook_backbone.remove()
        assert {where for where, _ in seen} == {"head", "backbone"}, seen
        assert all(flag is layout for _, flag in seen), seen  # the backbone and the RoI head alike
    for part in ("body", "hand", "face"):
        assert len(results[0][part]) > 0
        assert_part_close(results[1][part], results[0][part], part)


def run_bench(*args: str) -> str:
    env = {**os.environ, "DOPE_BENCH_CACHE": "/nonexistent-should-not-be-used"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench.py"), *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bench_ppi_mode_reports_every_part():
    out = run_bench("--ppi", "--boxes", "40", "--runs", "1", "--pose-noise", "0.05")
    rows = [line.split() for line in out.splitlines() if line.startswith("noise")]
    assert [r[2] for r in rows] == ["body", "hand", "face"]
    assert all(float(r[4]) > 0 and float(r[5]) > 0 and float(r[6]) > 0 for r in rows)
    assert all(float(r[7].rstrip("x")) == pytest.approx(float(r[6]) / float(r[4]), rel=0.02) for r in rows)
    assert "ppi against the plain PPI: median" in out


def test_bench_ppi_on_the_networks_own_proposals(checkpoint_path):
    out = run_bench("--ppi", "--ppi-network", "--boxes", "40", "--runs", "1", "--pose-noise", "0.05",
                    "--model", checkpoint_path, "--max-proposals", "40")
    rows = [line.split() for line in out.splitlines() if line.startswith("network")]
    assert [r[1] for r in rows] == ["body", "hand", "face"]
    assert all(int(r[2]) > 0 and float(r[3]) > 0 and float(r[5]) > 0 for r in rows)  # found, ppi, plain
    assert len([line for line in out.splitlines() if line.startswith("noise")]) == 3


def test_bench_startup_and_batch_modes_in_one_run(checkpoint_path):
    out = run_bench("--startup", "--startup-rounds", "1", "--batch", "--images", "2", "--size", "64x48",
                    "--max-proposals", "10", "--model", checkpoint_path)
    rows = {name: next(line[len(name):].split() for line in out.splitlines() if line.startswith(name))
            for name in ("import torch", "DOPE(checkpoint)", "dope.py --help")}
    assert all(float(r[0]) > 0 and float(r[1]) > 0 for r in rows.values())
    assert rows["DOPE(checkpoint)"][2].startswith(("+", "-"))  # wall time over import torch
    batch = [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("1", "2", "4")]
    assert [r[0] for r in batch] == ["1", "2", "4"] and all(float(r[1]) > 0 for r in batch)
    assert "video of 2 frames, 64x48" in out


FAKE_PUBLISHED = """import argparse, os, sys, time
p = argparse.ArgumentParser(); p.add_argument("--model"); p.add_argument("--image"); a = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
assert os.path.isfile(os.path.join(here, "models", a.model + ".pth.tgz")), "no checkpoint"
time.sleep(0.5)
open(a.image + "_" + a.model + ".jpg", "wb").write(b"x")
"""


def test_bench_reference_times_the_published_command_against_ours(checkpoint_path, tmp_path):
    # A stand-in for the published folder (its dope.py finds models/NAME.pth.tgz, sleeps, writes a
    # drawing): the harness runs both commands, and writes nothing in the folder it is given.
    published = tmp_path / "published"
    published.mkdir()
    (published / "dope.py").write_text(FAKE_PUBLISHED)
    out = run_bench("--reference", str(published), "--startup-rounds", "1", "--size", "64x48",
                    "--model", checkpoint_path)
    rows = {who: line[len(who):].split() for line in out.splitlines()
            for who in ("published", "this project") if line.startswith(who + " ")}
    assert float(rows["published"][0]) >= 0.5 and float(rows["this project"][0]) > 0
    assert "speed-up over the published pipeline:" in out
    assert sorted(os.listdir(published)) == ["dope.py"]


def test_bench_network_mode_reports_stages_flops_and_memory(checkpoint_path):
    out = run_bench("--model", checkpoint_path, "--size", "160x120", "--runs", "1", "--max-proposals", "50",
                    "--threads", "1")
    for stage in ("preprocess", "backbone", "rpn", "roi_align", "roi_head", "predictors", "decoding",
                  "postprocess", "drawing", "network", "total"):
        assert any(line.split()[0] == stage for line in out.splitlines() if line.strip()), stage
    head = next(line.split() for line in out.splitlines() if line.startswith("roi_head"))
    # ResNet stage 4 on 50 RoIs of 7x7, the products executed. Block 1 as direct convolutions
    # (1x1 on 7x7, 3x3 of stride 2, 1x1, 1x1 downsampling on 4x4): 113.7 M multiply-adds per RoI.
    # Blocks 2 and 3: two 1x1 on 4x4 and a 3x3 as Winograd F(4x4, 3x3) products: 36 (512 x 512)
    # matrices, the input transform (36 x 36 per channel) and the output one (16 x 36 per channel).
    block1 = 49 * 1024 * 512 + 16 * 9 * 512 * 512 + 16 * 512 * 2048 + 16 * 1024 * 2048
    winograd = 36 * 512 * 512 + 36 * 36 * 512 + 16 * 36 * 512
    per_roi = block1 + 2 * (2 * 16 * 512 * 2048 + winograd)  # 201.7 M (256.5 M as direct convolutions)
    assert float(head[3]) == pytest.approx(50 * 2 * per_roi / 1e9, rel=0.01)
    assert "images/s" in out and "peak RSS" in out and "matrix-multiply peak" in out
    assert "1 threads" in out and "50 proposals" in out


def _plain_distances(poses, leaders):
    """(leaders, poses): the plain formula, each leader against every pose, in the poses' dtype."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.stack([np.sqrt(((poses - poses[i]) ** 2).sum(-1)).mean(-1) for i in leaders])


@pytest.mark.parametrize("j", [84, 21, 13, 1])
def test_mode_distance_bound_decides_as_the_plain_formula(j, monkeypatch):
    # thresholds at the quantiles of the exact distances put many pairs within float32 rounding of
    # them; the bound must never decide one of those differently from the formula
    rng = np.random.default_rng(10)
    centre = rng.normal(0, 0.3, (j, 3))
    poses = (centre + rng.normal(0, 0.05, (400, j, 3))).astype(np.float32)
    poses[::9] += rng.normal(0, 0.5, (1, j, 3)).astype(np.float32)  # another person among them
    leaders = np.array([0, 5, 17, 399, 9])
    exact = _plain_distances(poses, leaders)
    for fraction in (0.25, 1.0):  # the undecided pairs one by one, or the whole block exactly
        monkeypatch.setattr(postprocess, "EXACT_FRACTION", fraction)
        for th in [0.0, 1e-3, 0.3, 10.0] + list(np.quantile(exact, [0.05, 0.5, 0.95])):
            # also the float32 neighbours of an exact distance, where a decision flips
            for t in (th, float(np.nextafter(np.float32(th), np.float32(1))), float(exact[1, 3])):
                got = postprocess._ModeDistances(poses, t).within(leaders)
                np.testing.assert_array_equal(got, exact < t)


def test_mode_distance_upper_bound_bounds_the_distance():
    rng = np.random.default_rng(11)
    for scale, offset in ((0.3, 0.0), (1.0, 50.0), (1e-4, 1.0)):  # far from the origin: cancellation
        poses = (offset + rng.normal(0, scale, (200, 84, 3))).astype(np.float32)
        poses[1] = poses[0]  # distance zero
        leaders = np.array([0, 3])
        bound = postprocess._ModeDistances(poses, 0.3)._upper_bound(leaders)
        exact = _plain_distances(poses.astype(np.float64), leaders)
        assert (bound >= exact).all()
        assert bound[0, 1] >= 0


def test_mode_distance_with_non_finite_poses():
    rng = np.random.default_rng(12)
    poses = rng.normal(0, 0.05, (300, 21, 3)).astype(np.float32)
    poses[7, 3] = np.nan
    poses[8, 0, 1] = np.inf
    poses[9] = 1e30  # overflows float32 in the squared norms
    for leaders in (np.array([0, 1]), np.array([7, 8, 9, 0])):
        with np.errstate(over="ignore", invalid="ignore"):  # the exact formula's own warnings
            got = postprocess._ModeDistances(poses, 0.3).within(leaders)
        np.testing.assert_array_equal(got, _plain_distances(poses, leaders) < 0.3)


def test_mode_means_ignore_non_finite_poses_outside_the_modes():
    # few modes take their sums over the pose arrays as they lie: a NaN in a candidate outside every
    # mode must not reach them (it is summed again over the members alone), one inside must
    arrays = synthetic_proposals("body", num_boxes=150, num_people=4, pose_noise=0.05, seed=13)
    scores, boxes, p2, p3 = (a.copy() for a in arrays)
    scores[5, 1:] = 0.0  # proposal 5 has no candidate: its poses are outside every mode
    p2[5], p3[5] = np.nan, np.inf
    got = postprocess.ppi(scores, boxes, p2, p3, None, K=10)
    assert np.isfinite(got.pose2d).all() and np.isfinite(got.pose3d).all()
    assert_part_close(got, reference((scores, boxes, p2, p3), K=10), "body")
    ref = reference((scores, boxes, p2, p3), K=10)
    p2[int(np.argmax(scores[:, 1:].max(1))), :, 0] = np.nan  # inside the best person's mode
    bad = postprocess.ppi(scores, boxes, p2, p3, None, K=10)
    assert np.isnan(bad.pose2d).any() and np.isfinite(bad.pose3d).all()
    assert len(bad) == len(ref)


@pytest.mark.parametrize("legs", [False, True])
@pytest.mark.parametrize("modes", [3, 40])
def test_mode_means_weighted_over_the_arrays_and_gathered_agree_with_float64(legs, modes):
    # both ways of averaging a mode's members (weight matrices over the arrays as they lie; members
    # gathered and added per mode with index_add_) against the float64 weighted mean of each
    # mode's members, bodies' leg columns with their own weights; a NaN in a member reaches its
    # mode only, a NaN outside every mode none
    rng = np.random.default_rng(31 + modes)
    n_rows, j = 600, 13
    rows2d = rng.uniform(0, 1000, (n_rows, 2 * j)).astype(np.float32)
    cand = np.sort(rng.choice(n_rows, 400, replace=False))  # candidates' rows, by mode
    rows3d = rng.normal(0, 1, (len(cand), 3 * j)).astype(np.float32)
    runs = np.sort(rng.choice(np.arange(1, 300), modes - 1, replace=False))
    m = np.sort(rng.choice(len(cand), 300, replace=False))  # members: the rest are outside every mode
    starts = np.concatenate([[0], runs])
    w = rng.uniform(0.01, 1, len(m)).astype(np.float32)
    wl = (w * rng.choice([0.1, 1.0], len(m))).astype(np.float32) if legs else None
    outside = np.setdiff1d(np.arange(len(cand)), m)[0]
    rows2d[cand[outside]] = np.nan
    rows3d[outside] = np.inf
    rows3d[m[starts[1]], 5] = np.nan  # inside mode 1
    ends = np.append(starts[1:], len(m))
    expected2d, expected3d = [], []
    for a, b in zip(starts, ends):
        mine, weight = m[a:b], w[a:b].astype(np.float64)
        e2 = weight @ rows2d[cand[mine]].astype(np.float64) / weight.sum()
        e3 = weight @ rows3d[mine].astype(np.float64) / weight.sum()
        if legs:
            lw = wl[a:b].astype(np.float64)
            e2[:8] = lw @ rows2d[cand[mine], :8].astype(np.float64) / lw.sum()
            e3[:12] = lw @ rows3d[mine, :12].astype(np.float64) / lw.sum()
        expected2d.append(e2)
        expected3d.append(e3)
    for means in (postprocess._mode_means, postprocess._gathered_means):
        with np.errstate(invalid="ignore"):
            got2d, got3d = means(w, wl, m, starts, np.repeat(np.arange(modes), ends - starts), cand, rows2d, rows3d)
        np.testing.assert_allclose(got2d, expected2d, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(got3d, expected3d, rtol=1e-5, atol=1e-5)
        assert np.isnan(got3d[1]).sum() == 1 and np.isfinite(np.delete(got3d, 1, 0)).all()
        assert np.isfinite(got2d).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_groups_from_listed_pairs_equal_the_blocked_cover(seed, monkeypatch):
    # many small people (the sparse pairs and one pass over adjacency lists) against the blocked
    # greedy cover over all (heads, boxes) IoU; boxes touching at the +1 pixel edge, duplicated,
    # degenerate, non-finite, far off
    rng = np.random.default_rng(20 + seed)
    n = 600
    xy = rng.uniform(-50, 1300, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 60, (n, 2))], 1).astype(np.float32)
    boxes[1::13] = boxes[::13][: len(boxes[1::13])]
    edge = boxes[2::17].copy()
    edge[:, 0] = boxes[3::17][: len(edge), 2] + 1  # x1 one pixel past another's x2: inter 0
    boxes[4::17][: len(edge)] = edge[: len(boxes[4::17])]
    boxes[5] = np.nan
    boxes[6, 2] = np.inf
    boxes[7, 0] = -np.inf
    boxes[8] = [1e7, 1e7, 1e7 + 50, 1e7 + 50]
    boxes[9] = [10, 10, 10, 10]
    cand_n = np.repeat(np.arange(n), 2)
    s = rng.random(2 * n).astype(np.float32)
    s[::5] = 0.5  # ties
    with np.errstate(invalid="ignore", over="ignore"):
        assert postprocess._intersecting_pairs(boxes) is not None  # listed by default
    for th in (0.0, 0.2, 0.7):
        with np.errstate(invalid="ignore", over="ignore"):
            listed = postprocess._groups_by_box(cand_n, s, boxes, th)
            monkeypatch.setattr(postprocess, "SPARSE_PAIRS", -1)  # never list pairs
            blocked = postprocess._groups_by_box(cand_n, s, boxes, th)
            monkeypatch.undo()
        assert listed[1] == blocked[1]
        np.testing.assert_array_equal(listed[0], blocked[0])
    assert listed[1] > 100


def test_intersecting_pairs_list_every_overlapping_pair(monkeypatch):
    monkeypatch.setattr(postprocess, "SPARSE_PAIRS", 300)
    rng = np.random.default_rng(30)
    xy = rng.uniform(0, 500, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 60, (300, 2))], 1).astype(np.float32)
    i, j = postprocess._intersecting_pairs(boxes)
    listed = set(zip(i.tolist(), j.tolist())) | set(zip(j.tolist(), i.tolist()))
    assert len(listed) == 2 * len(i)  # each pair once
    iou = postprocess.box_iou_plus1(boxes, boxes)
    np.fill_diagonal(iou, 0)
    assert set(zip(*np.nonzero(iou > 0))) <= listed
    monkeypatch.undo()
    assert postprocess._intersecting_pairs(np.tile(boxes[:1], (100, 1))) is None  # all meet: not listed


def test_bench_fast_paths_times_the_command_without_each(checkpoint_path):
    from bench import FAST_PATHS
    out = run_bench("--fast-paths", "--startup-rounds", "1", "--size", "64x48", "--model", checkpoint_path)
    rows = {line.split("  ")[1].strip(): line.split()[-3:] for line in out.splitlines() if line.startswith("  ")
            and line.split()[-1].replace(".", "").isdigit()}
    assert set(rows) == {name if name == "all on" else f"without {name}" for name in FAST_PATHS}, out
    assert all(float(v) > 0 for r in rows.values() for v in r)
    assert rows["all on"][2] == "1.000"
