#!/usr/bin/env python3
"""DOPE: whole-body 3D pose detection (bodies, hands and faces) in RGB images, from a checkout.

    python dope.py --model DOPE_v1_0_0 --image photo.jpg            # writes photo.jpg_DOPE_v1_0_0.jpg
    python dope.py --model DOPE_v1_0_0 --image photo.jpg --json out.json --postprocess nms
    python dope.py --video clip.mp4 --json clip.jsonl               # writes clip.mp4_DOPE_v1_0_0.mp4

The same as the `dope` command that `pip install` gives. Everything lives in the `dope` package
beside this file (`import dope` finds the package, not this script): `from dope import DOPE`.
"""
if __name__ == "__main__":
    from dope.cli import console
    console()
