"""DOPE's checkpoint format: reading and validating a file, the one boundary between a checkpoint
and the code. `read_checkpoint` returns a `Checkpoint` (the network's settings over the defaults,
the weights, the post-processing settings); dopenet.build_model builds the network from it.

A file is read whole into memory with `weights_only=True` (never mapped: replacing the file while
a process runs must not reach its weights), and anything but tensors and plain values is refused
before it can run.
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor

from dope.parts import PART_NAMES
from dope.settings import NETWORK_SETTINGS, PPI_SETTINGS, SettingError, check_settings

log = logging.getLogger(__name__)

# torchvision < 0.8 named the RPN conv `conv`; it is now a Sequential of Conv2dNormActivation.
LEGACY_KEYS = {"rpn.head.conv.weight": "rpn.head.conv.0.0.weight", "rpn.head.conv.bias": "rpn.head.conv.0.0.bias"}

DEFAULT_DOPE_KWARGS: dict[str, Any] = {
    "min_size": 800,
    "max_size": 1333,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "rpn_pre_nms_top_n_train": 2000,
    "rpn_pre_nms_top_n_test": 1000,
    "rpn_post_nms_top_n_train": 2000,
    "rpn_post_nms_top_n_test": 1000,
    "rpn_nms_thresh": 0.7,
    "rpn_fg_iou_thresh": 0.7,
    "rpn_bg_iou_thresh": 0.3,
    "rpn_batch_size_per_image": 256,
    "rpn_positive_fraction": 0.5,
    "pose2d_reg_weights": {p: 5.0 for p in PART_NAMES},
    "pose3d_reg_weights": {p: 5.0 for p in PART_NAMES},
    "num_anchor_poses": {"body": 20, "hand": 10, "face": 10},
    "backbone": "resnet50",  # the published files say nothing: they are ResNet-50
}
# The published test code always keeps 1000 proposals after the RPN, whatever the file says.
PUBLISHED_MAX_PROPOSALS = 1000
class CheckpointError(ValueError):
    """A file that is not a usable DOPE checkpoint; the message says why in one line."""


@dataclass
class Checkpoint:
    """A validated checkpoint: network settings, weights and post-processing settings.

    config: `dope_kwargs` over the defaults.  ppi_kwargs: per part, the PPI keyword arguments.
    half: weights stored for fp16 inference.
    """
    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    half: bool = False
    ppi_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Optional[str] = None


def _torch_load(path: str) -> Any:
    if not os.path.isfile(path):
        if os.path.lexists(path):
            from dope.files import describe_kind
            raise CheckpointError(f"checkpoint {path!r} is {describe_kind(path)}, not a checkpoint file; "
                                  "give the path of a .pth file")
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path!r} is empty")
    try:
        # Read into memory, never mapped: replacing or truncating a mapped file while the process
        # runs (cp or curl -o over it) would kill the process with SIGBUS at the next touch of a weight.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know: the file would have run code or
        # built arbitrary objects. Nothing of it was executed.
        if "GLOBAL" in str(e) or "global" in str(e):
            raise CheckpointError(f"checkpoint {path!r} holds objects other than tensors and plain values "
                                  "(it may try to run code when unpickled); refused, nothing of it was run") from None
        raise CheckpointError(f"{path!r} is not a readable checkpoint (corrupt or truncated); "
                              "download or copy it again") from None
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):  # not the file's fault: say so, not "corrupt"
            raise CheckpointError(f"cannot read checkpoint {path!r}: permission denied; check its permissions "
                                  "(or copy it somewhere readable)") from None
        if e.errno is not None:
            raise CheckpointError(f"cannot read checkpoint {path!r}: {e.strerror}") from None
        log.debug("torch.load(%r) failed: %s", path, e)
        raise CheckpointError(f"{path!r} is not a readable checkpoint (corrupt or truncated); "
                              "download or copy it again") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as e:
        log.debug("torch.load(%r) failed: %s", path, e)
        raise CheckpointError(f"{path!r} is not a readable checkpoint (corrupt or truncated); "
                              "download or copy it again") from None


def read_checkpoint(source: Union[str, os.PathLike, Mapping[str, Any]]) -> Checkpoint:
    """Turn a checkpoint file (or an already loaded dict) into a validated `Checkpoint`.

    Loads with `weights_only=True`, renames legacy tensor names, fills defaults for settings the
    file leaves out, and rejects unknown settings. Tensor names and shapes are checked by
    `build_model`, against the network the config describes.
    """
    name = None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        raw = _torch_load(name)
    else:
        raw = source
    where = f" {name!r}" if name else ""
    if not isinstance(raw, Mapping) or "state_dict" not in raw:
        raise CheckpointError(f"file{where} is not a DOPE checkpoint (no 'state_dict' entry)")
    state = raw["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"file{where} is not a DOPE checkpoint ('state_dict' is not a dict of tensors)")
    state = {LEGACY_KEYS.get(k, k): v for k, v in state.items()}

    dope_kwargs = raw.get("dope_kwargs") or {}
    if not isinstance(dope_kwargs, Mapping):
        raise CheckpointError(f"file{where} is not a DOPE checkpoint ('dope_kwargs' is not a dict)")
    try:
        dope_kwargs = check_settings(dope_kwargs, NETWORK_SETTINGS, f"checkpoint{where} dope_kwargs")
    except SettingError as e:
        raise CheckpointError(str(e)) from None
    config = merge_config(DEFAULT_DOPE_KWARGS, dope_kwargs)
    ppi_kwargs = {}
    for part in PART_NAMES:
        kw = raw.get(f"{part}_ppi_kwargs") or {}
        if not isinstance(kw, Mapping):
            raise CheckpointError(f"checkpoint{where}: '{part}_ppi_kwargs' is not a dict")
        try:
            ppi_kwargs[part] = check_settings(kw, PPI_SETTINGS, f"checkpoint{where} {part}_ppi_kwargs")
        except SettingError as e:
            raise CheckpointError(str(e)) from None
    half = raw.get("half", False)
    if not isinstance(half, bool):
        raise CheckpointError(f"checkpoint{where}: 'half' is {half!r}, not True or False")
    _warn_non_finite(state, name)
    return Checkpoint(config=config, state_dict=state, half=half,
                      ppi_kwargs=ppi_kwargs, source=name)


def merge_config(config: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with `changes` applied; per-part settings are merged part by part. Neither is modified."""
    out = dict(config)
    for key, value in changes.items():
        out[key] = {**config[key], **value} if isinstance(config.get(key), Mapping) else value
    return out


def _warn_non_finite(state: Mapping[str, Tensor], name: Optional[str]) -> None:
    """Log a warning naming the tensors that hold NaN or infinite values: such a network gives
    non-finite outputs (no detection, or poses at infinity), which would otherwise go unexplained."""
    # A sum is non-finite when any element is (or when finite values overflow: then the exact check
    # decides); it is about 10x quicker than isfinite over the 75 M values of a checkpoint.
    # The ResNet's tensors appear under two names with one storage: each tensor is checked once.
    verdict: dict[tuple[int, tuple[int, ...], tuple[int, ...], torch.dtype], bool] = {}
    bad = []
    for k, v in state.items():
        if not v.is_floating_point():
            continue
        key = (v.data_ptr(), tuple(v.shape), v.stride(), v.dtype)
        if key not in verdict:
            verdict[key] = not bool(v.float().sum().isfinite()) and not bool(torch.isfinite(v).all())
        if verdict[key]:
            bad.append(k)
    if bad:
        log.warning("checkpoint%s: %d tensor(s) hold NaN or infinite values (%s%s); its outputs will not be "
                    "usable", f" {name!r}" if name else "", len(bad), ", ".join(bad[:3]), ", ..." if len(bad) > 3 else "")
