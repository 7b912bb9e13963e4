"""The 2D drawing of results (SPEC §7): bones, joints and scores over the image.

The public face of `dope.drawing.draw2d`, where the code lives.
"""
from dope.drawing.draw2d import draw_pose, draw_result, draw_scores, line_width, padding

__all__ = ["draw_pose", "draw_result", "draw_scores", "line_width", "padding"]
