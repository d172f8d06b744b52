#!/usr/bin/env python
"""A report page of visualiser runs: one self-contained report.html (no server, no
network: open it from the file system) with the localisation table and its curves, the
images that could not be used, and a gallery of every explained image (overlay, boxes,
class, probability, IoU, iterations, loss, convergence plot, GIF) to sort, filter and page
through. Thumbnails are files in the output folder's thumbs/, loaded as they come into view;
a second report of the same runs makes only the new ones. No TensorFlow. Examples:
  python scripts/make_report.py --results outputs/demo_l2caf outputs/demo_gradcam \\
      --annotations data/synthetic_heldout/annotations --output reports/demo
  python scripts/make_report.py --results outputs/resnet_v2_50_fast \\
      --annotations data/imagenet/val --protocol wsol --output reports/resnet
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    # Launched here, not above: the table's worker processes start by importing this file
    # again (multiprocessing's spawn), and need none of what reads the runs.
    sys.exit(launch("l2caf.cli.report", __doc__))
