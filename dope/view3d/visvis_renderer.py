"""The visvis renderer of the 3D view (`--renderer visvis`): the published tool's look, through Qt and OpenGL.

The visvis extra: visvis, PyQt5 and PyOpenGL are imported only when
this renderer draws. It needs a display (a desktop, `ssh -X`, or Xvfb on a server); without one
the built-in renderer (builtin_renderer.py) is the default. The scene and the camera are the ones the
built-in renderer uses (scene.py), so both frame the scene identically.

Bones are tubes and joints spheres, each kind one mesh with per-vertex colours (a mesh per bone
would take minutes with hundreds of detections); the image is an unlit texture on its plane.
The frame is read from the back buffer right after drawing into it: under Xvfb with Mesa,
visvis's own grab reads the front buffer, which is black.
"""
from __future__ import annotations

import importlib.util
import logging
import socket
import subprocess
import sys
from typing import Mapping, Optional

import numpy as np

from dope.view3d.scene import SCENE_TO_WORLD, Camera, Scene

log = logging.getLogger("dope.visu3d")

MODULES = ("visvis", "PyQt5", "OpenGL")
INSTALL_HINT = "pip install 'dope-wholebody[visvis]' (and see docs/3d-and-camera-space.md for the system libraries)"
BORDER = 10             # visvis's axes sit 10 px inside the figure: the frame is cropped by that much
LIGHT_AMBIENT = 0.8     # SPEC §8.4: mostly ambient light
LIGHT_DIFFUSE = 0.2
TUBE_SIDES = 12
SPHERE_RINGS, SPHERE_SEGMENTS = 8, 12
PROBE_TIMEOUT_S = 60

# Creates a Qt application and an OpenGL context, draws once, and exits 0: run in a child process,
# because Qt aborts the whole process (no exception) when it cannot load its platform plugin
# (missing xcb libraries) or reach the display.
_PROBE = """
import visvis as vv
app = vv.use('qt5')
fig = vv.figure()
fig.position = 0, 0, 64, 48
fig.DrawNow()
import OpenGL.GL as gl
fig._SetCurrent()
print(gl.glGetString(gl.GL_RENDERER).decode(errors='replace'))
fig.Destroy()
app.ProcessEvents()
"""

_probe_cache: dict[tuple[str, str], Optional[str]] = {}


class VisvisError(RuntimeError):
    """visvis could not render (not installed, no display, OpenGL failure)."""


# ---------------------------------------------------------------------------------- availability


def display_reachable(env: Mapping[str, str]) -> Optional[str]:
    """None when an X display can be connected to, else why not ($DISPLAY unset, no server...)."""
    if sys.platform in ("darwin", "win32"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "no display ($DISPLAY is not set)"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"cannot parse $DISPLAY={display!r}"
    try:
        if host in ("", "unix"):
            path = f"/tmp/.X11-unix/X{number}"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                try:
                    s.connect(path)
                except OSError:
                    if not sys.platform.startswith("linux"):
                        raise
                    s.connect("\0" + path)  # Linux servers also listen on an abstract socket
        else:
            with socket.create_connection((host, 6000 + int(number)), timeout=2.0):
                pass
    except OSError as e:
        return f"display {display} is not reachable ({e.strerror or e})"
    return None


def unavailable_reason(env: Mapping[str, str]) -> Optional[str]:
    """None when the visvis renderer can draw here, else a one-line reason.

    Checks that the modules are installed, that the display answers and, once per process and
    display, that Qt can open an OpenGL window there (in a child process, see _PROBE).
    """
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} not installed ({INSTALL_HINT})"
    why = display_reachable(env)
    if why:
        return why
    key = (env.get("DISPLAY", ""), sys.executable)
    if key not in _probe_cache:
        _probe_cache[key] = _probe(env)
    return _probe_cache[key]


def _probe(env: Mapping[str, str]) -> Optional[str]:
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=dict(env), capture_output=True, text=True,
                           timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"Qt/OpenGL did not start within {PROBE_TIMEOUT_S} s"
    if r.returncode != 0:
        lines = [line for line in (r.stderr or "").strip().splitlines() if line.strip()]
        hint = lines[-1] if lines else f"exit status {r.returncode}"
        return f"Qt/OpenGL cannot open a window ({hint}); on Debian/Ubuntu: apt-get install libgl1 libegl1 " \
               "libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 " \
               "libxcb-render-util0 libxcb-randr0 libxcb-shape0 libdbus-1-3 libfontconfig1"
    log.debug("visvis: OpenGL renderer %s", r.stdout.strip())
    return None


# -------------------------------------------------------------------------------------- geometry


def tubes(bones: np.ndarray, radius: float, sides: int = TUBE_SIDES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open cylinders around line segments float[B, 2, 3].

    Returns vertices float32[B * 2 * sides, 3], normals (same shape) and quads int32[B * sides, 4].
    """
    a, b = bones[:, 0], bones[:, 1]
    axis = b - a
    length = np.linalg.norm(axis, axis=1, keepdims=True)
    d = np.where(length > 0, axis / np.where(length > 0, length, 1), [[0.0, 0.0, 1.0]])
    helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(d, u)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = np.cos(angles)[None, :, None] * u[:, None] + np.sin(angles)[None, :, None] * v[:, None]  # (B, S, 3)
    vertices = np.stack([a[:, None] + radius * ring, b[:, None] + radius * ring], 1)  # (B, 2, S, 3)
    normals = np.stack([ring, ring], 1)
    s = np.arange(sides)
    quad = np.stack([s, (s + 1) % sides, sides + (s + 1) % sides, sides + s], 1)  # (S, 4)
    quads = quad[None] + (2 * sides * np.arange(len(bones)))[:, None, None]
    return (vertices.reshape(-1, 3).astype(np.float32), normals.reshape(-1, 3).astype(np.float32),
            quads.reshape(-1, 4).astype(np.int32))


def spheres(centres: np.ndarray, radius: float, rings: int = SPHERE_RINGS,
            segments: int = SPHERE_SEGMENTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spheres at points float[K, 3]: vertices float32[K * V, 3], normals, quads int32[K * F, 4]."""
    theta = np.linspace(0, np.pi, rings + 1)[:, None]
    phi = np.linspace(0, 2 * np.pi, segments + 1)[None, :]
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta) + 0 * phi], -1)
    unit = unit.reshape(-1, 3)  # ((rings + 1) * (segments + 1), 3)
    i, j = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    w = segments + 1
    quad = np.stack([i * w + j, i * w + j + 1, (i + 1) * w + j + 1, (i + 1) * w + j], -1).reshape(-1, 4)
    vertices = centres[:, None] + radius * unit[None]
    quads = quad[None] + (len(unit) * np.arange(len(centres)))[:, None, None]
    return (vertices.reshape(-1, 3).astype(np.float32), np.broadcast_to(unit, vertices.shape).reshape(-1, 3)
            .astype(np.float32), quads.reshape(-1, 4).astype(np.int32))


# -------------------------------------------------------------------------------------- rendering


def _world(points: np.ndarray) -> np.ndarray:
    """visvis world coordinates (z up) of scene points float[..., 3]."""
    return np.asarray(points, np.float64) @ SCENE_TO_WORLD.T


def _rgb(colors_bgr: np.ndarray) -> np.ndarray:
    return np.asarray(colors_bgr, np.float32)[..., ::-1] / 255


def _build(vv, axes, scene: Scene, camera: Camera) -> None:
    """Add the scene's objects to a visvis axes."""
    from dope.view3d.builtin_renderer import fitted_texture
    # The image: an unlit texture. Texture2D draws pixel (col, row) at (col, row, 0); scale it to
    # scene units and turn it upright onto the plane (transformations apply last-listed first).
    texture = fitted_texture(scene, camera)
    th, tw = texture.shape[:2]
    image = vv.Texture2D(axes, np.ascontiguousarray(texture[:, :, ::-1]))  # not vv.imshow: it shifts z by -0.1
    image.interpolate = True
    image.aa = 2
    corner = scene.plane[0]
    image.transformations.insert(0, vv.Transform_Translate(*_world(corner)))
    image.transformations.insert(1, vv.Transform_Rotate(-90, 1, 0, 0))
    image.transformations.insert(2, vv.Transform_Scale(scene.aspect / tw, 1.0 / th, 1.0))
    image.transformations.insert(3, vv.Transform_Translate(0.5, 0.5, 0.0))
    for a, b in _world(scene.grid):
        vv.plot(np.array([a, b]), lc="k", lw=1, ls="-", ms="", axes=axes)
    if len(scene.bones):
        vertices, normals, quads = tubes(_world(scene.bones), scene.bone_radius)
        sides = len(vertices) // (2 * len(scene.bones))
        colors = np.repeat(_rgb(scene.bone_colors), 2 * sides, axis=0)
        vv.Mesh(axes, vertices, quads, normals, colors, verticesPerFace=4)
    if len(scene.joints):
        vertices, normals, quads = spheres(_world(scene.joints), scene.joint_radius)
        mesh = vv.Mesh(axes, vertices, quads, normals, verticesPerFace=4)
        mesh.faceColor = tuple(_rgb(np.array(scene.joint_color)).tolist())


def _set_camera(axes, camera: Camera, height: int) -> None:
    cam = axes.camera
    cam.fov = 0
    cam.azimuth = camera.azimuth
    cam.elevation = camera.elevation
    cam.roll = 0
    cam.loc = tuple(_world(camera.center).tolist())
    cam.zoom = camera.scale / height  # visvis's 3D camera shows 1 / zoom world units over the axes' height


def _grab(fig) -> np.ndarray:
    """uint8[h, w, 3] RGB of the figure, drawn into the back buffer and read from there."""
    import OpenGL.GL as gl
    from visvis.core.base import DRAW_NORMAL
    fig._SetCurrent()
    fig._Draw(DRAW_NORMAL)
    gl.glFinish()
    w, h = (int(v) for v in fig.position.size)
    ratio = float(getattr(fig, "_devicePixelRatio", 1.0) or 1.0)  # HiDPI screens: more pixels than the size
    pw, ph = int(round(w * ratio)), int(round(h * ratio))
    gl.glReadBuffer(gl.GL_BACK)
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glReadPixels(0, 0, pw, ph, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    frame = np.flipud(np.frombuffer(data, np.uint8).reshape(ph, pw, 3))
    if (pw, ph) != (w, h):
        import cv2
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


def _figure(vv, scene: Scene, camera: Camera):
    """A visvis figure showing the scene through the camera; its axes fill the frame, BORDER px inside."""
    w, h = camera.size
    fig = vv.figure()
    fig.position = 0, 0, w + 2 * BORDER, h + 2 * BORDER
    fig.title = "DOPE 3D view"
    axes = vv.gca()
    axes.bgcolor = "w"
    axes.axis.visible = False  # also: visvis with numpy >= 2 fails drawing visible axes
    axes.cameraType = "3d"
    axes.daspectAuto = False
    axes.daspect = 1, 1, 1
    axes.light0.ambient = LIGHT_AMBIENT
    axes.light0.diffuse = LIGHT_DIFFUSE
    _build(vv, axes, scene, camera)
    axes.SetLimits()
    _set_camera(axes, camera, h)
    fig.DrawNow()
    size = tuple(int(v) for v in fig.position.size)
    if size != (w + 2 * BORDER, h + 2 * BORDER):
        fig.Destroy()
        raise VisvisError(f"the window is {size[0]}x{size[1]}, smaller than the {w}x{h} frame (screen too small?)")
    return fig


def _visvis():
    """(visvis, its Qt5 application); OpenGL's import-time INFO lines are kept out of the user's log."""
    opengl_log = logging.getLogger("OpenGL")
    if opengl_log.level == logging.NOTSET:
        opengl_log.setLevel(logging.WARNING)
    try:
        import visvis as vv
    except ImportError as e:
        raise VisvisError(f"visvis is not installed ({INSTALL_HINT}): {e}") from None
    return vv, vv.use("qt5")


def render(scene: Scene, camera: Camera) -> np.ndarray:
    """uint8[H, W, 3] BGR picture of the scene, (W, H) = camera.size, drawn by visvis.

    A window the size of the frame is opened on the display, drawn, read and closed.
    Raises VisvisError when visvis cannot draw.
    """
    vv, app = _visvis()
    w, h = camera.size
    try:
        fig = _figure(vv, scene, camera)
        try:
            frame = _grab(fig)[BORDER:BORDER + h, BORDER:BORDER + w, ::-1]
        finally:
            fig.Destroy()
            app.ProcessEvents()
    except VisvisError:
        raise
    except Exception as e:  # Qt and OpenGL report failures with many exception types
        raise VisvisError(f"{type(e).__name__}: {e}") from e
    if frame.min() == frame.max():
        raise VisvisError("OpenGL drew nothing (blank frame)")
    return np.ascontiguousarray(frame)


def show(scene: Scene, camera: Camera) -> None:
    """Open a window on the scene, which the mouse turns and zooms, and wait until it is closed."""
    vv, app = _visvis()
    try:
        _figure(vv, scene, camera)
        app.Run()
    except VisvisError:
        raise
    except Exception as e:
        raise VisvisError(f"{type(e).__name__}: {e}") from e
