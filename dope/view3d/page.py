"""The 3D view in the browser: one self-contained HTML page (plotly.js inlined) for an image or a clip.

The page shows every body, hand and face in 3D in the 2D drawing's bone colours, the image as a
backdrop plane, a floor grid and the camera; the mouse turns (left), pans (right) and zooms
(wheel); hovering over a joint names its part, joint, person and score. A clip gets a play button
and a time slider, and every person (track) keeps one marker colour over the clip.

Placement, per clip:
- camera space, when detections carry `pose3d_camera` (metres, OpenCV camera frame: x right,
  y down, z forward; the camera-space stage adds it): the camera sits at the origin, and the image
  is the plane that fills its view behind the people. The focal length is taken from `focal` or
  fitted to the 2D and camera-space joints (principal point at the image centre).
- otherwise as the --visu3d view (`scene.assemble`): image-aligned coordinates in image heights,
  the image plane at z = 0.5, the floor at the image's bottom edge; the camera drawn in front of it
  only shows the viewing direction (the placement is orthographic, so it has no distance).

Size (a 300-frame clip of 5 whole-body people is about 6.6 MB, 4.8 MB of which is plotly.js):
coordinates are integers of 1e-3 units (millimetres in camera space), packed as little-endian
int16 (int32 when they do not fit) in base64; joint names, bones and colours are written once;
the backdrop is one downscaled JPEG shared by every frame (or one per image for image lists).

Nothing here mutates its inputs.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np

from dope.files import atomic_write
from dope.outputs.writers import ClosedOnExit, OutputError
from dope.parts import NECK, PART_NAMES, PARTS, Color
from dope.results import LINKS, NO_LINK, Result
from dope.view3d.scene import (GRID_CELLS, PLANE_DEPTH, SCENE_TO_WORLD, View, assemble, eye_rotation, floor_grid,
                                    image_plane)

log = logging.getLogger("dope.page")

MISSING_EXTRA = "the HTML page needs plotly: pip install 'dope-wholebody[html]'"
UNIT = 1e-3                # stored coordinates are integers of this many scene units (mm in camera space)
SCORE_UNIT = 1e-3          # scores are stored as integers of 1e-3
BACKDROP_WIDTH = 192       # pixels of a backdrop shared by the whole clip (more: sharper, slower frame changes)
EACH_BACKDROP_WIDTH = 128  # pixels of a backdrop per image (image lists): many of them must fit the budget
JPEG_QUALITY = 85
DEFAULT_HFOV = 60.0        # degrees: the horizontal field of view when no focal length can be fitted
CAMERA_GLYPH = 0.12        # depth of the camera glyph, in scene units (image heights or metres)
# Marker colours per person (RGB), in turn by person id; parts with no person are grey.
PERSON_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
                 "#800000", "#000075")
NO_PERSON_COLOR = "#808080"
MARKER_SIZES = {"body": 4.0, "hand": 2.5, "face": 1.0}  # screen pixels
LINE_WIDTHS = {"body": 7.0, "hand": 4.0, "face": 3.0}   # screen pixels
BACKDROPS = ("first", "each")


class PageError(RuntimeError):
    """The page cannot be made (plotly is not installed)."""


def plotly_js() -> str:
    """plotly.js, minified, from the `plotly` package (the html extra)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise PageError(MISSING_EXTRA) from None
    return get_plotlyjs()


def check_available() -> None:
    """Raise PageError (one line) when the page cannot be written here (plotly missing or broken)."""
    try:
        import plotly.offline  # noqa: F401
    except ImportError:
        raise PageError(MISSING_EXTRA) from None


def css_rgb(bgr: Color) -> str:
    """'rgb(r,g,b)' for a BGR colour of parts.py."""
    b, g, r = bgr
    return f"rgb({r},{g},{b})"


def to_world(points: np.ndarray) -> np.ndarray:
    """float64[..., 3]: scene or camera coordinates (x right, y down, z forward) to the page's axes
    (x right, y forward, z up), as visvis's world (`SCENE_TO_WORLD`)."""
    return np.asarray(points, np.float64) @ SCENE_TO_WORLD.T


# ------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class _PartFrame:
    """One part's detections in one frame, ready for the page.

    scene: float32[N, J, 3] the --visu3d placement (image heights); camera: float32[N, J, 3]
    pose3d_camera (metres) or None when the part has no such field; person: int64[N] person id
    (-1: none); scores: float32[N]; face_linked: bool[N] (bodies: the neck is not drawn).
    """
    scene: np.ndarray
    camera: Optional[np.ndarray]
    person: np.ndarray
    scores: np.ndarray
    face_linked: np.ndarray


@dataclass(frozen=True)
class _Frame:
    parts: dict[str, _PartFrame]
    height: int
    width: int
    label: str
    backdrop: int  # index into the page's backdrops, -1 for none


def _ids(values: Any, n: int) -> np.ndarray:
    """int64[n] person ids from a track field (None / NaN / negative: no id)."""
    out = np.full(n, -1, np.int64)
    for i, v in enumerate(np.asarray(values, dtype=object).reshape(n, -1)[:, 0] if n else ()):
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f) and f >= 0:
            out[i] = int(f)
    return out


def person_ids(result: Result) -> dict[str, np.ndarray]:
    """int64[N] person ids per part, -1 for none.

    Bodies: their `track` when the part has that field, else their detection index. Hands and
    faces: their own `track` when they have one, else the id of the body they are attached to
    (-1 for one found alone).
    """
    body = result.body
    ids = {"body": _ids(body.track, len(body)) if "track" in body.fields else np.arange(len(body), dtype=np.int64)}
    for part in ("hand", "face"):
        arr = result[part]
        own = _ids(arr.track, len(arr)) if "track" in arr.fields else np.full(len(arr), -1, np.int64)
        from_body = np.full(len(arr), -1, np.int64)
        for link, target in LINKS.items():
            if target != part:
                continue
            for b, k in enumerate(body.fields[link]):
                if k != NO_LINK and 0 <= k < len(arr) and from_body[k] < 0:
                    from_body[k] = ids["body"][b]
        ids[part] = np.where(own >= 0, own, from_body)
    return ids


def _camera_points(result: Result) -> dict[str, Optional[np.ndarray]]:
    out: dict[str, Optional[np.ndarray]] = {}
    for name in PART_NAMES:
        arr = result[name]
        if "pose3d_camera" not in arr.fields:
            out[name] = None
            continue
        pts = np.asarray(arr.pose3d_camera, np.float64)
        if pts.shape != (len(arr), PARTS[name].num_joints, 3):
            raise ValueError(f"{name} pose3d_camera has shape {pts.shape}; expected "
                             f"({len(arr)}, {PARTS[name].num_joints}, 3)")
        out[name] = pts.astype(np.float32)
    return out


def _frame_label(index: int, label: Optional[str]) -> str:
    return label if label else f"frame {index}"


# ---------------------------------------------------------------------------------- backdrops


def encode_backdrop(image_rgb: np.ndarray, width: int) -> str:
    """The image (RGB uint8[H, W, 3]) shrunk to `width` pixels (never enlarged), as base64 JPEG."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"a backdrop is an RGB uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if w > width:
        size = (width, max(1, round(h * width / w)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("cannot encode the backdrop as JPEG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


# --------------------------------------------------------------------------------------- page


class HtmlPage:
    """The page being assembled, one frame at a time; `html()` gives the text.

    fps: playback rate (frames per second; default: from the frames' times, else 10).
    backdrop: "first" (one backdrop for the clip: the first image given) or "each" (one per image
    given; frames without an image keep the previous one). backdrop_width: pixels (default 192 for
    "first", 128 for "each"). focal: pixels, for camera-space placement (default: fitted).
    """

    def __init__(self, *, fps: Optional[float] = None, backdrop: str = "first", backdrop_width: Optional[int] = None,
                 focal: Optional[float] = None) -> None:
        if backdrop not in BACKDROPS:
            raise ValueError(f"backdrop must be one of {', '.join(BACKDROPS)}, got {backdrop!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if focal is not None and not focal > 0:
            raise ValueError(f"focal must be positive (pixels), got {focal}")
        self.fps = fps
        self.backdrop = backdrop
        self.backdrop_width = int(backdrop_width or (BACKDROP_WIDTH if backdrop == "first" else EACH_BACKDROP_WIDTH))
        self.focal = focal
        self.frames: list[_Frame] = []
        self.backdrops: list[str] = []
        self.times: list[Optional[float]] = []
        self._focal_sums = np.zeros(2)  # numerator, denominator of the least-squares focal length
        self._tracked = False

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, result: Result, image: Optional[np.ndarray] = None, label: Optional[str] = None,
            time_s: Optional[float] = None) -> None:
        """Add one frame: its result, optionally its RGB uint8 (H, W, 3) image, a label and its time (s)."""
        if image is not None and (self.backdrop == "each" or not self.backdrops):
            self.backdrops.append(encode_backdrop(image, self.backdrop_width))
        placed = assemble(result)
        camera = _camera_points(result)
        ids = person_ids(result)
        self._tracked |= any("track" in result[p].fields for p in PART_NAMES)
        parts = {}
        for name in PART_NAMES:
            arr = result[name]
            face_linked = arr.face != NO_LINK if name == "body" else np.zeros(len(arr), bool)
            parts[name] = _PartFrame(scene=(placed[name] / result.height).astype(np.float32), camera=camera[name],
                                     person=ids[name], scores=arr.scores.copy(), face_linked=face_linked)
            if camera[name] is not None:
                self._accumulate_focal(camera[name], arr.pose2d, result)
        self.frames.append(_Frame(parts=parts, height=result.height, width=result.width,
                                  label=_frame_label(len(self.frames), label), backdrop=len(self.backdrops) - 1))
        self.times.append(time_s)

    def _accumulate_focal(self, cam: np.ndarray, pose2d: np.ndarray, result: Result) -> None:
        """Sums of the least-squares focal f minimising sum (f X/Z - (u - cx))^2 + (f Y/Z - (v - cy))^2."""
        cam = cam.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            xy = cam[..., :2] / cam[..., 2:]
        uv = pose2d.astype(np.float64) - np.array([result.width / 2, result.height / 2])
        ok = np.isfinite(xy).all(-1) & np.isfinite(uv).all(-1) & (cam[..., 2] > 0)
        self._focal_sums += [(xy[ok] * uv[ok]).sum(), (xy[ok] ** 2).sum()]

    # ------------------------------------------------------------------------------ output

    def camera_space(self) -> bool:
        """Whether the page places people in camera space (some detection has pose3d_camera)."""
        return any(pf.camera is not None for f in self.frames for pf in f.parts.values())

    def fitted_focal(self) -> float:
        """Pixels: `focal`, else the least-squares fit to the camera-space joints, else 60° horizontal."""
        if self.focal is not None:
            return float(self.focal)
        num, den = self._focal_sums
        if den > 0 and num > 0:
            return float(num / den)
        width = self.frames[0].width if self.frames else 1
        return width / 2 / math.tan(math.radians(DEFAULT_HFOV) / 2)

    def data(self) -> dict[str, Any]:
        """Everything the page's script reads (see page.js), JSON-ready."""
        if not self.frames:
            raise ValueError("the page has no frames")
        camera_mode = self.camera_space()
        first = self.frames[0]
        h, w = first.height, first.width
        dropped: set[str] = set()
        detections, points = {}, []
        for name in PART_NAMES:
            coords, counts, persons, scores, linked = [], [], [], [], []
            j = PARTS[name].num_joints
            for frame in self.frames:
                pf = frame.parts[name]
                if camera_mode:
                    pts = pf.camera
                    if pts is None:
                        if len(pf.scores):
                            dropped.add(name)
                        pts = np.zeros((0, j, 3), np.float32)
                        keep = np.zeros(0, np.intp)
                    else:
                        keep = np.flatnonzero(np.isfinite(pts).all(2).any(1))  # placed: some joint is finite
                else:
                    pts, keep = pf.scene, np.arange(len(pf.scores))
                counts.append(len(keep))
                coords.append(to_world(pts[keep]))
                persons.append(pf.person[keep])
                scores.append(pf.scores[keep])
                linked.append(pf.face_linked[keep])
            world = np.concatenate(coords).reshape(-1, j, 3) if coords else np.zeros((0, j, 3))
            points.append(world.reshape(-1, 3))
            ints = np.round(world / UNIT)
            packed, dtype = _pack(ints)
            scores_all = np.concatenate(scores).astype(np.float64)
            detections[name] = {
                "count": counts, "xyz": packed, "dtype": dtype,
                "person": np.concatenate(persons).astype(int).tolist(),
                "score": [None if not math.isfinite(s) else int(round(s / SCORE_UNIT)) for s in scores_all],
                "face_linked": np.concatenate(linked).astype(int).tolist(),
            }
        for name in sorted(dropped):
            log.warning("HTML page: some %s detections have no pose3d_camera and are not shown "
                        "(the page is in camera space)", name)
        statics = self._statics(camera_mode, h, w)
        for key in ("plane", "grid", "camera"):
            points.append(np.asarray(statics[key], np.float64).reshape(-1, 3))
        everything = np.concatenate(points)
        everything = everything[np.isfinite(everything).all(1)]
        lo, hi = everything.min(0), everything.max(0)
        pad = 0.05 * max(float((hi - lo).max()), 1e-6)
        lo, hi = lo - pad, hi + pad
        extent = hi - lo
        aspect = extent / extent.max()
        centre = (lo + hi) / 2
        eye = self._eye(centre, extent, aspect)
        camera_eye = ((np.zeros(3) if camera_mode else statics["camera"][0]) - centre) / extent * aspect
        return {
            "version": 1,
            "frames": len(self.frames),
            "labels": [f.label for f in self.frames],
            "times": [None if t is None else round(float(t), 4) for t in self.times],
            "fps": self._fps(),
            "mode": "camera" if camera_mode else "image",
            "units": "m" if camera_mode else "image heights",
            "tracked": self._tracked,
            "unit": UNIT, "score_unit": SCORE_UNIT,
            "parts": [_part_table(name) for name in PART_NAMES],
            "person_colors": list(PERSON_COLORS), "no_person_color": NO_PERSON_COLOR,
            "detections": detections,
            "backdrops": self.backdrops,
            "frame_backdrop": [f.backdrop for f in self.frames],
            "plane": _rounded(statics["plane"]), "grid": _rounded(statics["grid"]),
            "camera": _rounded(statics["camera"]), "frustum": _rounded(statics["frustum"]),
            "focal": round(self.fitted_focal(), 2) if camera_mode else None,
            "image_size": [w, h],
            "range": _rounded(np.stack([lo, hi], 1)), "aspect": _rounded(aspect),
            "eye": _rounded(eye), "camera_eye": _rounded(camera_eye),
            "camera_center": _rounded((statics["plane"].mean(0) - centre) / extent * aspect),
        }

    def _fps(self) -> float:
        if self.fps:
            return float(self.fps)
        times = np.array([t for t in self.times if t is not None], np.float64)
        if len(times) > 1:
            step = np.median(np.diff(times))
            if step > 0:
                return float(round(1 / step, 3))
        return 10.0

    def _statics(self, camera_mode: bool, h: int, w: int) -> dict[str, np.ndarray]:
        """Image plane corners (4, 3), floor grid segments (L, 2, 3), camera glyph (5, 3: apex then the
        base's corners) and frustum segments (4, 2, 3), in the page's axes."""
        if not camera_mode:
            aspect = w / h
            plane = image_plane(aspect)
            grid = floor_grid(aspect)
            apex = np.array([aspect / 2, 0.5, PLANE_DEPTH - aspect - 0.3])
            corners = plane - np.array([aspect / 2, 0.5, PLANE_DEPTH])
            base = apex + corners * (CAMERA_GLYPH / 1.0) + np.array([0.0, 0.0, CAMERA_GLYPH])
            glyph = np.concatenate([apex[None], base])
            frustum = np.zeros((0, 2, 3))
        else:
            f = self.fitted_focal()
            depth = self._plane_depth()
            pixel_corners = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]]) - [w / 2, h / 2]
            plane = np.concatenate([pixel_corners * depth / f, np.full((4, 1), depth)], 1)
            floor = self._floor_height(plane)
            half = (w / 2) * depth / f
            ticks = np.linspace(0.0, 1.0, GRID_CELLS + 1)
            along_x = [[[-half, floor, t * depth], [half, floor, t * depth]] for t in ticks]
            along_z = [[[-half + 2 * half * t, floor, 0.0], [-half + 2 * half * t, floor, depth]] for t in ticks]
            grid = np.array(along_x + along_z)
            glyph_depth = min(CAMERA_GLYPH * 2, depth / 4)
            glyph = np.concatenate([np.zeros((1, 3)), plane * (glyph_depth / depth)])
            frustum = np.stack([np.zeros((4, 3)), plane], 1)
        return {"plane": to_world(plane), "grid": to_world(grid), "camera": to_world(glyph),
                "frustum": to_world(frustum)}

    def _camera_depths(self) -> np.ndarray:
        zs = [pf.camera[..., 2].ravel() for f in self.frames for pf in f.parts.values() if pf.camera is not None]
        z = np.concatenate(zs) if zs else np.zeros(0)
        return z[np.isfinite(z) & (z > 0)]

    def _plane_depth(self) -> float:
        """Metres: the backdrop plane stands behind (almost) everyone: 1.25 x the 98th percentile depth."""
        z = self._camera_depths()
        return float(1.25 * np.percentile(z, 98)) if len(z) else 3.0

    def _floor_height(self, plane: np.ndarray) -> float:
        """Metres (camera y, down): the bodies' lowest joints (98th percentile of y), else the plane's bottom."""
        ys = [pf.camera[..., 1].max(1) for f in self.frames for name, pf in f.parts.items()
              if name == "body" and pf.camera is not None and len(pf.camera)]
        y = np.concatenate(ys) if ys else np.zeros(0)
        y = y[np.isfinite(y)]
        return float(np.percentile(y, 98)) if len(y) else float(plane[2, 1])

    @staticmethod
    def _eye(centre: np.ndarray, extent: np.ndarray, aspect: np.ndarray) -> np.ndarray:
        """The default view, as --visu3d's (azimuth -45°, elevation 20°), in plotly's eye units."""
        view = View()
        towards_viewer = SCENE_TO_WORLD @ (eye_rotation(view.azimuth, view.elevation).T @ np.array([0.0, 0.0, 1.0]))
        return towards_viewer * 1.1 * float(np.linalg.norm(aspect))

    def html(self, title: str = "DOPE 3D view") -> str:
        """The page: plotly.js, the data and the script, inlined."""
        data = json.dumps(self.data(), separators=(",", ":"), allow_nan=False)
        return render_html(data, title)


def _rounded(a: Any, decimals: int = 4) -> Any:
    return np.round(np.asarray(a, np.float64), decimals).tolist()


def _pack(ints: np.ndarray) -> tuple[str, str]:
    """base64 of little-endian int16 (or int32 when the values do not fit); non-finite values
    become the type's smallest value, which the page reads as missing."""
    finite = np.isfinite(ints)
    values = ints[finite]
    for dtype in ("<i2", "<i4"):
        info = np.iinfo(dtype)
        if not len(values) or (values.min() > info.min and values.max() <= info.max):
            out = np.where(finite, ints, info.min).astype(dtype)
            return base64.b64encode(out.tobytes()).decode("ascii"), dtype[1:]
    raise ValueError("coordinates too large for the page (beyond 2e6 units)")


def _part_table(name: str) -> dict[str, Any]:
    """A part's joint names, bones (two joints per end: the end is their mean), colours: once per page."""
    part = PARTS[name]
    bones = [[b.a[0], b.a[-1], b.b[0], b.b[-1]] for b in part.bones]
    return {"name": name, "joints": list(part.joints), "bones": bones,
            "bone_colors": [css_rgb(b.color) for b in part.bones],
            "neck": part.bones.index(NECK) if name == "body" else -1,
            "marker_size": MARKER_SIZES[name], "line_width": LINE_WIDTHS[name]}


def render_html(data_json: str, title: str = "DOPE 3D view") -> str:
    """The page's text around its data (a JSON string; see `HtmlPage.data`)."""
    script = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.js"), encoding="utf-8").read()
    safe = data_json.replace("</", "<\\/")  # the JSON may not close its <script> element
    plotly = plotly_js().replace("</script", "<\\/script")
    return _TEMPLATE.format(title=_escape(title), plotly=plotly, data=safe, script=script)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; font: 14px system-ui, sans-serif; background: #fff; color: #222; }}
#dope-page {{ display: flex; flex-direction: column; height: 100%; }}
#dope-plot {{ flex: 1; min-height: 200px; }}
#dope-controls {{ display: flex; gap: 10px; align-items: center; padding: 6px 10px; border-top: 1px solid #ddd; }}
#dope-controls input[type=range] {{ flex: 1; }}
#dope-controls[data-single] #dope-play, #dope-controls[data-single] #dope-slider {{ display: none; }}
#dope-label {{ white-space: nowrap; font-variant-numeric: tabular-nums; }}
#dope-info {{ color: #666; white-space: nowrap; }}
button {{ font: inherit; }}
</style>
<script>{plotly}</script>
</head>
<body>
<div id="dope-page">
<div id="dope-plot"></div>
<div id="dope-controls">
<button id="dope-play" type="button">&#9654; Play</button>
<input id="dope-slider" type="range" min="0" max="0" value="0" step="1" aria-label="frame">
<span id="dope-label"></span>
<button id="dope-view" type="button">Camera view</button>
<button id="dope-reset" type="button">Reset view</button>
<span id="dope-info"></span>
</div>
</div>
<script type="application/json" id="dope-data">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""


# ----------------------------------------------------------------------------------- writers


def write_html(results: Iterable[Result], path: str | os.PathLike, images: Optional[Iterable[Optional[np.ndarray]]] = None,
               *, fps: Optional[float] = None, labels: Optional[Sequence[str]] = None, backdrop: str = "first",
               backdrop_width: Optional[int] = None, focal: Optional[float] = None,
               title: str = "DOPE 3D view") -> str:
    """Write one self-contained HTML page of the results (one per frame) and return its path.

    results: `Result`s, one per frame (any iterable). images: RGB uint8 (H, W, 3) per frame, or
    None (per frame or for all): the backdrop (backdrop="first": the first image given, shared by
    every frame; "each": one per image given). fps: playback rate (default: 10). labels: one text
    per frame (default "frame N"). focal: pixels, for camera-space placement (default: fitted).
    The page is written under a staging name, then renamed.
    """
    check_available()
    page = HtmlPage(fps=fps, backdrop=backdrop, backdrop_width=backdrop_width, focal=focal)
    image_iter = iter(images) if images is not None else None
    labels = list(labels) if labels is not None else None
    for i, result in enumerate(results):
        image = next(image_iter, None) if image_iter is not None else None
        page.add(result, image, labels[i] if labels is not None and i < len(labels) else None)
    path = os.fspath(path)
    atomic_write(path, page.html(title))
    log.debug("wrote %s (%d frames)", path, len(page))
    return path


class HtmlWriter(ClosedOnExit):
    """The command line's writer of the page: `write(frame)` per `stream.Frame`, `close()` at the end.

    A video's frames share one backdrop (its first frame); an image list gets one per image. The
    page is written when closed (also after Ctrl-C: it then holds the frames done so far); leaving
    by another error writes nothing.
    """

    def __init__(self, path: str | os.PathLike, *, fps: Optional[float] = None, focal: Optional[float] = None,
                 video: bool = False) -> None:
        self.path = os.path.abspath(os.fspath(path))
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise OutputError(f"cannot write {self.path!r}: folder {folder!r} does not exist")
        if os.path.isdir(self.path):
            raise OutputError(f"cannot write {self.path!r}: it is a folder")
        try:
            check_available()
        except PageError as e:
            raise OutputError(str(e)) from None
        self.page = HtmlPage(fps=fps, backdrop="first" if video else "each", focal=focal)
        self.closed = False

    def write(self, frame: Any) -> None:
        """Add one frame: a `stream.Frame` (item with name, frame, time_s; RGB uint8 image or None; result)."""
        item, image, result = frame
        name = getattr(item, "name", None)
        frame = getattr(item, "frame", None)
        time_s = getattr(item, "time_s", None)
        if frame is not None:
            label = f"frame {frame}" + (f" ({time_s:.2f} s)" if time_s is not None else "")
        else:
            label = os.path.basename(name) if name else None
        self.page.add(result, image, label, time_s)

    def close(self) -> None:
        """Write the page (nothing when no frame was written)."""
        if self.closed:
            return
        self.closed = True
        if not len(self.page):
            log.warning("no frame: %s not written", self.path)
            return
        try:
            atomic_write(self.path, self.page.html())
        except OSError as e:
            raise OutputError(f"cannot write {self.path!r}: {e.strerror}") from None

    def abort(self) -> None:
        self.closed = True
