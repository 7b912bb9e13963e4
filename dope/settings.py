"""The published settings by name, with their types and valid ranges, and the one check for them.

Two tables: `NETWORK_SETTINGS` (a checkpoint's `dope_kwargs`) and `PPI_SETTINGS` (the keyword
arguments of the pose proposals integration, a checkpoint's `<part>_ppi_kwargs`). The network
(`read_checkpoint`) and the post-processing (`ppi`) both check what they are given with
`check_settings`: an unknown name, a value of the wrong type (a string, a bool, 1e5 where an
integer belongs) or out of range raises a `SettingError` that names the setting and what is allowed.

Bounds, chosen so that a file can never ask for absurd work or memory:
- min_size, max_size: 32..4096 pixels (the network input's shorter side and longer side at most);
  4096 x 4096 is about 200 MB of fp32 input and 16 GB of ResNet activations at most.
- proposals kept after the RPN (rpn_post_nms_top_n_*): 1..MAX_PROPOSALS (each costs 200 kB of
  pooled features and 0.5 GFLOP in the RoI head); before its NMS (rpn_pre_nms_top_n_*): 1..10^6.
- thresholds and fractions: 0..1; image_mean 0..1 and image_std 1e-6..10 per channel (RGB, 3 values);
  regression weights 1e-6..1e6 per part; anchor poses 1..1000 per part.
- PPI: K 0..1000 or None; score_th 0..1 or None; th_pose3D, th_iou 0..1e6; iou_func one of
  IOU_FUNCS; min_mode_score, th_persondetect any finite number.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from dope.parts import PART_NAMES

MAX_PROPOSALS = 5000
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 4096
# The ResNets a DOPE network can be built on: the published one, and lighter ones for students.
BACKBONES = ("resnet50", "resnet34", "resnet18")
# PPI's overlap functions: proposal-box IoU, or a 2D pose distance over a joint subset (proposals.py).
IOU_FUNCS = ("bbox", "bbox_torsohead", "mje", "torso", "torsohead", "head", "shoulderhead", "torsoLR",
             "torsoheadLR", "shoulderheadLR")


class SettingError(ValueError):
    """A setting with an unknown name, or a value of the wrong type or out of range; one line."""


@dataclass(frozen=True)
class Rule:
    """What one setting accepts. kind: 'int', 'float', 'choice', 'rgb' (3 floats) or 'per_part_int' /
    'per_part_float' (a dict over the part names, any subset). optional: None is allowed too."""
    kind: str
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()
    optional: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            what = "one of " + ", ".join(self.choices)
        else:
            noun = {"int": "an integer", "float": "a number", "rgb": "3 numbers (R, G, B)",
                    "per_part_int": f"a dict of integers over {'/'.join(PART_NAMES)}",
                    "per_part_float": f"a dict of numbers over {'/'.join(PART_NAMES)}"}[self.kind]
            what = noun if math.isinf(self.low) and math.isinf(self.high) else f"{noun} in {self.low:g}..{self.high:g}"
        return what + (" or None" if self.optional else "")


_count = Rule("int", 1, 10 ** 6)
_fraction = Rule("float", 0, 1)
NETWORK_SETTINGS: dict[str, Rule] = {
    "min_size": Rule("int", MIN_INPUT_SIZE, MAX_INPUT_SIZE),
    "max_size": Rule("int", MIN_INPUT_SIZE, MAX_INPUT_SIZE),
    "image_mean": Rule("rgb", 0, 1),
    "image_std": Rule("rgb", 1e-6, 10),
    "rpn_pre_nms_top_n_train": _count,
    "rpn_pre_nms_top_n_test": _count,
    "rpn_post_nms_top_n_train": Rule("int", 1, MAX_PROPOSALS),
    "rpn_post_nms_top_n_test": Rule("int", 1, MAX_PROPOSALS),
    "rpn_nms_thresh": _fraction,
    "rpn_fg_iou_thresh": _fraction,
    "rpn_bg_iou_thresh": _fraction,
    "rpn_batch_size_per_image": _count,
    "rpn_positive_fraction": _fraction,
    "pose2d_reg_weights": Rule("per_part_float", 1e-6, 1e6),
    "pose3d_reg_weights": Rule("per_part_float", 1e-6, 1e6),
    "num_anchor_poses": Rule("per_part_int", 1, 1000),
    # Not in the published files (they are ResNet-50); a trained student records its own (dope/training/).
    "backbone": Rule("choice", choices=BACKBONES),
}
PPI_SETTINGS: dict[str, Rule] = {
    "K": Rule("int", 0, 1000, optional=True),
    "score_th": Rule("float", 0, 1, optional=True),
    "th_pose3D": Rule("float", 0, 1e6),
    "th_iou": Rule("float", 0, 1e6),
    "iou_func": Rule("choice", choices=IOU_FUNCS),
    "min_mode_score": Rule("float"),
    "th_persondetect": Rule("float"),
}


def _number(v: Any, rule: Rule, integer: bool) -> Optional[float]:
    """v as an int or float when it is one of the right type and in range, else None."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return None
    if integer:
        if not isinstance(v, numbers.Integral):
            return None
        v = int(v)
    else:
        v = float(v)
        if not math.isfinite(v):
            return None
    return v if rule.low <= v <= rule.high else None


def _value(v: Any, rule: Rule) -> tuple[bool, Any]:
    """(ok, the value normalised: Python ints, floats, lists and dicts)."""
    if v is None:
        return rule.optional, None
    if rule.kind in ("int", "float"):
        x = _number(v, rule, rule.kind == "int")
        return x is not None, x
    if rule.kind == "choice":
        return isinstance(v, str) and v in rule.choices, v
    if rule.kind == "rgb":
        if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__") or len(v) != 3:
            return False, None
        xs = [_number(x, rule, False) for x in v]
        return all(x is not None for x in xs), xs
    if rule.kind in ("per_part_int", "per_part_float"):
        if not isinstance(v, Mapping) or not set(v) <= set(PART_NAMES):
            return False, None
        xs = {k: _number(x, rule, rule.kind == "per_part_int") for k, x in v.items()}
        return all(x is not None for x in xs.values()), xs
    raise AssertionError(rule.kind)


def check_settings(values: Mapping[str, Any], rules: Mapping[str, Rule], where: str) -> dict[str, Any]:
    """`values` checked against `rules` by name, type and range, normalised (ints, floats, lists).

    Raises SettingError naming the first bad setting: an unknown name (with the known ones), or a
    value that is not what its rule accepts. `where` starts the message ("checkpoint 'x.pth' body_ppi_kwargs").
    """
    unknown = sorted(str(k) for k in values if k not in rules)
    if unknown:
        raise SettingError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(map(repr, unknown))}; known: {', '.join(rules)}")
    out = {}
    for name, v in values.items():
        ok, x = _value(v, rules[name])
        if not ok:
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
            raise SettingError(f"{where}: {name}={shown} is not valid; {name} must be {rules[name].describe()}")
        out[name] = x
    return out
