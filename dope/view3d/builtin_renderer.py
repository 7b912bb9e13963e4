"""The 3D view's built-in renderer (NumPy and OpenCV, no OpenGL).

It draws a `scene.Scene` as visvis would (SPEC §8.4): an orthographic camera,
the image on its plane (a perspective warp of the texture), the floor grid, bones as anti-aliased
capsule outlines and joints as discs, back to front (painter's algorithm), shaded like visvis's
lit meshes so that bones look like capsules and joints like spheres. Everything is projected in
one vectorised step and sorted once; drawing is one OpenCV call per bone or joint and shading layer.
The renderer choice and writing the picture live in render.py.
"""
from __future__ import annotations

import cv2
import numpy as np

from dope.view3d.scene import PLANE_DEPTH, Camera, Scene, fitted_texture

BACKGROUND = (255, 255, 255)  # BGR
GRID_COLOR = (70, 70, 70)  # BGR; anti-aliased 1 px lines cover ~1.4 px: as dark overall as 1 px black

# Lighting, as visvis computes it for a lit mesh under its camera light (light and view along the
# eye's z): colour * (ambient + diffuse * n_z) + specular * n_z ** shininess. Light ambient 0.8 and
# diffuse 0.2 (SPEC §8.4) times visvis's default material (ambient 0.7, diffuse 0.7, specular 0.3,
# shininess 50).
AMBIENT = 0.8 * 0.7
DIFFUSE = 0.2 * 0.7
SPECULAR = 0.3
SHININESS = 50.0
SHIFT = 4  # OpenCV fixed-point bits: sub-pixel positions for anti-aliased drawing
MAX_LAYERS = 5  # shading rings of the widest discs and lines
AA_FRINGE = 1.4  # px: OpenCV's anti-aliased polygons cover about this much more than their outline's width
DISC_FRINGE = 0.9  # px: and its anti-aliased discs about this much more than their diameter
MIN_DRAWN = 0.4  # px: thinnest outline drawn (covers about 1.8 px)
CAP_VERTICES = 5  # per half circle of a capsule's outline


# ------------------------------------------------------------------------------- shading


def shade(colors_bgr: np.ndarray, nz: np.ndarray) -> np.ndarray:
    """float64[..., N, 3]: BGR colours float[..., 3] lit where the surface normal's eye z is nz float[N]."""
    c = np.asarray(colors_bgr, np.float64)[..., None, :]
    nz = np.asarray(nz, np.float64)[:, None]
    return c * (AMBIENT + DIFFUSE * nz) + 255.0 * SPECULAR * nz ** SHININESS


def shading_rings(colors_bgr: np.ndarray, width_px: float) -> tuple[list[float], np.ndarray]:
    """Concentric rings that shade discs or lines of this width (pixels) as spheres or capsules.

    Returns the rings' widths (fractions of the full width, outermost first) and their colours
    uint8[..., L, 3] for BGR colours uint8[..., 3]: the mean shade of the ring's stretch of the
    cross-section. Lines and discs thinner than 6 px are one ring with the whole section's mean.
    """
    layers = int(np.clip(width_px // 3, 1, MAX_LAYERS))
    edges = np.linspace(1.0, 0.0, layers + 1)  # normalised distance from the axis or centre
    rings = []
    for outer, inner in zip(edges[:-1], edges[1:]):
        u = np.linspace(inner, outer, 33)
        rings.append(shade(colors_bgr, np.sqrt(1 - u ** 2)).mean(-2))
    colors = np.clip(np.rint(np.stack(rings, -2)), 0, 255).astype(np.uint8)
    return list(edges[:-1]), colors


# ------------------------------------------------------------------------------- renderer


def _fixed(px: np.ndarray) -> np.ndarray:
    """int[..., 2] OpenCV fixed-point coordinates, clipped far outside the frame (OpenCV wants int32)."""
    return np.rint(np.clip(px, -1e5, 1e5) * (1 << SHIFT)).astype(np.int64)


def _draw_plane(canvas: np.ndarray, scene: Scene, camera: Camera) -> None:
    """Warp the texture onto its projected plane, in place, with anti-aliased edges."""
    corners, _ = camera.project(scene.plane)
    if abs(cv2.contourArea(np.float32(corners))) < 1.0:  # seen edge-on: nothing to warp onto
        return
    tex = fitted_texture(scene, camera)
    th, tw = tex.shape[:2]
    src = np.float32([[-0.5, -0.5], [tw - 0.5, -0.5], [tw - 0.5, th - 0.5], [-0.5, th - 0.5]])
    w, h = camera.size
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return
    homography = cv2.getPerspectiveTransform(src, np.float32(corners - (x0, y0)))
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(tex, homography, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), homography, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
    alpha = mask[..., None].astype(np.float32) / 255
    region = canvas[y0:y1, x0:x1]
    region[:] = np.rint(region * (1 - alpha) + warped * alpha).astype(np.uint8)


def _drawn(width_px: float, fringe: float = AA_FRINGE) -> float:
    """The width to give an OpenCV anti-aliased fill so that it covers width_px (its fringe adds `fringe`)."""
    return max(width_px - fringe, MIN_DRAWN)


def capsule_outlines(a: np.ndarray, b: np.ndarray, half_width: float, cap: int = CAP_VERTICES) -> np.ndarray:
    """float64[N, 2 cap, 2]: convex outlines of 2D capsules (stadiums) from a float[N, 2] to b float[N, 2]."""
    d = b - a
    length = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.where(length > 1e-9, d / np.maximum(length, 1e-9), [[1.0, 0.0]])
    n = np.stack([-d[:, 1], d[:, 0]], 1)
    theta = np.linspace(-np.pi / 2, np.pi / 2, cap)[None, :, None]
    around_b = b[:, None] + half_width * (np.cos(theta) * d[:, None] + np.sin(theta) * n[:, None])
    around_a = a[:, None] - half_width * (np.cos(theta) * d[:, None] + np.sin(theta) * n[:, None])
    return np.concatenate([around_b, around_a], 1)


def _draw_grid(canvas: np.ndarray, scene: Scene, camera: Camera) -> None:
    px, _ = camera.project(scene.grid)
    for a, b in _fixed(px).tolist():
        cv2.line(canvas, a, b, GRID_COLOR, 1, cv2.LINE_AA, SHIFT)


def render_builtin(scene: Scene, camera: Camera) -> np.ndarray:
    """uint8[H, W, 3] BGR picture of the scene, (W, H) = camera.size; no OpenGL.

    Bones are filled capsule outlines rather than cv2.line: OpenCV's thick anti-aliased lines only
    come in odd widths (a thickness of 2 or 3 covers 3.5 or 5.5 px), too coarse for 2-3 px bones.
    Order: bones and joints behind the image plane, the plane, the floor grid, then every other
    bone and joint from the farthest to the closest. A primitive's depth is that of its point
    closest to the viewer along the axis (a bone's middle, a joint's centre) plus its radius.
    """
    w, h = camera.size
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:] = BACKGROUND
    nb = len(scene.bones)
    bone_px, bone_depth = camera.project(scene.bones)            # (B, 2, 2), (B, 2)
    joint_px, joint_depth = camera.project(scene.joints)         # (K, 2), (K,)
    depth = np.concatenate([bone_depth.mean(1) + scene.bone_radius, joint_depth + scene.joint_radius])
    # behind the image plane: on its far side from the viewer (rotation[2]: the scene direction to the viewer)
    offset = np.concatenate([scene.bones[:, :, 2].mean(1), scene.joints[:, 2]]) - PLANE_DEPTH
    behind = offset * camera.rotation[2, 2] < 0
    order = np.argsort(depth, kind="stable")
    back, front = order[behind[order]], order[~behind[order]]

    bone_width = 2 * scene.bone_radius * camera.scale
    joint_width = 2 * scene.joint_radius * camera.scale
    bone_rings, bone_colors = shading_rings(scene.bone_colors, bone_width)            # (B, L, 3)
    joint_rings, joint_colors = shading_rings(np.array(scene.joint_color), joint_width)  # (L, 3)
    outlines = np.stack([capsule_outlines(bone_px[:, 0], bone_px[:, 1], _drawn(bone_width * r) / 2)
                         for r in bone_rings], 1)                                         # (B, L, V, 2)
    outlines = _fixed(outlines).astype(np.int32)
    radius = [int(round(_drawn(joint_width * r, DISC_FRINGE) / 2 * (1 << SHIFT))) for r in joint_rings]
    bone_colors, joint_colors = bone_colors.tolist(), joint_colors.tolist()
    centres = _fixed(joint_px).tolist()
    rings = range(len(bone_rings))

    def draw(indexes: np.ndarray) -> None:
        for i in indexes.tolist():
            if i < nb:
                for k, color in zip(rings, bone_colors[i]):
                    cv2.fillConvexPoly(canvas, outlines[i, k], color, cv2.LINE_AA, SHIFT)
            else:
                c = centres[i - nb]
                for r, color in zip(radius, joint_colors):
                    cv2.circle(canvas, c, r, color, -1, cv2.LINE_AA, SHIFT)

    draw(back)
    _draw_plane(canvas, scene, camera)
    _draw_grid(canvas, scene, camera)
    draw(front)
    return canvas
