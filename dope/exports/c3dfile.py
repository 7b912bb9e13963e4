"""People of a clip as a C3D file: one marker per joint, for biomechanics tools (OpenSim, Mokka, Visual3D).

Markers are named `<person>_<joint>` (`person0_r_knee`, `person0_lhand_index_2`, `person0_face_jaw_3`),
in millimetres, in the OpenCV camera frame (x right, y down, z forward; the camera at the origin),
at the clip's frame rate. All bodies come first, then hands, then faces, so that readers that only
read the first 255 labels (POINT:LABELS; the rest are in LABELS2, LABELS3... as the C3D
convention has it) still name every body joint. POINT:DESCRIPTIONS says whose part each marker is,
when the parameter section (at most 255 blocks of 512 bytes) has room for it; past some 35
whole-body people (about 5000 markers) even the labels do not fit, and the export says so. A joint not seen in a frame is an invalid point
(residual -1, coordinates 0). POINT:X_SCREEN = +X and POINT:Y_SCREEN = -Y tell viewers that image
up is -y.

Written here with NumPy (Intel byte order, floating-point data, no analog channels) following the
C3D specification (c3d.org), and read back in the tests with the `c3d` and `ezc3d` packages.
"""
from __future__ import annotations

import struct
from typing import Iterable, Mapping, Optional

import numpy as np

from dope.exports.people import MARKER_PREFIX, PERSON_PARTS, Clip, ExportError
from dope.files import atomic_write

BLOCK = 512
LABEL_GROUP = 255  # a C3D dimension is one byte: labels go 255 at a time into LABELS, LABELS2, ...
MAX_FRAMES = 65535  # the header's last frame is a 16-bit word
MAX_PARAMETER_BLOCKS = 255  # the parameter section says its length in one byte
ADVICE = "export fewer people (--max-people) or use .npz or .glb"  # when the markers cannot be named
PROCESSOR_INTEL = 84
KEY = 0x50


def clip_markers(clip: Clip) -> tuple[list[str], list[str], np.ndarray]:
    """(labels, descriptions, points float64[T, M, 3] in mm, NaN where not seen): bodies first."""
    labels, descriptions, points = [], [], []
    for key, (_, joints) in PERSON_PARTS.items():
        for person in clip.people:
            if key in person.parts:
                labels += [f"{person.name}_{MARKER_PREFIX[key]}{j}" for j in joints]
                descriptions += [f"{person.name} {key.replace('_', ' ')}"] * len(joints)
                points.append(person.parts[key].joints * 1000.0)
    pts = np.concatenate(points, 1) if points else np.zeros((len(clip), 0, 3))
    return labels, descriptions, pts


def _param(name: str, group: int, kind: int, dims: tuple[int, ...], data: bytes, desc: str = "") -> bytes:
    """One parameter record: kind -1 char, 1 byte, 2 int16, 4 float32; dims () for a scalar."""
    n, d = name.upper().encode("ascii"), desc.encode("ascii")[:255]
    body = struct.pack("<bB", kind, len(dims)) + bytes(dims) + data + struct.pack("<B", len(d)) + d
    return struct.pack("<bb", len(n), group) + n + struct.pack("<h", 2 + len(body)) + body


def _group(name: str, group: int, desc: str) -> bytes:
    n, d = name.upper().encode("ascii"), desc.encode("ascii")[:255]
    return struct.pack("<bb", len(n), -group) + n + struct.pack("<hB", 3 + len(d), len(d)) + d


def _strings(group: int, name: str, values: list[str], desc: str) -> list[bytes]:
    """A char parameter holding strings, split 255 at a time: NAME, NAME2, NAME3..."""
    width = max([len(v) for v in values] + [1])
    out = []
    for k in range(0, max(len(values), 1), LABEL_GROUP):
        chunk = values[k:k + LABEL_GROUP]
        data = b"".join(v.encode("ascii", "replace").ljust(width) for v in chunk)
        out.append(_param(name if k == 0 else f"{name}{k // LABEL_GROUP + 1}", group, -1, (width, len(chunk)), data,
                          desc))
    return out


def c3d_bytes(clip: Clip) -> bytes:
    """The whole C3D file (see the module's docstring)."""
    labels, descriptions, points = clip_markers(clip)
    t, m = points.shape[:2]
    if t > MAX_FRAMES:
        raise ExportError(f"C3D holds at most {MAX_FRAMES} frames and this clip has {t}; export part of it "
                          "(--start, --end, --every) or use .npz or .glb")
    if m > 32767:
        raise ExportError(f"C3D holds at most 32767 markers; this clip has {m}")
    rate = float(clip.fps)

    def params(data_start: int, with_descriptions: bool = True) -> bytes:
        items: list[bytes] = [_group("POINT", 1, "3D point parameters")]
        items += [_param("USED", 1, 2, (), struct.pack("<h", m), "markers per frame"),
                  _param("FRAMES", 1, 2, (), struct.pack("<H", t), "frames"),
                  _param("DATA_START", 1, 2, (), struct.pack("<h", data_start), "first block of point data"),
                  _param("SCALE", 1, 4, (), struct.pack("<f", -1.0), "negative: floating-point data"),
                  _param("RATE", 1, 4, (), struct.pack("<f", rate), "frames per second"),
                  _param("UNITS", 1, -1, (2,), b"mm", "millimetres"),
                  _param("X_SCREEN", 1, -1, (2,), b"+X", "image right"),
                  _param("Y_SCREEN", 1, -1, (2,), b"-Y", "image up (camera frame: y down)")]
        items += _strings(1, "LABELS", labels, "person_joint")
        if with_descriptions:
            items += _strings(1, "DESCRIPTIONS", descriptions, "person and part")
        items += [_group("ANALOG", 2, "analog data parameters"),
                  _param("USED", 2, 2, (), struct.pack("<h", 0), "no analog channels"),
                  _param("RATE", 2, 4, (), struct.pack("<f", 0.0), "no analog channels")]
        items += [_group("TRIAL", 3, "trial parameters"),
                  _param("ACTUAL_START_FIELD", 3, 2, (2,), struct.pack("<hh", 1, 0), ""),
                  _param("ACTUAL_END_FIELD", 3, 2, (2,), struct.pack("<HH", t & 0xFFFF, t >> 16), "")]
        items += [_group("MANUFACTURER", 4, "who wrote the file"),
                  _param("COMPANY", 4, -1, (4,), b"DOPE", ""),
                  _param("SOFTWARE", 4, -1, (7,), b"dope.py", "whole-body 3D poses in camera space")]
        # the last record's offset is 0: nothing follows
        last = bytearray(items[-1])
        name_len = last[0]
        last[2 + name_len:4 + name_len] = struct.pack("<h", 0)
        items[-1] = bytes(last)
        return b"".join(items)

    # the parameter section's length in blocks is one byte: labels of many people may not fit
    with_descriptions = -(-(len(params(0)) + 4) // BLOCK) <= MAX_PARAMETER_BLOCKS
    blocks = -(-(len(params(0, with_descriptions)) + 4) // BLOCK)
    if blocks > MAX_PARAMETER_BLOCKS:
        raise ExportError(f"C3D cannot name {m} markers ({len(clip.people)} people and parts): its parameter "
                          f"section holds {MAX_PARAMETER_BLOCKS} blocks of {BLOCK} bytes; {ADVICE}")
    data_start = 2 + blocks
    section = struct.pack("<BBBB", 1, KEY, blocks, PROCESSOR_INTEL) + params(data_start, with_descriptions)
    section = section.ljust(blocks * BLOCK, b"\0")

    header = np.zeros(256, np.uint16)
    raw = bytearray(header.tobytes())
    raw[0], raw[1] = 2, KEY
    struct.pack_into("<HHHHH", raw, 2, m, 0, 1, max(t, 1), 10)
    struct.pack_into("<f", raw, 12, -1.0)
    struct.pack_into("<HH", raw, 16, data_start, 0)
    struct.pack_into("<f", raw, 20, rate)

    data = np.zeros((t, m, 4), np.float32)
    valid = np.isfinite(points).all(-1)
    data[..., :3] = np.where(valid[..., None], points, 0.0)
    data[..., 3] = np.where(valid, 0.0, -1.0)  # residual 0: a computed (not measured) point; -1: invalid
    body = data.astype("<f4").tobytes()
    body = body.ljust(-(-len(body) // BLOCK) * BLOCK, b"\0")
    return bytes(raw) + section + body


def frames_refused(frames: int) -> Optional[str]:
    """The reason a clip of `frames` frames cannot be a C3D file, else None."""
    if frames > MAX_FRAMES:
        return f"C3D holds at most {MAX_FRAMES} frames and this run has {frames}"
    return None


def markers_refused(parts: Mapping[str, Iterable[str]]) -> Optional[str]:
    """The reason the markers of `parts` ({person name: its part keys}, those of PERSON_PARTS) can
    certainly not be named in a C3D file, else None. The labels alone, at their common padded width,
    are a lower bound on the parameter section (c3d_bytes says for sure): a run can learn early that
    the file will fail, never wrongly."""
    count = width = 0
    for name, keys in parts.items():
        for key in keys:
            joints = PERSON_PARTS[key][1]
            count += len(joints)
            width = max(width, len(name) + 1 + len(MARKER_PREFIX[key]) + max(map(len, joints)))
    if count * width <= MAX_PARAMETER_BLOCKS * BLOCK:
        return None
    return (f"C3D cannot name {count} markers ({len(parts)} people and parts): its parameter section holds "
            f"{MAX_PARAMETER_BLOCKS} blocks of {BLOCK} bytes")


def write_c3d(clip: Clip, path: str) -> None:
    """Write the clip's markers under a staging name, then rename."""
    atomic_write(path, c3d_bytes(clip))
