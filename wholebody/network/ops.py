"""torchvision, imported without `torch._dynamo`, and the two compiled operators DOPE uses.

Why: torchvision 0.2x's `ops/roi_align.py` runs `from torch._dynamo.utils import is_compile_supported`
at import time, and `import torch._dynamo` costs about 1 s (sympy, torch.fx's symbolic shapes, the
whole compiler front end): half of torch's own import, for a function only called when deterministic
algorithms are requested on a GPU. Python always runs `torchvision/__init__.py` (which imports
`torchvision.ops` and `torchvision.models`) before any of its sub-modules, so no import path skips
that line. `import_torchvision` therefore imports torchvision with a stand-in for that one name,
which imports the real one on its first call; the stand-in leaves `sys.modules` right after, so
`torch.compile` and `torch.onnx` work as usual later.

`roi_align` and `nms` call torchvision's registered operators (`torch.ops.torchvision.*`) directly.
`skip_random_init` lets a network be built on the meta device without torch._dynamo either.
"""
from __future__ import annotations

import logging
import sys
import types
from typing import Union

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

log = logging.getLogger(__name__)

# The one dynamo name torchvision's import needs (torchvision/ops/roi_align.py, 0.18 to 0.29 at least).
DYNAMO_UTILS = "torch._dynamo.utils"


def _is_compile_supported(device_type: str) -> bool:
    """Stand-in for torch._dynamo.utils.is_compile_supported: the real one, imported on first call."""
    from torch._dynamo.utils import is_compile_supported
    return is_compile_supported(device_type)


def import_torchvision() -> types.ModuleType:
    """`import torchvision`, without importing torch._dynamo when nothing else has (about 1 s saved).

    A no-op when torchvision is already imported. If a torchvision version imports more of dynamo
    than the stand-in provides, the import is done again normally (the saving is lost, nothing else).
    """
    if "torchvision" in sys.modules or "torch._dynamo" in sys.modules or DYNAMO_UTILS in sys.modules:
        import torchvision
        return torchvision
    stand_in = types.ModuleType(DYNAMO_UTILS, "Stand-in while torchvision is imported (wholebody.network.ops).")
    stand_in.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    sys.modules[DYNAMO_UTILS] = stand_in
    try:
        import torchvision
    except ImportError as e:  # a name the stand-in lacks: undo the partial import, import normally
        log.debug("torchvision needs more of torch._dynamo than the stand-in has (%s): importing it normally", e)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules.pop(DYNAMO_UTILS, None)
        import torchvision
    finally:
        if sys.modules.get(DYNAMO_UTILS) is stand_in:
            del sys.modules[DYNAMO_UTILS]
    return torchvision


import_torchvision()  # loads torchvision's compiled operators (torch.ops.torchvision.*)


class skip_random_init(TorchFunctionMode):
    """Within it, initialising meta tensors (`normal_`, `torch.nn.init.*_`, ...) does nothing.

    Meta tensors hold no values, so nothing is lost; but torch's meta kernel of `normal_` is a
    Python reference that imports torch._dynamo (about 1 s), and ResNet's and the RPN head's
    initialisations call it on every convolution. Other tensors and functions are untouched.
    """

    SKIPPED = frozenset([getattr(torch.Tensor, n) for n in ("normal_", "uniform_", "log_normal_", "cauchy_",
                                                             "exponential_", "geometric_", "random_")]
                        # torch.nn.init's functions dispatch to the mode themselves, and what they
                        # call inside runs with the mode off: they are skipped as a whole.
                        + [getattr(torch.nn.init, n) for n in dir(torch.nn.init)
                           if n.endswith("_") and not n.startswith("_")])

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in self.SKIPPED:
            tensor = args[0] if args else kwargs.get("tensor")  # torch.nn.init's take it by keyword
            if isinstance(tensor, Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def roi_align(input: Tensor, boxes: Union[Tensor, list[Tensor]], output_size: Union[int, tuple[int, int]],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoIAlign, a drop-in for `torchvision.ops.roi_align` (same arguments, same kernel, same results).

    input (N, C, H, W); boxes: (K, 5) rows (image index, x1, y1, x2, y2), or a list of N tensors
    (L_i, 4) of x1 y1 x2 y2, in input pixels / spatial_scale. Returns (K, C, out_h, out_w).
    Unlike torchvision's, it never falls back to the Python implementation (torchvision does so
    under deterministic algorithms on a GPU, for a deterministic backward pass).
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    if isinstance(boxes, (list, tuple)):
        for b in boxes:
            if b.dim() != 2 or b.size(1) != 4:
                raise ValueError(f"boxes in a list must be (L, 4) tensors, got {tuple(b.shape)}")
        index = torch.cat([torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)])
        rois = torch.cat([index, torch.cat(list(boxes))], 1)
    else:
        if boxes.dim() != 2 or boxes.size(1) != 5:
            raise ValueError(f"boxes must be a (K, 5) tensor or a list of (L, 4) tensors, got {tuple(boxes.shape)}")
        rois = boxes
    if rois.dtype != input.dtype:  # as torchvision's: the kernel takes one dtype
        rois = rois.to(input.dtype)
    return torch.ops.torchvision.roi_align(input, rois, float(spatial_scale), int(out_h), int(out_w),
                                           int(sampling_ratio), bool(aligned))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indexes (int64, by decreasing score) of the boxes (N, 4) x1 y1 x2 y2 kept by non-maximum
    suppression at IoU > iou_threshold: `torchvision.ops.nms`."""
    return torch.ops.torchvision.nms(boxes, scores, float(iou_threshold))

