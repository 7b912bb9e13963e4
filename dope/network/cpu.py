"""The network's CPU fast paths: ResNet bottlenecks with folded batch norms in channels-last, their
1x1 convolutions as matrix products over the pixels (stage 4), their 3x3 ones as Winograd products
where torch's float32 matmul precision allows it (winograd.py). Public torch operators only; each
is checked against torchvision's own blocks by tests/test_model.py and tests/test_winograd.py, and
docs/performance.md says what each buys in the whole command.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dope.network import winograd


def _is_1x1(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.padding == (0, 0)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is not None)


def _folded(block: nn.Module) -> bool:
    """Whether a torchvision Bottleneck has its batch norms folded (fold_batchnorms)."""
    down = getattr(block, "downsample", None)  # a BasicBlock (ResNet-18/34) has no bn3: never taken
    return (all(isinstance(getattr(block, f"bn{i}", None), nn.Identity) for i in (1, 2, 3))
            and (down is None or (len(down) == 2 and isinstance(down[1], nn.Identity))))


def _matmul_ready(block: nn.Module) -> bool:
    """Whether a torchvision Bottleneck has its batch norms folded and plain 1x1s."""
    down = getattr(block, "downsample", None)
    return (_folded(block) and _is_1x1(block.conv1) and _is_1x1(block.conv3)
            and (down is None or _is_1x1(down[0])))


def _conv1x1(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """A 1x1 convolution (with bias, any stride) of a channels-last x as one matrix product over its
    pixels: (N, C, H, W) -> (N, C', H', W'), channels-last."""
    stride = conv.stride
    if stride != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    n, c, h, w = x.shape
    out = torch.addmm(conv.bias, x.permute(0, 2, 3, 1).reshape(n * h * w, c), conv.weight.reshape(-1, c).t())
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def _cpu_bottleneck(block: nn.Module, x: Tensor, *, matmul_1x1: bool) -> Tensor:
    """torchvision's Bottleneck.forward with folded batch norms (`_folded`) on a CPU: its 3x3
    convolution as Winograd products where `winograd.usable` (stride 1, 256 channels or more, and
    torch's float32 matmul precision not "highest"), its 1x1 ones as `_conv1x1` matrix products if
    matmul_1x1 (the block `_matmul_ready`), else oneDNN's."""
    def one(t: Tensor, conv: nn.Module) -> Tensor:
        return _conv1x1(t, conv) if matmul_1x1 else conv(t)

    out = one(x, block.conv1).relu_()
    if winograd.usable(block.conv2, out):
        out = winograd.conv3x3(out, block.conv2).relu_()
    else:
        out = block.conv2(out).relu_()
    identity = x if block.downsample is None else one(x, block.downsample[0])
    return one(out, block.conv3).add_(identity).relu_()
