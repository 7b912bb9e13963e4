"""3x3 convolutions (stride 1, padding 1) as Winograd matrix products, for a CPU.

Winograd's minimal filtering F(m, 3) computes m outputs of a 3-tap correlation from m + 2 inputs
with m + 2 multiplications instead of 3m; in two dimensions, an m x m tile of a 3x3 convolution
costs (m+2)^2 multiplications per channel pair instead of 9 m^2 (4x fewer for m = 4). Inputs and
filters are transformed by small fixed matrices, built here by the Toom-Cook construction (Lavin
and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016), and the products over
channels become (m+2)^2 independent matrix products (tiles x C) @ (C x K), which reach the
machine's matrix-multiply speed where oneDNN's direct convolutions of DOPE's 4x4 RoI maps do not.

The filters' transform is made once per convolution, on first use, and kept with it.

Accuracy, float32, against float64 convolutions of random data on DOPE's shapes (largest error
over the largest output): F(4x4) about 1e-5, F(2x2) 5-7e-7, oneDNN's direct convolution 1-2e-6.
Through the network (1280x720, the synthetic checkpoint, against the network in float64) F(4x4)
gives the same errors as oneDNN's convolutions to two digits (features 6e-7, scores 1e-6, 2D
1.2e-4 px), and the fixtures' deviations are unchanged. The network uses F(4x4)
(`TILE`): 3-4x faster than oneDNN on stage 4's 4x4 maps, 2x on the RPN's.

Stride 2 (the first 3x3 of stages 3 and 4) stays oneDNN's: as F(2, 2) over the even inputs plus
products over the odd ones it was 12% faster on stage 4's 7x7 maps alone, too little to see in the
stage's time, and slower on stage 3's.

Only what the CPU path needs: float32, a channels-last input, no gradient through the weights.

It follows torch's float32 matmul precision (`torch.set_float32_matmul_precision`): at "highest",
torch's default, the convolutions stay oneDNN's, since Winograd's rounding is not theirs; at
"high" or "medium" they may take this path. The command line sets "high" in its own process
(which changes no other operation on the CPUs measured: see docs/performance.md).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

TILE = 4  # m: output pixels per tile side
# Below this many input channels oneDNN's own kernels were faster (128 channels on 100x167: 0.9x).
MIN_CHANNELS = 256
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)  # interpolation points, infinity added to them


def _toom_cook(m: int, r: int) -> tuple[Tensor, Tensor, Tensor]:
    """F(m, r) in one dimension, float64: (B^T (n, n), G (n, r), A^T (m, n)), n = m + r - 1, with
    y = A^T [(G g) * (B^T d)] the m outputs of correlating n inputs d with r taps g.

    A^T evaluates at the points (and takes the leading coefficient at infinity), G holds the
    Lagrange-scaled filter evaluations; B^T is the one matrix that makes the identity hold, solved
    for and checked to be exact."""
    n = m + r - 1
    points = torch.tensor(_POINTS[:n - 1], dtype=torch.float64)
    at = torch.zeros(m, n, dtype=torch.float64)
    g = torch.zeros(n, r, dtype=torch.float64)
    at[:, :n - 1] = points[None, :] ** torch.arange(m, dtype=torch.float64)[:, None]
    at[m - 1, n - 1] = 1
    others = points[:, None] - points[None, :]
    scale = torch.where(torch.eye(n - 1, dtype=torch.bool), 1.0, others).prod(1)
    g[:n - 1] = points[:, None] ** torch.arange(r, dtype=torch.float64)[None, :] / scale[:, None]
    g[n - 1, r - 1] = 1
    # sum_j A^T[i, j] G[j, k] B^T[j, l] = 1 if l == i + k else 0, for every output i, tap k, input l
    system = (at[:, None, :] * g.t()[None, :, :]).reshape(m * r, n)
    target = torch.zeros(m, r, n, dtype=torch.float64)
    for i in range(m):
        for k in range(r):
            target[i, k, i + k] = 1
    bt = torch.linalg.lstsq(system, target.reshape(m * r, n)).solution
    assert torch.allclose(system @ bt, target.reshape(m * r, n), atol=1e-12), "not a minimal filtering algorithm"
    return bt, g, at


@dataclass(frozen=True, eq=False)  # one object per m: plan() keeps them
class Plan:
    """A 2D algorithm for 3x3 filters: m x m output tiles from span x span input tiles (span = m + 2,
    stepping m), with span x span products. Matrices, float32, on flattened (row-major) tiles,
    vec(T X T^T) = (T kron T) vec(X): into (span^2, span^2) = B^T kron B^T, filters (span^2, 9) =
    G kron G, back (m^2, span^2) = A^T kron A^T. The Kronecker products are sparse, but one dense
    product reads the data once: 1.6-5x faster than two one-sided ones on three of DOPE's four
    shapes (0.8x on stage 3's)."""
    m: int
    into: Tensor
    filters: Tensor
    back: Tensor

    @property
    def span(self) -> int:
        return self.m + 2


@functools.lru_cache(maxsize=None)
def plan(m: int) -> Plan:
    bt, g, at = _toom_cook(m, 3)
    return Plan(m, into=torch.kron(bt, bt).float(), filters=torch.kron(g, g).float(), back=torch.kron(at, at).float())


def usable(conv: nn.Module, x: Tensor) -> bool:
    """Whether `conv(x)` can go through `conv3x3`: torch's float32 matmul precision below
    "highest", a plain 3x3 convolution with stride 1 and padding 1 of at least MIN_CHANNELS
    channels, a float32 channels-last x on the CPU, and no gradient wanted."""
    return (torch.get_float32_matmul_precision() != "highest" and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros" and conv.in_channels >= MIN_CHANNELS
            and x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not (torch.is_grad_enabled() and (conv.weight.requires_grad or x.requires_grad)))


def filter_transform(weight: Tensor, algorithm: Plan) -> Tensor:
    """(K, C, 3, 3) weights -> (span^2, C, K): G g G^T of every filter, a (C, K) matrix per cell.

    One matrix product; the result is its transposed view where the (C, K) matrices are large (a
    copy into (C, K) order took 0.25 s for the RPN's 1024 x 1024, and the products read either
    layout at the same speed there), a contiguous copy otherwise (small products read it faster)."""
    k, c = weight.shape[:2]
    with torch.no_grad():
        u = torch.mm(algorithm.filters, weight.reshape(k * c, 9).t()).view(-1, k, c).transpose(1, 2)
    return u if c * k > 512 * 512 else u.contiguous()


def _transformed(conv: nn.Conv2d, algorithm: Plan) -> Tensor:
    """The convolution's transformed filters for `algorithm`, made on first use and remade when its
    weights change (another tensor, or the same one written to)."""
    w = conv.weight
    key = (w.data_ptr(), w._version, tuple(w.shape), w.dtype, w.device)
    kept: dict[Plan, tuple] = conv.__dict__.setdefault("_winograd", {})  # a plain attribute: not in the state dict
    if algorithm not in kept or kept[algorithm][0] != key:
        kept[algorithm] = (key, filter_transform(w, algorithm))
    return kept[algorithm][1]


def conv3x3(x: Tensor, conv: nn.Conv2d, m: int = TILE) -> Tensor:
    """conv(x) for a `usable` conv: (N, C, H, W) channels-last -> (N, K, H, W) channels-last, float32.
    m: output tile side."""
    algorithm = plan(m)
    u = _transformed(conv, algorithm)
    n, c, h, w = x.shape
    k = u.shape[2]
    a = algorithm.span
    th, tw = -(-h // m), -(-w // m)  # tiles down and across; the last ones may overhang
    # The input, zero-padded by one pixel (and to whole tiles), pixels-major: (N, H', W', C).
    padded = x.new_zeros((n, th * m + 2, tw * m + 2, c))
    padded[:, 1:h + 1, 1:w + 1].copy_(x.permute(0, 2, 3, 1))
    sn, sh, sw, sc = padded.stride()
    # Overlapping a x a input tiles, cell-major: d[cell, tile, channel].
    tiles = padded.as_strided((a, a, n, th, tw, c), (sh, sw, sn, m * sh, m * sw, sc))
    d = torch.empty((a * a, n * th * tw * c), dtype=x.dtype)
    d.view(a, a, n, th, tw, c).copy_(tiles)
    del padded, tiles  # each temporary goes as soon as it is used: the RPN's are 20-40 MB each
    v = torch.mm(algorithm.into, d).view(a * a, n * th * tw, c)  # B^T d B of every tile and channel
    del d
    prod = torch.bmm(v, u)  # (a^2, tiles, K): the products summed over channels, cell by cell
    del v
    y = torch.mm(algorithm.back, prod.view(a * a, -1))  # A^T M A: (m^2, tiles * K)
    del prod
    out = torch.empty((n, th * m, tw * m, k), dtype=x.dtype)
    # Tiles back into the image, the bias added on the way (one pass).
    torch.add(y.view(m, m, n, th, tw, k).permute(2, 3, 0, 4, 1, 5), conv.bias if conv.bias is not None else 0,
              out=out.view(n, th, m, tw, m, k))
    if th * m != h or tw * m != w:
        out = out[:, :h, :w].contiguous()
    return out.permute(0, 3, 1, 2)
