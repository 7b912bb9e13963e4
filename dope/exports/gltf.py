"""People of a clip as one glTF 2.0 binary file (.glb): one animated skeleton per person, seen by the camera.

Axes and units: metres, glTF's own axes (+Y up, +Z towards the viewer): the OpenCV camera frame
with y and z negated. The camera sits at the origin with identity transform, looking down -Z (a
glTF perspective camera of the clip's vertical field of view), so viewers that offer the file's
camera show the people over where they were in the image.

Each person is a node (`person0`) whose children are one node per joint (`person0_r_knee`,
`person0_lhand_index_2`, `person0_face_jaw_3`), animated over the clip by translation (linear
between frames, times in seconds from the first frame). Frames where a part is not seen keep its
nearest pose, scaled to zero (a step), so it vanishes. A stick figure makes the skeleton visible
in any viewer: a skinned LINES mesh (`person0_mesh`) with one vertex per joint, bound to it, and
one per bone end that is the middle of two joints (the hips, the shoulders), bound to both halves.

Written here with NumPy and json; read back in the tests with pygltflib and checked with the
Khronos glTF validator.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from dope.exports.people import MARKER_PREFIX, PERSON_PARTS, Clip, ExportError, Person, hold_nearest
from dope.files import atomic_write
from dope.parts import PARTS

CAMERA_TO_GLTF = np.array([1.0, -1.0, -1.0])
FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINES = 1
GLB_MAGIC, GLB_VERSION, CHUNK_JSON, CHUNK_BIN = 0x46546C67, 2, 0x4E4F534A, 0x004E4942
PART_COLORS = {"body": (0.2, 0.4, 1.0, 1.0), "left_hand": (0.1, 0.8, 0.2, 1.0), "right_hand": (1.0, 0.3, 0.2, 1.0),
               "face": (0.9, 0.8, 0.2, 1.0)}


class _Binary:
    """The GLB's binary chunk, built view by view (each 4-byte aligned)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = (-self.size) % 4
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        v: dict[str, Any] = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            v["target"] = target
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, component: int, view: int | None = None, offset: int = 0,
                 bounds: bool = False, target: int | None = None) -> int:
        dtype = {FLOAT: "<f4", UNSIGNED_SHORT: "<u2", UNSIGNED_INT: "<u4"}[component]
        a = np.ascontiguousarray(array, dtype=dtype)
        if view is None:
            view, offset = self.view(a.tobytes(), target), 0
        acc: dict[str, Any] = {"bufferView": view, "componentType": component, "count": int(len(a)), "type": kind}
        if offset:
            acc["byteOffset"] = offset
        if bounds:
            flat = a.reshape(len(a), -1)
            acc["min"] = [float(x) for x in flat.min(0)]
            acc["max"] = [float(x) for x in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def data(self) -> bytes:
        blob = b"".join(self.chunks)
        return blob + b"\0" * ((-len(blob)) % 4)


class _Block:
    """Several accessors packed in one buffer view (the animation's samplers)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.pending: list[dict[str, Any]] = []

    def add(self, binary: _Binary, array: np.ndarray, kind: str, bounds: bool = False) -> int:
        """An accessor of float32 `array` (one row per element) in this block; its index."""
        a = np.ascontiguousarray(array, dtype="<f4")
        acc: dict[str, Any] = {"componentType": FLOAT, "count": int(len(a)), "type": kind}
        if self.size:
            acc["byteOffset"] = self.size
        if bounds:
            flat = a.reshape(len(a), -1)
            acc["min"], acc["max"] = [float(x) for x in flat.min(0)], [float(x) for x in flat.max(0)]
        self.parts.append(a.tobytes())
        self.size += len(self.parts[-1])
        self.pending.append(acc)
        binary.accessors.append(acc)
        return len(binary.accessors) - 1

    def close(self, binary: _Binary) -> None:
        if not self.parts:
            return
        view = binary.view(b"".join(self.parts))
        for acc in self.pending:
            acc["bufferView"] = view


def _person_skeleton(person: Person) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(joint names, part key per joint, joints float32[T, M, 3] glTF axes held over gaps, seen bool[T, M])."""
    names, keys, joints, seen = [], [], [], []
    for key, part in person.parts.items():
        joint_names = PERSON_PARTS[key][1]
        names += [f"{person.name}_{MARKER_PREFIX[key]}{j}" for j in joint_names]
        keys += [key] * len(joint_names)
        s = np.isfinite(part.joints).all(-1)
        seen.append(s)
        joints.append(hold_nearest(part.joints) * CAMERA_TO_GLTF)
    return names, keys, np.concatenate(joints, 1), np.concatenate(seen, 1)


def _stick_figure(person: Person) -> tuple[list[list[tuple[int, float]]], list[tuple[int, int]], list[str]]:
    """Vertices (each a list of (joint index, weight)), line segments (vertex pairs) and each segment's part."""
    vertices: list[list[tuple[int, float]]] = []
    lookup: dict[tuple[int, ...], int] = {}
    segments, parts = [], []
    base = 0
    for key in person.parts:
        part = PARTS[PERSON_PARTS[key][0]]
        for j in range(part.num_joints):
            lookup[(base + j,)] = len(vertices)
            vertices.append([(base + j, 1.0)])
        for bone in part.bones:
            ends = []
            for end in (bone.a, bone.b):
                k = tuple(sorted(base + j for j in end))
                if k not in lookup:
                    lookup[k] = len(vertices)
                    vertices.append([(j, 1.0 / len(k)) for j in k])
                ends.append(lookup[k])
            segments.append((ends[0], ends[1]))
            parts.append(key)
        base += part.num_joints
    return vertices, segments, parts


def _times(clip: Clip) -> np.ndarray:
    t = np.asarray(clip.time_s, np.float64)
    if len(t) > 1 and not (np.isfinite(t).all() and (np.diff(t) > 0).all()):
        t = np.arange(len(t)) / clip.fps
    return t - t[0] if len(t) else t


def gltf_document(clip: Clip) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON and its binary buffer (see the module's docstring)."""
    if not clip.people:
        raise ExportError("no person in the clip: nothing to put in a glTF file")
    binary = _Binary()
    nodes: list[dict[str, Any]] = []
    meshes, skins, materials = [], [], []
    scene_nodes: list[int] = []
    channels, samplers = [], []
    block = _Block()
    times = _times(clip)
    time_acc = block.add(binary, times[:, None], "SCALAR", bounds=True)
    for key, color in PART_COLORS.items():
        materials.append({"name": key, "pbrMetallicRoughness": {"baseColorFactor": list(color), "metallicFactor": 0.0}})
    material_of = {k: i for i, k in enumerate(PART_COLORS)}

    for person in clip.people:
        names, keys, joints, seen = _person_skeleton(person)
        first = int(np.flatnonzero(seen.any(1))[0]) if seen.any() else 0
        bind = joints[first]
        person_node = len(nodes)
        nodes.append({"name": person.name, "children": []})
        scene_nodes.append(person_node)
        joint_nodes = []
        for m, name in enumerate(names):
            joint_nodes.append(len(nodes))
            nodes[person_node]["children"].append(len(nodes))
            nodes.append({"name": name, "translation": [float(x) for x in bind[m]]})
            out = block.add(binary, joints[:, m], "VEC3")
            samplers.append({"input": time_acc, "output": out, "interpolation": "LINEAR"})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": joint_nodes[-1], "path": "translation"}})
            if not seen[:, m].all():
                scale = np.repeat(seen[:, m, None].astype(np.float64), 3, 1)
                samplers.append({"input": time_acc, "output": block.add(binary, scale, "VEC3"), "interpolation": "STEP"})
                channels.append({"sampler": len(samplers) - 1, "target": {"node": joint_nodes[-1], "path": "scale"}})
        # the skinned stick figure
        vertices, segments, seg_parts = _stick_figure(person)
        position = np.array([sum(w * bind[j] for j, w in v) for v in vertices], np.float32)
        joint_idx = np.zeros((len(vertices), 4), np.uint16)
        weights = np.zeros((len(vertices), 4), np.float32)
        for k, v in enumerate(vertices):
            for slot, (j, w) in enumerate(v):
                joint_idx[k, slot], weights[k, slot] = j, w
        ibm = np.tile(np.eye(4, dtype=np.float32), (len(names), 1, 1))
        ibm[:, 3, :3] = -bind  # column-major: the translation is the last column, stored last
        attributes = {
            "POSITION": binary.accessor(position, "VEC3", FLOAT, bounds=True, target=ARRAY_BUFFER),
            "JOINTS_0": binary.accessor(joint_idx, "VEC4", UNSIGNED_SHORT, target=ARRAY_BUFFER),
            "WEIGHTS_0": binary.accessor(weights, "VEC4", FLOAT, target=ARRAY_BUFFER),
        }
        primitives = []
        seg = np.array(segments, np.uint32)
        parts_arr = np.array(seg_parts)
        for key in person.parts:
            mine = seg[parts_arr == key].reshape(-1)
            if len(mine):
                primitives.append({"attributes": attributes, "mode": LINES, "material": material_of[key],
                                   "indices": binary.accessor(mine, "SCALAR", UNSIGNED_INT,
                                                              target=ELEMENT_ARRAY_BUFFER)})
        skins.append({"name": person.name, "joints": joint_nodes, "skeleton": person_node,
                      "inverseBindMatrices": binary.accessor(ibm.reshape(len(names), 16), "MAT4", FLOAT)})
        meshes.append({"name": f"{person.name}_mesh", "primitives": primitives})
        scene_nodes.append(len(nodes))
        nodes.append({"name": f"{person.name}_mesh", "mesh": len(meshes) - 1, "skin": len(skins) - 1})

    block.close(binary)
    cam = clip.camera
    width, height = clip.width or 1, clip.height or 1
    focal = float(cam.get("focal_px") or height / 2 / math.tan(math.radians(30)))
    scene_nodes.append(len(nodes))
    nodes.append({"name": "camera", "camera": 0})
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "dope.py (dope.exports.gltf)"},
        "scene": 0,
        "scenes": [{"name": "people in camera space", "nodes": scene_nodes}],
        "nodes": nodes,
        "meshes": meshes,
        "skins": skins,
        "materials": materials,
        "cameras": [{"name": "camera", "type": "perspective",
                     "perspective": {"yfov": 2 * math.atan(height / 2 / focal), "aspectRatio": width / height,
                                     "znear": 0.01}}],
        "animations": [{"name": "clip", "channels": channels, "samplers": samplers}],
        "accessors": binary.accessors,
        "bufferViews": binary.views,
    }
    data = binary.data()
    doc["buffers"] = [{"byteLength": len(data)}]
    return doc, data


def glb_bytes(clip: Clip) -> bytes:
    """The clip as a GLB container: header, JSON chunk (space-padded), binary chunk (zero-padded)."""
    doc, data = gltf_document(clip)
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    total = 12 + 8 + len(text) + 8 + len(data)
    return (struct.pack("<III", GLB_MAGIC, GLB_VERSION, total) + struct.pack("<II", len(text), CHUNK_JSON) + text
            + struct.pack("<II", len(data), CHUNK_BIN) + data)


def write_glb(clip: Clip, path: str) -> None:
    """Write the GLB under a staging name, then rename."""
    atomic_write(path, glb_bytes(clip))
