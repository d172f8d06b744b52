#!/usr/bin/env python
"""L2-CAF attention heatmaps, image by image (the slow visualiser).

Optimises a unit-L2-norm (or softmax, or Gaussian) spatial filter at one layer of a frozen
network, for the top predicted classes (cls_specific) or for the whole output
(cls_oblivious), and writes per image and class a heatmap .npy, an overlay .png, optionally a
GIF, and a line of results.jsonl (see the README). Rerun the same command to continue after
an interruption. Example:
  python scripts/visualize_attention.py --config configs/demo.yaml
Exit status: 0 done; 1 some images could not be used (failures.jsonl); 2 a usage or
configuration error (nothing written); 3 the results cannot be written; 130 interrupted.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("l2caf.cli.visualize", __doc__))
