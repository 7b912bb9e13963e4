"""Comparing detections with the published pipeline's fixtures.

Tolerances of the issue: 2D 1e-2 px, 3D 1e-4, scores 1e-5, same order, same is_right and links.
"Same order" allows one thing: detections whose scores are within the score tolerance of each
other (near ties, e.g. sums of saturated probabilities) may come in either order, since float
noise of 1 ulp decides it (the fixtures themselves vary by 2e-6 in scores across thread counts).
"""
from __future__ import annotations

import numpy as np

TOL_2D, TOL_3D, TOL_SCORE = 1e-2, 1e-4, 1e-5
PARTS = ("body", "hand", "face")


def _get(d, key):
    return d[key] if isinstance(d, dict) else getattr(d, key)


def match_order(got: list, expected: list) -> list[int]:
    """perm[i] = index in `got` of expected detection i; asserts all but near ties are in order."""
    assert len(got) == len(expected), f"{len(got)} detections, expected {len(expected)}"
    perm = list(range(len(expected)))
    i = 0
    while i < len(expected):
        j = i + 1  # [i, j): a run of near-tied expected scores
        while j < len(expected) and abs(_get(expected[j], "score") - _get(expected[j - 1], "score")) <= TOL_SCORE:
            j += 1
        if j - i > 1:
            free = list(range(i, j))
            for e in range(i, j):
                ref = np.asarray(_get(expected[e], "pose2d"))
                k = min(free, key=lambda g: np.abs(np.asarray(_get(got[g], "pose2d")) - ref).max())
                perm[e] = k
                free.remove(k)
        i = j
    return perm


def assert_part_close(got: list, expected: list, part: str) -> list[int]:
    perm = match_order(got, expected)
    for e, g in enumerate(perm):
        a, b = got[g], expected[e]
        where = f"{part} {e}"
        assert abs(_get(a, "score") - _get(b, "score")) <= TOL_SCORE, where
        np.testing.assert_allclose(np.asarray(_get(a, "pose2d"), float), np.asarray(b_pose := _get(b, "pose2d"), float),
                                   rtol=0, atol=TOL_2D, err_msg=where)
        np.testing.assert_allclose(np.asarray(_get(a, "pose3d"), float), np.asarray(_get(b, "pose3d"), float),
                                   rtol=0, atol=TOL_3D, err_msg=where)
        assert len(b_pose) == len(_get(a, "pose2d"))
        if part == "hand":
            assert bool(_get(a, "is_right")) == bool(_get(b, "is_right")), where
    return perm


def assert_result_close(got: dict, expected: dict) -> None:
    """Whole-image results in the JSON schema: every part, and body links through the matching."""
    perms = {p: assert_part_close(got[p], expected[p], p) for p in PARTS}
    # got index -> expected index, to compare links that point into reordered lists
    inverse = {p: {g: e for e, g in enumerate(perm)} for p, perm in perms.items()}
    for e, g in enumerate(perms["body"]):
        for key, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
            link = got["body"][g][key]
            mapped = None if link is None else inverse[part][link]
            assert mapped == expected["body"][e][key], f"body {e} {key}: {mapped} != {expected['body'][e][key]}"
