"""Geometry of the 3D view (SPEC §8), independent of any renderer.

DOPE gives each body, hand and face a 3D pose in its own part-centred frame. To show them together
in front of the image, each pose is placed by a scaled orthographic fit to its 2D pose, hands are
moved onto the body wrists and faces onto the heads (the whole-body assembly), and everything is
laid out in a scene with the image on a vertical plane and a floor grid under it.

Frames and units:
- placed points ("image" mode): image pixels, x right, y down, z depth (same scale as x and y, larger is farther);
- scene units: placed points divided by the image height H, so that the image plane spans
  x in [0, W/H], y in [0, 1] at depth z = 0.5, and the floor is the plane y = 1;
- eye coordinates (`Camera`): x right, y up on screen, z towards the viewer (OpenGL's convention);
- visvis world (`SCENE_TO_WORLD`): z up, for the visvis renderer and the camera's angles.

Two depth modes (`build_scene(..., depth=)`):
- "image" (the published view, SPEC §8): every part by its own scaled orthographic fit, every body's
  centre half an image height in front of the image plane: depth between people is not shown;
- "camera": people where they are in camera space (`dope.motion.camera`, the same placement as
  `pose3d_camera`): scene = camera space scaled by f / (D H) and shifted by the principal point over
  H, with D the depth of the image plane, put just behind the farthest person. The plane is then
  exactly the image seen at depth D, every joint lies on the ray of its 2D pose, and nearer people
  are nearer to the viewer. The floor grid runs from the camera (z = 0) to the plane.
"auto" (the default) is "camera" when the result was placed (its parts carry `pose3d_camera`, as with
`--camera-space`, `--focal`, `--fov` or `--export`), else "image": without a known focal length the
real-depth view rests on a guess (60 degrees) that scales every depth, while the published view needs none.

Nothing here mutates its inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from dope.parts import (BODY_HEAD, BODY_L_WRIST, BODY_R_WRIST, HAND_WRIST, NECK, PART_NAMES, PARTS, RED, Color,
                   Part)
from dope.results import NO_LINK, Result

BONE_RADIUS = 0.005      # scene units (image heights)
JOINT_RADIUS = 0.0075
JOINT_COLOR: Color = RED  # BGR
GRID_CELLS = 10          # the floor grid has 10 x 10 cells (11 lines each way), as the published view
PLANE_DEPTH = 0.5        # the image plane is half an image height behind the bodies' centres
FLOOR = 1.0              # the floor is level with the image's bottom edge
MIN_SCALE_FRACTION = 1e-6  # degenerate fits: smallest scale, relative to the ratio of 2D to 3D spreads
PLANE_BEHIND = 1.1       # camera depth mode: the image plane at 1.1 x the farthest joint's depth
DEPTH_MODES = ("auto", "image", "camera")

# Scene (x right, y down, z depth) to visvis world (X right, Y depth, Z up): a rotation, so that
# image-up is up for a camera whose azimuth turns about the vertical axis.
SCENE_TO_WORLD = np.array([[1.0, 0.0, 0.0],
                           [0.0, 0.0, 1.0],
                           [0.0, -1.0, 0.0]])


# ------------------------------------------------------------------------------------ fitting


def fit_scaled_orthographic(xy: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation t and scale s > 0 minimising sum_j ||s (xy_j + t) - uv_j||^2 (SPEC §8.2).

    xy: float[..., J, 2] the 3D pose's x and y; uv: float[..., J, 2] the 2D pose (pixels).
    Returns t float64[..., 2] (3D units) and s float64[...] (pixels per 3D unit).

    With u = s t the problem is linear least squares in (s, u), solved in closed form:
    s = <xy - mean xy, uv - mean uv> / ||xy - mean xy||^2 and u = mean uv - s mean xy.
    When that s is not positive (a mirrored or collapsed 2D pose) the constrained optimum is at
    s -> 0+, where the part shrinks onto its 2D centroid: s is then a vanishing fraction
    (MIN_SCALE_FRACTION) of the ratio of 2D to 3D spreads. A 3D pose with no spread in x, y
    has no scale to fit: s = 1 and the centroids are matched.
    """
    xy = np.asarray(xy, np.float64)
    uv = np.asarray(uv, np.float64)
    xy_mean, uv_mean = xy.mean(-2), uv.mean(-2)
    xc, uc = xy - xy_mean[..., None, :], uv - uv_mean[..., None, :]
    spread3d = (xc ** 2).sum((-1, -2))
    spread2d = (uc ** 2).sum((-1, -2))
    cross = (xc * uc).sum((-1, -2))
    # no spread: below rounding error of the coordinates' magnitude
    magnitude = np.abs(xy).max((-1, -2)) if xy.shape[-2] else np.zeros(xy.shape[:-2])
    flat = np.sqrt(spread3d / max(xy.shape[-2], 1)) <= 1e-12 * np.maximum(magnitude, np.finfo(np.float64).tiny)
    safe = np.where(flat, 1.0, spread3d)
    s = cross / safe
    floor = MIN_SCALE_FRACTION * np.sqrt(spread2d / safe)
    floor = np.where(floor > 0, floor, MIN_SCALE_FRACTION)
    s = np.where(flat, 1.0, np.maximum(s, floor))
    t = uv_mean / s[..., None] - xy_mean
    return t, s


def place(pose3d: np.ndarray, pose2d: np.ndarray) -> np.ndarray:
    """3D poses placed over their 2D poses: s (x + t_x, y + t_y, z), float64[..., J, 3] in pixels.

    pose3d: float[..., J, 3] with x, y along the image's x, y (flip bodies first: `flip_body`);
    pose2d: float[..., J, 2] pixels.
    """
    pose3d = np.asarray(pose3d, np.float64)
    t, s = fit_scaled_orthographic(pose3d[..., :2], pose2d)
    xy = pose3d[..., :2] + t[..., None, :]
    return s[..., None, None] * np.concatenate([xy, pose3d[..., 2:]], -1)


def flip_body(pose3d: np.ndarray) -> np.ndarray:
    """A copy of body 3D poses with x and y negated, to point along the image's x and y (SPEC §8.1)."""
    out = np.array(pose3d, np.float64)
    out[..., :2] *= -1
    return out


def assemble(result: Result) -> dict[str, np.ndarray]:
    """Every detection placed in 3D, hands and faces joined to their bodies (SPEC §8.2-8.3).

    Returns, per part, float64[N, J, 3] in image pixels (x right, y down, z depth). A face
    attached to a body is shifted in z so that its mean z is the body head's z; a hand attached
    to a body wrist is translated so that its wrist lands on that body wrist. Parts with no
    detection give (0, J, 3) arrays. The result's arrays are not modified.
    """
    placed = {}
    for name in PART_NAMES:
        dets = result[name]
        pose3d = dets.pose3d.astype(np.float64)
        if name == "body":
            pose3d = flip_body(pose3d)
        placed[name] = place(pose3d, dets.pose2d.astype(np.float64))
    fitted_hands = placed["hand"].copy()
    body = result.body
    for i, joints in enumerate(placed["body"]):
        if body.face[i] != NO_LINK:
            face = placed["face"][body.face[i]]
            face[:, 2] += joints[BODY_HEAD, 2] - face[:, 2].mean()
        for hand, wrist in ((body.left_hand[i], BODY_L_WRIST), (body.right_hand[i], BODY_R_WRIST)):
            if hand != NO_LINK:
                # from the fitted hand, so that a hand claimed twice is moved once, not twice
                fitted = fitted_hands[hand]
                placed["hand"][hand] = fitted + (joints[wrist] - fitted[HAND_WRIST])
    return placed


# -------------------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class Scene:
    """What the 3D view draws, in scene units (image heights; x right, y down, z depth).

    aspect: W / H; the image plane spans x in [0, aspect], y in [0, 1] at z = PLANE_DEPTH.
    texture: uint8[h, w, 3] BGR, the image with its 2D drawing, mapped onto the plane.
    plane: float64[4, 3] the plane's corners: the texture's top-left, top-right, bottom-right, bottom-left.
    grid: float64[L, 2, 3] floor line segments (plane y = FLOOR, in front of the image plane).
    bones: float64[B, 2, 3] capsule axes; bone_colors: uint8[B, 3] BGR; bone_parts: int[B] index in PART_NAMES.
    joints: float64[K, 3] sphere centres (coloured JOINT_COLOR); joint_parts: int[K].
    """
    aspect: float
    texture: np.ndarray
    plane: np.ndarray
    grid: np.ndarray
    bones: np.ndarray
    bone_colors: np.ndarray
    bone_parts: np.ndarray
    joints: np.ndarray
    joint_parts: np.ndarray
    bone_radius: float = BONE_RADIUS
    joint_radius: float = JOINT_RADIUS
    joint_color: Color = JOINT_COLOR

    def points(self) -> np.ndarray:
        """float64[P, 3] every point drawn (plane corners, grid ends, bone ends, joints)."""
        return np.concatenate([self.plane, self.grid.reshape(-1, 3), self.bones.reshape(-1, 3), self.joints])


def image_plane(aspect: float, depth: float = PLANE_DEPTH) -> np.ndarray:
    """float64[4, 3] corners of the image plane: top-left, top-right, bottom-right, bottom-left."""
    return np.array([[0.0, 0.0, depth], [aspect, 0.0, depth],
                     [aspect, FLOOR, depth], [0.0, FLOOR, depth]])


def floor_grid(aspect: float, cells: int = GRID_CELLS, depth: float = PLANE_DEPTH,
               length: Optional[float] = None, level: float = FLOOR) -> np.ndarray:
    """float64[2 (cells + 1), 2, 3]: a grid on the floor (the plane y = level), x in [0, aspect], z in
    [depth - length, depth] (length: aspect by default, a square)."""
    length = aspect if length is None else length
    ticks = np.linspace(0.0, 1.0, cells + 1)
    z0, z1 = depth - length, depth
    along_x = [[[0.0, level, z0 + t * length], [aspect, level, z0 + t * length]] for t in ticks]
    along_z = [[[t * aspect, level, z0], [t * aspect, level, z1]] for t in ticks]
    return np.array(along_x + along_z, np.float64)


def bone_ends(part: Part) -> np.ndarray:
    """int[B, 2, 2]: for each bone and end, two joints whose mean is that end (one joint twice for a joint)."""
    for bone in part.bones:
        if not all(1 <= len(end) <= 2 for end in (bone.a, bone.b)):
            raise ValueError(f"bone ends are one joint or the middle of two, got {bone}")
    return np.array([[(e[0], e[-1]) for e in (b.a, b.b)] for b in part.bones], np.intp)


def skeleton(points: np.ndarray, part: Part, skip_bones: Optional[np.ndarray] = None,
             skip_joints: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bones and joints of N poses of one part.

    points: float[N, J, 3]. skip_bones: bool[N, B] bones not drawn; skip_joints: bool[N, J].
    Returns bones float64[M, 2, 3], their BGR colours uint8[M, 3], joints float64[K, 3].
    """
    index = bone_ends(part)
    colors = np.array([b.color for b in part.bones], np.uint8)
    n = len(points)
    ends = 0.5 * (points[:, index[..., 0]] + points[:, index[..., 1]])  # (N, B, 2, 3)
    keep = np.ones((n, len(index)), bool) if skip_bones is None else ~skip_bones
    keep_joints = np.ones(points.shape[:2], bool) if skip_joints is None else ~skip_joints
    return ends[keep], np.broadcast_to(colors, (n, *colors.shape))[keep], points[keep_joints]


def assemble_camera(result: Result) -> tuple[dict[str, np.ndarray], float]:
    """Every detection at its camera-space place, in scene units of the "camera" depth mode
    (see the module's docstring): (per part float64[N, J, 3], the image plane's depth).

    Uses the result's `pose3d_camera` and `"camera"` when it has them, else places it now with
    the default camera (`dope.motion.camera`)."""
    from dope.motion.camera import FIELD_CAMERA, intrinsics, place_result
    if not is_placed(result):
        result = place_result(result, intrinsics(result.width, result.height))
    cam = result.meta["camera"]
    f, cx, cy, h = float(cam["focal_px"]), float(cam["cx"]), float(cam["cy"]), result.height
    points = {name: np.asarray(result[name].fields[FIELD_CAMERA], np.float64).reshape(-1, *result[name].pose3d.shape[1:])
              for name in PART_NAMES}
    depths = np.concatenate([p[..., 2].ravel() for p in points.values()])
    depths = depths[np.isfinite(depths)]
    far = PLANE_BEHIND * depths.max() if len(depths) and depths.max() > 0 else 1.0
    k = f / (far * h)
    shift = np.array([cx / h, cy / h, 0.0])
    return {name: p * k + shift for name, p in points.items()}, f / h


def is_placed(result: Result) -> bool:
    """Whether the result went through the camera-space placement (every part has `pose3d_camera`)."""
    from dope.motion.camera import FIELD_CAMERA
    return "camera" in result.meta and all(FIELD_CAMERA in result[p].fields for p in PART_NAMES)


def build_scene(texture_bgr: np.ndarray, result: Result, depth: str = "auto") -> Scene:
    """The scene of SPEC §8.4 for one image's result.

    texture_bgr: uint8[H, W, 3], the image (BGR) with its 2D drawing, unpadded, the size of the result's image.
    depth: "image", "camera" or "auto" (see the module's docstring).
    Faces get no joint spheres; a body with a face gets no head sphere and no neck bone.
    """
    if depth not in DEPTH_MODES:
        raise ValueError(f"depth must be one of {', '.join(DEPTH_MODES)}, got {depth!r}")
    h, w = result.height, result.width
    aspect = w / h
    if depth == "camera" or (depth == "auto" and is_placed(result)):
        placed, plane_depth = assemble_camera(result)
        # the floor through the lowest body joint (the feet), when below the image's bottom edge
        low = [p[..., 1].max() for p in placed.values() if p.size and np.isfinite(p[..., 1]).any()]
        level = max([FLOOR] + [float(np.nanmax(v)) for v in low if np.isfinite(v)])
        plane = image_plane(aspect, plane_depth)
        grid = floor_grid(aspect, depth=plane_depth, length=plane_depth, level=level)
    else:
        placed = {name: pts / h for name, pts in assemble(result).items()}
        plane, grid = image_plane(aspect), floor_grid(aspect)
    bones, colors, bone_parts, joints, joint_parts = [], [], [], [], []
    for k, name in enumerate(PART_NAMES):
        part, pts = PARTS[name], placed[name]
        skip_bones = np.zeros((len(pts), len(part.bones)), bool)
        skip_joints = np.zeros(pts.shape[:2], bool)
        if name == "face":
            skip_joints[:] = True
        if name == "body":
            has_face = result.body.face != NO_LINK
            skip_bones[:, part.bones.index(NECK)] = has_face
            skip_joints[:, BODY_HEAD] = has_face
        b, c, j = skeleton(pts, part, skip_bones, skip_joints)
        bones.append(b)
        colors.append(c)
        joints.append(j)
        bone_parts.append(np.full(len(b), k))
        joint_parts.append(np.full(len(j), k))
    return Scene(aspect=aspect, texture=np.ascontiguousarray(texture_bgr), plane=plane,
                 grid=grid, bones=np.concatenate(bones).reshape(-1, 2, 3),
                 bone_colors=np.concatenate(colors).reshape(-1, 3).astype(np.uint8),
                 bone_parts=np.concatenate(bone_parts).astype(np.intp),
                 joints=np.concatenate(joints).reshape(-1, 3),
                 joint_parts=np.concatenate(joint_parts).astype(np.intp))


# ------------------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class View:
    """How the scene is looked at (SPEC §8.4), as visvis's 3D camera says it.

    azimuth, elevation: degrees, about the vertical axis and above the floor; -45, 20 (the
    published view) look at the image plane from the front-left and slightly above. margin: the
    free space left on each side of the frame around the drawn scene, as a fraction of the frame's
    width and height. size: output (width, height) in pixels.
    """
    azimuth: float = -45.0
    elevation: float = 20.0
    margin: float = 0.04
    size: tuple[int, int] = (1280, 720)


def eye_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """float64[3, 3] rotating scene coordinates to eye coordinates (x right, y up, z towards the viewer).

    visvis's 3D camera: rotate the world by -azimuth about its vertical axis, then by
    270 + elevation degrees about x (OpenGL's glRotate, right-handed), after `SCENE_TO_WORLD`.
    """
    a, e = math.radians(-azimuth), math.radians(270.0 + elevation)
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return rx @ rz @ SCENE_TO_WORLD


@dataclass(frozen=True)
class Camera:
    """An orthographic camera framing a scene.

    rotation: float64[3, 3] scene to eye; center: float64[3] the scene point at the frame's centre;
    scale: pixels per scene unit; size: frame (width, height) in pixels.
    """
    rotation: np.ndarray
    center: np.ndarray
    scale: float
    size: tuple[int, int]
    azimuth: float
    elevation: float

    def eye(self, points: np.ndarray) -> np.ndarray:
        """float64[..., 3] eye coordinates (scene units) of scene points float[..., 3]."""
        return (np.asarray(points, np.float64) - self.center) @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels float64[..., 2] (x right, y down; integers are pixel centres, as in OpenCV) and
        depth float64[...] (scene units, larger is closer to the viewer) of scene points float[..., 3]."""
        e = self.eye(points)
        w, h = self.size
        px = np.stack([w / 2 - 0.5 + self.scale * e[..., 0], h / 2 - 0.5 - self.scale * e[..., 1]], -1)
        return px, e[..., 2]


def frame_scene(scene: Scene, view: View = View()) -> Camera:
    """The camera of `view` fitted to the scene: the drawn scene's projected bounding box (every
    point, with the bones' and joints' radii) centred, as large as fits inside the frame less
    `view.margin` on each side, whatever the image's aspect ratio and the view's angles."""
    rotation = eye_rotation(view.azimuth, view.elevation)
    pts = scene.points()
    mid = (pts.min(0) + pts.max(0)) / 2
    eye = (pts - mid) @ rotation.T
    radius = max(scene.bone_radius, scene.joint_radius) if len(scene.bones) or len(scene.joints) else 0.0
    lo, hi = eye[:, :2].min(0) - radius, eye[:, :2].max(0) + radius
    w, h = view.size
    room = np.array([w, h], np.float64) * (1 - 2 * view.margin)
    extent = np.maximum(hi - lo, 1e-9)
    # the eye-space centre of the box, back in scene coordinates at the middle's depth
    center = mid + np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.0]) @ rotation
    return Camera(rotation=rotation, center=center, scale=float(min(room / extent)), size=tuple(view.size),
                  azimuth=view.azimuth, elevation=view.elevation)


def fitted_texture(scene: Scene, camera: Camera) -> np.ndarray:
    """The scene's texture, shrunk (area averaging) to about twice its size on screen when larger.

    Bilinear sampling of a texture much larger than its footprint aliases (thin lines vanish).
    """
    corners, _ = camera.project(scene.plane)
    tex = scene.texture
    th, tw = tex.shape[:2]
    on_screen = max(np.linalg.norm(corners[1] - corners[0]) / tw, np.linalg.norm(corners[3] - corners[0]) / th)
    if on_screen >= 0.5:
        return tex
    size = (max(1, round(tw * on_screen * 2)), max(1, round(th * on_screen * 2)))
    return cv2.resize(tex, size, interpolation=cv2.INTER_AREA)
