"""People in camera space: the pinhole camera, and every body, hand and face placed in front of it.

DOPE's 3D poses are relative: a body is centred on itself (metres, x and y opposite to the image's,
SPEC §1), hands and faces on themselves (axes along the image's). This module finds where each part
is, in the OpenCV camera frame (x right, y down, z forward, metres, the camera at the origin):

- Intrinsics (`Intrinsics`, `intrinsics`): `--focal PX`, or `--fov DEG` (horizontal), else the
  image's EXIF 35 mm-equivalent focal length, else 60 degrees horizontal. The principal point is
  the image centre (W/2, H/2: pixel i covers [i, i+1), as DOPE's boxes and 2D poses do).
- Placement (`place_result`): a translation t such that the part's 3D pose plus t projects onto
  its 2D pose. With u' = u - cx, each joint gives two rows linear in t
  (f t_x - u' t_z = u' Z - f X, and the same for y), solved by weighted least squares. Rows are
  divided by the joint's current depth, so that residuals are pixels, and joints far off get
  Huber weights (iteratively reweighted least squares): a few bad joints do not move the person.
  Exact inputs give the exact translation. Bodies keep their metric size. A hand attached to a
  body has its wrist put on the body's wrist and one scale fitted to its 2D at that depth; a face
  attached to a body has its centre at the depth of the body's head, with its position across and
  its scale fitted; hands and faces found alone are placed from their own fit at their own size.
- The stage (`place`): frames in, frames out, every part with `pose3d_camera` (float64[N, J, 3],
  metres) and `reprojection_error_px` (float64[N], the mean distance in pixels between the 2D
  pose and the projected camera-space pose), and the frame's `"camera"` in `Result.meta`.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from dope.parts import BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST, PART_NAMES
from dope.results import NO_LINK, Result
from dope.stream import Frame

log = logging.getLogger(__name__)

DEFAULT_FOV_DEG = 60.0  # horizontal field of view when neither the user nor the image says
FOV_RANGE_DEG = (1.0, 179.0)
FOCAL_RANGE_PX = (1.0, 1e6)
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # what "35 mm equivalent" is relative to (CIPA DC-008)
EXIF_IFD, EXIF_FOCAL_35MM = 0x8769, 0xA405
HUBER_FACTOR = 2.0      # Huber threshold: this many robust standard deviations of the joint residuals
HUBER_MIN_PX = 1.0      # ... and never below this many pixels
IRLS_STEPS = 30     # enough for Huber weights to settle with a few joints 100 px off
MIN_DEPTH_M = 1e-3      # depths used to weight rows are at least this (a part straddling the camera)
FIELD_CAMERA = "pose3d_camera"
FIELD_ERROR = "reprojection_error_px"


class CameraError(ValueError):
    """Intrinsics that cannot be used (non-positive or absurd focal length or field of view)."""


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera without distortion: focal length and principal point in pixels.

    source: where the focal length comes from: "focal" (--focal), "fov" (--fov or the 60 degree
    default) or "exif" (the image's 35 mm-equivalent focal length).
    """
    focal_px: float
    cx: float
    cy: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The `"camera"` field of the JSON output."""
        return {"focal_px": round(self.focal_px, 4), "cx": self.cx, "cy": self.cy, "source": self.source}

    def project(self, points: np.ndarray) -> np.ndarray:
        """float64[..., 2] pixels of camera-space points float[..., 3] (metres)."""
        p = np.asarray(points, np.float64)
        return np.stack([self.focal_px * p[..., 0] / p[..., 2] + self.cx,
                         self.focal_px * p[..., 1] / p[..., 2] + self.cy], -1)

    def horizontal_fov_deg(self, width: int) -> float:
        return math.degrees(2 * math.atan(width / 2 / self.focal_px))


def check_focal(focal_px: float) -> float:
    """The focal length in pixels, or CameraError when it is not positive or absurd."""
    lo, hi = FOCAL_RANGE_PX
    if not math.isfinite(focal_px) or focal_px <= 0:
        raise CameraError(f"--focal must be a positive number of pixels, got {focal_px:g}")
    if not lo <= focal_px <= hi:
        raise CameraError(f"--focal {focal_px:g} px is absurd; give a focal length between {lo:g} and {hi:g} pixels")
    return float(focal_px)


def check_fov(fov_deg: float) -> float:
    """The horizontal field of view in degrees, or CameraError outside (1, 179) degrees."""
    lo, hi = FOV_RANGE_DEG
    if not math.isfinite(fov_deg) or not lo <= fov_deg <= hi:
        raise CameraError(f"--fov must be a horizontal field of view between {lo:g} and {hi:g} degrees, "
                          f"got {fov_deg:g}")
    return float(fov_deg)


def exif_focal_35mm(path: Optional[str]) -> Optional[float]:
    """The image file's EXIF FocalLengthIn35mmFilm (mm), or None (no file, no EXIF, no such tag)."""
    if not path or not os.path.isfile(path):
        return None
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            value = im.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and value > 0 else None


def intrinsics(width: int, height: int, focal: Optional[float] = None, fov: Optional[float] = None,
               focal_35mm: Optional[float] = None) -> Intrinsics:
    """The camera of a W x H image: `focal` pixels, else horizontal `fov` degrees, else the EXIF
    35 mm-equivalent `focal_35mm` (scaled by the image diagonal over the 43.3 mm full-frame one),
    else 60 degrees horizontal. Principal point (W/2, H/2)."""
    if focal is not None and fov is not None:
        raise CameraError("give --focal or --fov, not both")
    if focal is not None:
        f, source = check_focal(focal), "focal"
    elif fov is not None:
        f, source = width / 2 / math.tan(math.radians(check_fov(fov)) / 2), "fov"
    elif focal_35mm is not None:
        f, source = focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM, "exif"
    else:
        f, source = width / 2 / math.tan(math.radians(DEFAULT_FOV_DEG) / 2), "fov"
    return Intrinsics(float(f), width / 2.0, height / 2.0, source)


# ------------------------------------------------------------------------------------ solving


def _huber_weights(residual_px: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """float64[N, J] Huber weights of per-joint pixel residuals float[N, J] (0 for invalid joints).

    The threshold is HUBER_FACTOR robust standard deviations (1.4826 x the median residual) of
    each detection, at least HUBER_MIN_PX: exact data keep unit weights."""
    r = np.where(valid, np.nan_to_num(residual_px, nan=np.inf), np.inf)
    count = valid.sum(-1, keepdims=True)
    ordered = np.sort(r, axis=-1)  # invalid joints last (np.nanmedian is slow on small arrays)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, -1)
    hi = np.take_along_axis(ordered, np.minimum(count // 2, r.shape[-1] - 1), -1)
    median = np.where(count > 0, 0.5 * (lo + hi), 0.0)
    scale = 1.4826 * np.where(np.isfinite(median), median, 0.0)
    k = np.maximum(HUBER_FACTOR * scale, HUBER_MIN_PX)
    w = np.where(r > k, k / np.where(r > 0, r, 1.0), 1.0)
    return np.where(valid, w, 0.0)


def _solve(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least squares, batched: x float64[N, K] minimising sum_r w_r (a_r x - b_r)^2.

    a float[N, R, K], b float[N, R], weights float[N, R]. Rows of zero weight count for nothing;
    a detection without enough rows gets NaN."""
    aw = a * weights[..., None]
    normal = np.einsum("nrk,nrl->nkl", aw, a)
    rhs = np.einsum("nrk,nr->nk", aw, b)
    out = np.full(rhs.shape, np.nan)
    # solvable: the determinant is not negligible against the diagonal's (a cheap rank test)
    diag = np.abs(np.diagonal(normal, axis1=-2, axis2=-1)).prod(-1)
    ok = np.abs(np.linalg.det(normal)) > 1e-12 * diag if len(normal) else np.zeros(0, bool)
    if ok.any():
        out[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
    return out


def _rows(points: np.ndarray, uv: np.ndarray, cam: Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (u', v') from the principal point and validity of each joint: float64[N, J] x 2, bool[N, J]."""
    du = uv[..., 0] - cam.cx
    dv = uv[..., 1] - cam.cy
    valid = np.isfinite(points).all(-1) & np.isfinite(uv).all(-1)
    return np.where(valid, du, 0.0), np.where(valid, dv, 0.0), valid


def reprojection_errors(camera_points: np.ndarray, uv: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """float64[N, J] pixel distance between each joint's 2D pose and its camera-space point projected
    (NaN where either is missing or the point is not in front of the camera)."""
    p = np.asarray(camera_points, np.float64)
    with np.errstate(all="ignore"):
        proj = cam.project(p)
        err = np.linalg.norm(proj - uv, axis=-1)
    return np.where(p[..., 2] > 0, err, np.nan)


def _irls(build: Callable[[], tuple[np.ndarray, np.ndarray]], valid: np.ndarray,
          depth: Callable[[np.ndarray], np.ndarray], residual: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The robust loop shared by the three fits: rows from `build()` (a float[N, 2J, K], b float[N, 2J]),
    weights 1/depth (so that residuals are pixels) times Huber weights of `residual(x)`."""
    a, b = build()
    joint_w = valid.astype(np.float64)
    x = _solve(a, b, np.repeat(joint_w, 2, axis=-1))
    for _ in range(IRLS_STEPS):
        z = np.maximum(np.abs(np.nan_to_num(depth(x), nan=1.0)), MIN_DEPTH_M)
        joint_w = _huber_weights(residual(x), valid) / z ** 2
        new = _solve(a, b, np.repeat(joint_w, 2, axis=-1))
        new = np.where(np.isfinite(new), new, x)
        done = np.allclose(new, x, rtol=1e-10, atol=1e-10, equal_nan=True)
        x = new
        if done:
            break
    return x


def _focal_rows(f: float, third_u: np.ndarray, third_v: np.ndarray) -> np.ndarray:
    """float64[N, 2J, 3] design rows [f, 0, third_u] and [0, f, third_v] per joint (third_*: float[N, J])."""
    n, j = third_u.shape
    a = np.zeros((n, j, 2, 3))
    a[..., 0, 0] = a[..., 1, 1] = f
    a[..., 0, 2], a[..., 1, 2] = third_u, third_v
    return a.reshape(n, 2 * j, 3)


def fit_translation(points: np.ndarray, uv: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """float64[N, 3] translations t (metres) such that points + t projects onto uv.

    points: float[N, J, 3] relative 3D poses in camera axes (metres); uv: float[N, J, 2] pixels.
    Joints with a NaN are left out; a detection with fewer than two usable joints gets NaN."""
    p = np.asarray(points, np.float64).reshape(-1, points.shape[-2], 3)
    uv = np.asarray(uv, np.float64).reshape(-1, p.shape[1], 2)
    n, j = p.shape[:2]
    du, dv, valid = _rows(p, uv, cam)
    p0 = np.where(valid[..., None], p, 0.0)
    f = cam.focal_px

    def build():
        b = np.stack([du * p0[..., 2] - f * p0[..., 0], dv * p0[..., 2] - f * p0[..., 1]], -1)
        return _focal_rows(f, -du, -dv), b.reshape(n, 2 * j)

    t = _irls(build, valid, lambda t: p0[..., 2] + t[:, None, 2],
              lambda t: reprojection_errors(p0 + t[:, None], uv, cam))
    # A pose that does not match its 2D (a false detection) can be fitted best behind the camera,
    # where points project mirrored: such a part gets the weak-perspective placement instead
    # (depth from the ratio of its 3D and 2D sizes, centred on the ray of its 2D centroid).
    z = np.where(valid, p0[..., 2] + t[:, None, 2], np.inf)
    behind = (z <= MIN_DEPTH_M).any(-1) & valid.any(-1)
    if behind.any():
        t[behind] = _weak_perspective(p[behind], uv[behind], valid[behind], cam)
    return t


def _weak_perspective(points: np.ndarray, uv: np.ndarray, valid: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """float64[N, 3] translations putting each pose at the depth where its x-y spread matches its 2D
    spread, its mean on the ray of its 2D mean (NaN when either has no spread)."""
    w = valid[..., None].astype(np.float64)
    n = np.maximum(w.sum(1), 1)
    mean3 = (np.nan_to_num(points) * w).sum(1) / n
    mean2 = (np.nan_to_num(uv) * w).sum(1) / n
    spread3 = np.sqrt((((np.nan_to_num(points[..., :2]) - mean3[:, None, :2]) ** 2) * w).sum((1, 2)) / n[:, 0])
    spread2 = np.sqrt((((np.nan_to_num(uv) - mean2[:, None]) ** 2) * w).sum((1, 2)) / n[:, 0])
    with np.errstate(all="ignore"):
        depth = np.where((spread2 > 0) & (spread3 > 0), cam.focal_px * spread3 / spread2, np.nan)
    centre = np.stack([(mean2[:, 0] - cam.cx) * depth / cam.focal_px, (mean2[:, 1] - cam.cy) * depth / cam.focal_px,
                       depth], -1)
    return centre - mean3


def fit_scale_at(points: np.ndarray, anchor: np.ndarray, uv: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """float64[N] scales s such that anchor + s * points projects onto uv (the anchor fixed).

    points: float[N, J, 3] relative to the anchor joint; anchor: float[N, 3] metres; uv: float[N, J, 2].
    Joints at the anchor itself carry no information and drop out of the rows."""
    q = np.asarray(points, np.float64)
    w = np.asarray(anchor, np.float64)[:, None, :]
    n, j = q.shape[:2]
    du, dv, valid = _rows(q, uv, cam)
    valid &= np.linalg.norm(np.nan_to_num(q), axis=-1) > 0
    q0 = np.where(valid[..., None], q, 0.0)
    f = cam.focal_px

    def build():
        a = np.stack([du * q0[..., 2] - f * q0[..., 0], dv * q0[..., 2] - f * q0[..., 1]], -1)
        b = np.stack([f * w[..., 0] - du * w[..., 2], f * w[..., 1] - dv * w[..., 2]], -1)
        return a.reshape(n, 2 * j, 1), b.reshape(n, 2 * j)

    s = _irls(build, valid, lambda s: w[..., 2] + s * q0[..., 2],
              lambda s: reprojection_errors(w + s[:, :, None] * q0, uv, cam))
    return s[:, 0]


def fit_at_depth(points: np.ndarray, depth: np.ndarray, uv: np.ndarray, cam: Intrinsics) -> np.ndarray:
    """float64[N, 3] (c_x, c_y, s) such that (c_x, c_y, depth) + s * points projects onto uv.

    points: float[N, J, 3] centred 3D poses; depth: float[N] metres, where the centre must be."""
    q = np.asarray(points, np.float64)
    d = np.asarray(depth, np.float64)[:, None]
    n, j = q.shape[:2]
    du, dv, valid = _rows(q, uv, cam)
    q0 = np.where(valid[..., None], q, 0.0)
    f = cam.focal_px

    def build():
        b = np.stack([du * d, dv * d], -1)
        return _focal_rows(f, f * q0[..., 0] - du * q0[..., 2], f * q0[..., 1] - dv * q0[..., 2]), b.reshape(n, 2 * j)

    def placed(x):
        centre = np.concatenate([x[:, :2], d], -1)[:, None]
        return centre + x[:, None, 2:3] * q0

    return _irls(build, valid, lambda x: placed(x)[..., 2], lambda x: reprojection_errors(placed(x), uv, cam))


# ----------------------------------------------------------------------------------- placement


def body_in_camera_axes(pose3d: np.ndarray) -> np.ndarray:
    """A copy of body 3D poses float[..., 13, 3] with x and y negated: DOPE's body frame to camera axes."""
    out = np.array(pose3d, np.float64)
    out[..., :2] *= -1
    return out


def place_result(result: Result, cam: Intrinsics) -> Result:
    """The result with `pose3d_camera` and `reprojection_error_px` on every body, hand and face,
    and `meta["camera"]`; nothing of the input is modified."""
    bodies, hands, faces = result.body, result.hand, result.face
    placed: dict[str, np.ndarray] = {}
    body3d = body_in_camera_axes(bodies.pose3d)
    placed["body"] = body3d + fit_translation(body3d, bodies.pose2d, cam)[:, None]
    for name, dets in (("hand", hands), ("face", faces)):
        own = np.asarray(dets.pose3d, np.float64)
        placed[name] = own + fit_translation(own, dets.pose2d, cam)[:, None]

    # attached hands: wrist on the body's wrist, one scale fitted at that depth
    owner: dict[int, tuple[int, int]] = {}
    for i in range(len(bodies)):
        for hand, wrist in ((bodies.left_hand[i], BODY_L_WRIST), (bodies.right_hand[i], BODY_R_WRIST)):
            if hand != NO_LINK and int(hand) not in owner:
                owner[int(hand)] = (i, wrist)
    if owner:
        idx = np.array(sorted(owner))
        anchors = np.array([placed["body"][owner[h][0], owner[h][1]] for h in idx])
        rel = hands.pose3d[idx].astype(np.float64) - hands.pose3d[idx, HAND_WRIST:HAND_WRIST + 1]
        s = fit_scale_at(rel, anchors, hands.pose2d[idx].astype(np.float64), cam)
        good = np.isfinite(s) & (s > 0) & np.isfinite(anchors).all(-1)
        s = np.where(good, s, 1.0)  # no usable scale: the hand keeps its own size
        new = anchors[:, None] + s[:, None, None] * rel
        placed["hand"][idx] = np.where(np.isfinite(anchors)[:, None], new, placed["hand"][idx])

    # attached faces: centre at the head's depth, position across and scale fitted
    face_owner: dict[int, int] = {}
    for i in range(len(bodies)):
        k = int(bodies.face[i])
        if k != NO_LINK and k not in face_owner:
            face_owner[k] = i
    if face_owner:
        idx = np.array(sorted(face_owner))
        depth = np.array([placed["body"][face_owner[k], BODY_HEAD, 2] for k in idx])
        centred = faces.pose3d[idx].astype(np.float64)
        centred = centred - centred.mean(1, keepdims=True)
        x = fit_at_depth(centred, depth, faces.pose2d[idx].astype(np.float64), cam)
        good = np.isfinite(x).all(-1) & (x[:, 2] > 0) & (depth > 0)
        new = np.concatenate([x[:, :2], depth[:, None]], -1)[:, None] + x[:, None, 2:3] * centred
        placed["face"][idx] = np.where(good[:, None, None], new, placed["face"][idx])

    parts = {}
    for name in PART_NAMES:
        dets = result[name]
        errors = reprojection_errors(placed[name], dets.pose2d.astype(np.float64), cam)
        finite = np.isfinite(errors)
        count = finite.sum(-1)
        # NaN for a part with no joint in front of the camera
        mean = np.where(count > 0, np.where(finite, errors, 0.0).sum(-1) / np.maximum(count, 1), np.nan)
        parts[name] = dets.with_fields(**{FIELD_CAMERA: placed[name], FIELD_ERROR: mean})
    out = result.replace(**parts)
    out.meta = {**result.meta, "camera": cam.to_dict()}
    return out


def place(frames: Iterable[Frame], focal: Optional[float] = None, fov: Optional[float] = None) -> Iterator[Frame]:
    """The placement stage: every frame's parts in camera space (see `place_result`).

    focal: pixels; fov: horizontal degrees; neither: the camera a replayed frame was placed with
    (its `"camera"`), else each image's EXIF 35 mm-equivalent focal length when it has one (looked up
    by the frame's file name), else 60 degrees horizontal."""
    if focal is not None:
        check_focal(focal)
    if fov is not None:
        check_fov(fov)
    exif: dict[str, Optional[float]] = {}
    said: set[tuple[str, float]] = set()
    for frame in frames:
        result = frame.result
        f35 = None
        saved = result.meta.get("camera") if focal is None and fov is None else None
        if isinstance(saved, dict) and isinstance(saved.get("focal_px"), (int, float)) and saved["focal_px"] > 0:
            # replayed detections that were placed before: keep their camera
            cam = Intrinsics(float(saved["focal_px"]), result.width / 2.0, result.height / 2.0,
                             str(saved.get("source", "focal")))
            yield Frame(frame.item, frame.image, place_result(result, cam))
            continue
        if focal is None and fov is None and frame.item.name is not None:
            name = frame.item.name
            if name not in exif:
                exif[name] = exif_focal_35mm(name) if frame.item.frame is None else None
            f35 = exif[name]
        cam = intrinsics(result.width, result.height, focal, fov, f35)
        key = (cam.source, round(cam.focal_px, 2))
        if key not in said:
            said.add(key)
            log.debug("camera: focal %.1f px (%s), %.1f degrees horizontal", cam.focal_px, cam.source,
                      cam.horizontal_fov_deg(result.width))
        yield Frame(frame.item, frame.image, place_result(result, cam))
