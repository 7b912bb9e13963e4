"""3x3 convolutions (stride 1, padding 1) as Winograd F(m x m, 3 x 3) matrix products, for a CPU.

Winograd's minimal filtering computes an m x m tile of a 3x3 convolution from an (m+2) x (m+2)
tile of its input with (m+2)^2 multiplications per channel pair instead of 9 m^2: 2.25x fewer
for m = 2, 4x fewer for m = 4. Both sides are transformed by small fixed matrices (Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", CVPR 2016), and the products over channels
become (m+2)^2 independent matrix products (tiles x C) @ (C x K), which reach the machine's
matrix-multiply speed where oneDNN's direct convolutions of DOPE's 4x4 RoI maps do not. The
weights' transform is made once per convolution, on first use, and kept with it.

Accuracy, float32, against float64 convolutions of random data on DOPE's shapes (largest error over
the largest output): F(2x2) 5-7e-7, F(4x4) 1e-5, oneDNN's direct convolution 1-2e-6. Through the
network (1280x720, the synthetic checkpoint, against the network in float64), F(4x4) gives the
same errors as oneDNN's convolutions to two digits (features 6e-7, scores 1e-6, 2D 1.2e-4 px), and
the fixtures' deviations are unchanged; the network uses F(4x4) (`TILE`), 3-4x faster than oneDNN
on stage 4's 4x4 maps, 2x on the RPN's.

Only what the CPU path needs: float32, a channels-last input, no gradient through the weights.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

def _transforms(points: int) -> tuple[Tensor, Tensor, Tensor]:
    """(input, filter, output) matrices B^T, G, A^T of F(m x m, 3 x 3), as Lavin and Gray give them."""
    if points == 2:  # interpolation points 0, 1, -1, infinity: every entry exact in float32
        return (torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float64),
                torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64),
                torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float64))
    # points 0, 1, -1, 2, -2, infinity
    return (torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                          [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64),
            torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                          [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64),
            torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                         dtype=torch.float64))


# Two-sided transforms of a flattened (row-major) tile: vec(T X T^T) = (T kron T) vec(X).
# {m: (input (a^2, a^2), filter (a^2, 9), output (m^2, a^2))}, a = m + 2, float32
_KRON = {m: (torch.kron(bt, bt).float(), torch.kron(g, g).float(), torch.kron(at, at).float())
         for m in (2, 4) for bt, g, at in [_transforms(m)]}
TILE = 4  # m: output pixels per tile side (2 or 4)
# Below this many input channels oneDNN's own kernels were faster (128 channels on 100x167: 0.4x).
MIN_CHANNELS = 256


def usable(conv: nn.Module, x: Tensor) -> bool:
    """Whether `conv(x)` can go through `conv3x3`: a plain 3x3 convolution with stride 1 and
    padding 1 of at least MIN_CHANNELS channels, a float32 channels-last x on the CPU, and no
    gradient wanted for the weights."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros" and conv.in_channels >= MIN_CHANNELS
            and x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            and not (torch.is_grad_enabled() and (conv.weight.requires_grad or x.requires_grad)))


def filter_transform(weight: Tensor, m: int = TILE) -> Tensor:
    """(K, C, 3, 3) weights -> ((m+2)^2, C, K): G g G^T of every filter, a (C, K) matrix per tile cell.

    One matrix product; the result is its transposed view where the (C, K) matrices are large (a
    copy into (C, K) order took 0.25 s for the RPN's 1024 x 1024, and the products read either
    layout at the same speed there), a contiguous copy otherwise (small products read it faster)."""
    k, c = weight.shape[:2]
    with torch.no_grad():
        u = torch.mm(_KRON[m][1], weight.detach().reshape(k * c, 9).t()).view(-1, k, c).transpose(1, 2)
    return u if c * k > 512 * 512 else u.contiguous()


def _transformed(conv: nn.Conv2d, m: int) -> Tensor:
    """The convolution's transformed filters for tiles of m, made on first use and remade when its
    weights change (another tensor, or the same one written to)."""
    w = conv.weight
    key = (w.data_ptr(), w._version, tuple(w.shape), w.dtype, w.device)
    kept: dict[int, tuple] = conv.__dict__.setdefault("_winograd", {})  # a plain attribute: not in the state dict
    if m not in kept or kept[m][0] != key:
        kept[m] = (key, filter_transform(w, m))
    return kept[m][1]


def conv3x3(x: Tensor, conv: nn.Conv2d, m: int = TILE) -> Tensor:
    """conv(x) for a `usable` conv: (N, C, H, W) channels-last -> (N, K, H, W) channels-last, float32."""
    u = _transformed(conv, m)
    into, _, back = _KRON[m]
    n, c, h, w = x.shape
    k = u.shape[2]
    a = m + 2
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
    v = torch.mm(into, d).view(a * a, n * th * tw, c)  # B^T d B of every tile and channel
    del d
    prod = torch.bmm(v, u)  # (a^2, tiles, K): the products summed over channels, cell by cell
    del v
    y = torch.mm(back, prod.view(a * a, -1))  # A^T M A: (m*m, tiles*K)
    del prod
    out = torch.empty((n, th * m, tw * m, k), dtype=x.dtype)
    # Tiles back into the image, the bias added on the way (one pass).
    torch.add(y.view(m, m, n, th, tw, k).permute(2, 3, 0, 4, 1, 5), conv.bias if conv.bias is not None else 0,
              out=out.view(n, th, m, tw, m, k))
    if th * m != h or tw * m != w:
        out = out[:, :h, :w].contiguous()
    return out.permute(0, 3, 1, 2)
