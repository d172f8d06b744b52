#!/usr/bin/env python
"""A comparison figure of visualiser runs over the same images, for a paper: one row per
image, the image then one overlay per results folder (method, network and layer in the
column title), with the ground-truth boxes and the box the evaluation makes at --threshold
under --protocol in two colours, the class id and name, probability and IoU under every
picture, and a colour bar. Written as PREFIX.png (300 dpi) and PREFIX.pdf (vector boxes and
text). No TensorFlow. Examples:
  python scripts/make_figure.py --results outputs/demo_l2caf outputs/demo_gradcam \\
      --annotations data/synthetic_heldout/annotations --worst 4 --by iou \\
      --output figures/worst_localised
  python scripts/make_figure.py --results outputs/demo_l2caf outputs/demo_gradcam \\
      --images synth_00003,synth_00017 --colormap jet --alpha 0.4 --output figures/two
  python scripts/make_figure.py --results outputs/demo_l2caf --random 6 --seed 1 \\
      --output figures/random
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("l2caf.cli.figure", __doc__))
