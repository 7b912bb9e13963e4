"""The 3D view's front: which renderer draws (built-in or visvis), and writing `X_M_visu3d.jpg`."""
from __future__ import annotations

import logging
import os
from typing import Mapping, Optional

import numpy as np

from dope.files import write_image
from dope.results import Result
from dope.view3d.builtin_renderer import render_builtin
from dope.view3d.scene import Camera, Scene, View, build_scene, frame_scene

log = logging.getLogger("dope.visu3d")

RENDERERS = ("auto", "builtin", "visvis")


class Visu3DError(RuntimeError):
    """The 3D view cannot be made as asked (renderer not installed, no display...)."""


# ------------------------------------------------------------------------- renderer choice


def choose_renderer(requested: str = "auto", interactive: bool = False,
                    env: Optional[Mapping[str, str]] = None) -> str:
    """'builtin' or 'visvis' for a requested renderer ('auto', 'builtin' or 'visvis').

    auto: visvis when it is installed and a display is reachable, else the built-in one.
    interactive needs visvis. Raises Visu3DError when the request cannot be met.
    """
    from dope.view3d import visvis_renderer
    if requested not in RENDERERS:
        raise Visu3DError(f"unknown 3D renderer {requested!r}; use one of {', '.join(RENDERERS)}")
    if requested == "builtin":
        if interactive:
            raise Visu3DError("the interactive 3D view needs the visvis renderer (--renderer visvis or auto)")
        return "builtin"
    reason = visvis_renderer.unavailable_reason(os.environ if env is None else env)
    if reason is None:
        _say_once("3D view: visvis renderer")
        return "visvis"
    hint = "; use --renderer builtin (no display needed), or run under a virtual display: xvfb-run -a python dope.py ..."
    if requested == "visvis":
        raise Visu3DError(f"the visvis renderer cannot be used: {reason}{hint}")
    if interactive:
        raise Visu3DError(f"the interactive 3D view needs visvis, which cannot be used: {reason}{hint}")
    _say_once(f"3D view: built-in renderer (visvis not used: {reason})")
    return "builtin"


_said: set[str] = set()


def _say_once(line: str) -> None:
    """The renderer chosen, under -v, once: it is chosen before the model loads and again to draw."""
    if line not in _said:
        _said.add(line)
        log.debug("%s", line)


def scene_and_camera(image_rgb: np.ndarray, result: Result, view: View = View()) -> tuple[Scene, Camera]:
    """The scene of one image's result (its texture: the image with the 2D drawing, unpadded) and its camera."""
    from dope.drawing.draw2d import draw_result
    texture = draw_result(np.ascontiguousarray(image_rgb[:, :, ::-1]), result, pad=False, channels="bgr")
    scene = build_scene(texture, result)
    return scene, frame_scene(scene, view)


def render(scene: Scene, camera: Camera, renderer: str = "auto") -> tuple[np.ndarray, str]:
    """(picture uint8[h, w, 3] BGR, renderer used): the scene drawn by 'builtin', 'visvis' or 'auto'.

    Under 'auto', visvis failing to draw falls back to the built-in renderer with a warning.
    """
    name = choose_renderer(renderer)
    if name == "visvis":
        from dope.view3d import visvis_renderer
        try:
            return visvis_renderer.render(scene, camera), "visvis"
        except visvis_renderer.VisvisError as e:
            if renderer != "auto":
                raise Visu3DError(f"the visvis renderer failed: {e}") from None
            log.warning("the visvis renderer failed (%s); using the built-in renderer", e)
    return render_builtin(scene, camera), "builtin"


def visu3d_image(image_rgb: np.ndarray, result: Result, renderer: str = "auto",
                 view: View = View()) -> tuple[np.ndarray, str]:
    """(picture uint8[h, w, 3] BGR, renderer used): the 3D view of one image's result (SPEC §8).

    image_rgb: uint8[H, W, 3] the image the result is for; (w, h) = view.size.
    """
    scene, camera = scene_and_camera(image_rgb, result, view)
    return render(scene, camera, renderer)


def write_visu3d(image_rgb: np.ndarray, result: Result, path: str, renderer: str = "auto",
                 interactive: bool = False, view: View = View()) -> str:
    """Write the 3D view of one image's result to path (any OpenCV format); returns the renderer used.

    interactive: then open a visvis window on the same scene, which the mouse turns, until it is closed.
    """
    if interactive:
        choose_renderer(renderer, interactive=True)  # fail before drawing anything
    scene, camera = scene_and_camera(image_rgb, result, view)
    picture, used = render(scene, camera, renderer)
    write_image(path, picture)
    if interactive:
        from dope.view3d import visvis_renderer
        log.info("wrote %s (%s renderer); the 3D view is open in a window: close it to go on", path, used)
        try:
            visvis_renderer.show(scene, camera)
        except visvis_renderer.VisvisError as e:
            raise Visu3DError(f"the visvis window failed: {e}") from None
    return used
