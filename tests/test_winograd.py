"""dope/network/winograd.py: 3x3 convolutions as Winograd products, against float64 convolutions."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dope.network import winograd
from dope.network.checkpoint import read_checkpoint
from dope.network.dopenet import build_model, fold_batchnorms


def _conv(c: int, k: int, seed: int, bias: bool = True) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(c, k, 3, padding=1, bias=bias).requires_grad_(False)
    conv.weight.mul_(3)  # outputs of order 1 from inputs of order 1
    return conv


def _input(n: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) - 0.3
    return x.contiguous(memory_format=torch.channels_last)


def _relative_error(got: torch.Tensor, x: torch.Tensor, conv: nn.Conv2d) -> float:
    b = None if conv.bias is None else conv.bias.double()
    ref = nn.functional.conv2d(x.double(), conv.weight.double(), b, padding=1)
    assert got.shape == ref.shape
    return ((got.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(autouse=True)
def high_precision():
    """Winograd follows torch's float32 matmul precision: allowed below "highest" (the command sets "high")."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    yield
    torch.set_float32_matmul_precision(before)


def test_toom_cook_gives_lavin_and_grays_f4x3():
    """The construction reproduces the published F(4, 3) matrices (points 0, 1, -1, 2, -2)."""
    bt, g, at = winograd._toom_cook(4, 3)
    expected_bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                   [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    expected_g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
    expected_at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    for got, want in ((bt, expected_bt), (g, expected_g), (at, expected_at)):
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 4, 6])
def test_one_dimensional_algorithms_correlate(m):
    bt, g, at = winograd._toom_cook(m, 3)
    gen = torch.Generator().manual_seed(m)
    d, taps = torch.randn(m + 2, generator=gen, dtype=torch.float64), torch.randn(3, generator=gen, dtype=torch.float64)
    direct = torch.stack([d[i:i + 3] @ taps for i in range(m)])
    torch.testing.assert_close(at @ ((g @ taps) * (bt @ d)), direct, rtol=0, atol=1e-12)


# F(2x2) is more exact than oneDNN's direct convolution (1-2e-6 here); F(4x4) within 1e-5 (module docstring).
BOUNDS = {2: 2e-6, 4: 4e-5}


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape", [(3, 256, 4, 4), (1, 256, 9, 13), (2, 256, 5, 7), (2, 256, 1, 1), (1, 256, 2, 3),
                                   (1, 300, 8, 8)])
def test_equals_a_float64_convolution(m, shape):
    n, c, h, w = shape
    conv, x = _conv(c, 264, seed=h * w), _input(n, c, h, w, seed=c + h)
    with torch.no_grad():
        y = winograd.conv3x3(x, conv, m)
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    assert _relative_error(y, x, conv) < BOUNDS[m]


def test_a_wrong_transform_is_caught():
    """The bound above would see an error in one cell of the filter transform."""
    conv, x = _conv(256, 256, seed=1), _input(2, 256, 4, 4, seed=2)
    u = winograd._transformed(conv, winograd.plan(4))
    u[7].mul_(1.001)  # the kept transform, edited where it lies
    assert _relative_error(winograd.conv3x3(x, conv, 4), x, conv) > BOUNDS[4]


def test_no_bias_no_rois_and_large_filters():
    conv, x = _conv(256, 256, seed=3, bias=False), _input(1, 256, 6, 10, seed=4)
    assert _relative_error(winograd.conv3x3(x, conv), x, conv) < BOUNDS[4]
    empty = winograd.conv3x3(x[:0], conv)
    assert empty.shape == (0, 256, 6, 10)
    big = _conv(520, 520, seed=5)  # (C, K) > 512 x 512: the transform is kept as a transposed view
    assert not winograd._transformed(big, winograd.plan(4)).is_contiguous()
    xb = _input(1, 520, 7, 9, seed=6)
    assert _relative_error(winograd.conv3x3(xb, big, 4), xb, big) < BOUNDS[4]


def test_the_kept_transform_follows_the_weights():
    conv, x = _conv(256, 256, seed=7), _input(1, 256, 4, 4, seed=8)
    first = winograd.conv3x3(x, conv)
    conv.weight.mul_(2)  # in place: the tensor's version changes
    assert _relative_error(winograd.conv3x3(x, conv), x, conv) < BOUNDS[4]
    conv.weight = nn.Parameter(conv.weight / 4, requires_grad=False)  # another tensor
    assert _relative_error(winograd.conv3x3(x, conv), x, conv) < BOUNDS[4]
    torch.testing.assert_close(winograd.conv3x3(x, conv), first / 2 + conv.bias.reshape(1, -1, 1, 1) / 2,
                               rtol=1e-4, atol=1e-4)
    assert "_winograd" not in "".join(conv.state_dict())


def test_a_transform_made_in_inference_mode_serves_outside_it():
    conv, x = _conv(256, 256, seed=9), _input(1, 256, 4, 4, seed=10)
    with torch.inference_mode():
        a = winograd.conv3x3(x, conv)
    with torch.no_grad():
        b = winograd.conv3x3(x, conv)
    assert torch.equal(a, b)


def test_usable_only_where_it_applies():
    x = _input(1, 256, 4, 4, seed=11)
    conv = _conv(256, 256, seed=12)
    assert winograd.usable(conv, x)
    assert not winograd.usable(conv, x.contiguous())  # not channels-last
    assert not winograd.usable(conv, x.double())
    assert not winograd.usable(_conv(128, 128, seed=0), _input(1, 128, 4, 4, seed=0))  # too few channels
    for changed in (dict(stride=2), dict(padding=0), dict(dilation=2, padding=2), dict(groups=2),
                    dict(padding_mode="reflect")):
        assert not winograd.usable(nn.Conv2d(256, 256, 3, **{"padding": 1, **changed}), x), changed
    assert not winograd.usable(nn.Conv2d(256, 256, 1), x)
    trained = nn.Conv2d(256, 256, 3, padding=1)  # weights that want gradients, with grad mode on
    assert not winograd.usable(trained, x)
    with torch.no_grad():
        assert winograd.usable(trained, x)
    torch.set_float32_matmul_precision("highest")  # torch's default: the user's own convolutions
    assert not winograd.usable(conv, x)


def test_the_network_runs_its_3x3_convolutions_through_it(checkpoint_dict, monkeypatch):
    net = fold_batchnorms(build_model(read_checkpoint(checkpoint_dict)))
    net.channels_last = True
    used = []
    real = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda x, conv, *a: used.append(conv) or real(x, conv, *a))
    r = net.backbone.resnet_backbone
    x = torch.rand(1, 3, 128, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fast = net([x[0]])
        monkeypatch.setattr(winograd, "MIN_CHANNELS", 10 ** 9)  # oneDNN's convolutions everywhere
        calls = len(used)
        plain = net([x[0]])
    assert len(used) == calls
    expected = {id(b.conv2) for layer in (r.layer3, r.layer4) for b in layer if b.conv2.stride == (1, 1)}
    expected.add(id(net.rpn.head.conv[0][0]))
    assert {id(c) for c in used} == expected and len(expected) == 5 + 2 + 1
    # The same proposals, maybe in another order where objectness scores tie to float noise, and NMS
    # may keep the other of two near-duplicates (0.09 px apart: so do oneDNN's two memory layouts).
    distance, match = torch.cdist(fast[0]["boxes"], plain[0]["boxes"]).min(1)
    assert len(fast[0]["boxes"]) == len(plain[0]["boxes"]) > 100 and distance.max() < 0.2
    assert len(set(match.tolist())) == len(match)
    for part in ("body", "hand", "face"):
        torch.testing.assert_close(fast[0][part]["scores"], plain[0][part]["scores"][match], rtol=0, atol=1e-5)
        torch.testing.assert_close(fast[0][part]["pose2d"], plain[0][part]["pose2d"][match], rtol=0, atol=1e-2)
