#!/usr/bin/env python3
"""Train a DOPE network by distillation (in a checkout; installed, the `dope-train` command).

    python train.py --labels labels.jsonl --init teacher.pth --freeze features --out student.pth

docs/training.md; the code is dope/training/.
"""
import sys

from dope.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
