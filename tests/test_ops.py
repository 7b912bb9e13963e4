"""dope/network/ops.py: torchvision's operators as the network calls them (the same results)."""
from __future__ import annotations

import torch

from dope.network import ops


def test_roi_align_is_torchvisions():
    import torchvision
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 20, 30, generator=g)
    boxes = []
    for n in (7, 5):
        xy = torch.rand(n, 2, generator=g) * 200
        boxes.append(torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 150], 1))
    for kw in (dict(spatial_scale=1 / 16, sampling_ratio=2), dict(spatial_scale=0.1, sampling_ratio=-1, aligned=True)):
        expected = torchvision.ops.roi_align(feats, boxes, (7, 7), **kw)
        assert expected.shape == (12, 8, 7, 7)
        assert torch.equal(ops.roi_align(feats, boxes, (7, 7), **kw), expected)
        assert torch.equal(ops.roi_align(feats, boxes, 7, **kw), expected)
        rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
        assert torch.equal(ops.roi_align(feats, rois, 7, **kw), expected)


def test_roi_align_rejects_boxes_of_the_wrong_shape():
    import pytest
    with pytest.raises(ValueError, match="boxes"):
        ops.roi_align(torch.zeros(1, 2, 4, 4), torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="boxes"):
        ops.roi_align(torch.zeros(1, 2, 4, 4), [torch.zeros(3, 5)], 2)


def test_nms_is_torchvisions():
    import torchvision
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(300, 2, generator=g) * 500
    boxes = torch.cat([xy, xy + 10 + torch.rand(300, 2, generator=g) * 100], 1)
    scores = torch.rand(300, generator=g)
    keep = ops.nms(boxes, scores, 0.3)
    assert 10 < len(keep) < 300
    assert torch.equal(keep, torchvision.ops.nms(boxes, scores, 0.3))


def test_skip_random_init_skips_meta_tensors_only():
    cpu = torch.zeros(1000)
    with ops.skip_random_init():
        layer = torch.nn.Conv2d(4, 8, 3, device="meta")
        torch.nn.init.normal_(cpu)
        cpu2 = torch.zeros(10).uniform_()
    assert layer.weight.is_meta and layer.weight.shape == (8, 4, 3, 3)
    assert cpu.std() > 0.5 and (cpu2 > 0).all()  # initialised as usual
