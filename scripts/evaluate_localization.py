#!/usr/bin/env python
"""The paper's localisation table from visualiser runs: classification and localisation
errors (top-1, top-5), GT-known localisation accuracy, MaxBoxAcc and (--protocol wsol, the
wsolevaluation benchmark's boxes) MaxBoxAccV2, the pointing game and the energy-based
pointing game, and, for folders scored by scripts/evaluate_faithfulness.py, deletion and
insertion AUC, Average Drop and Increase in Confidence; one row per results folder, printed
as Markdown and written as CSV and JSON.

Each results folder is a run of scripts/visualize_attention_fast.py (sweeps, merged or not;
any method: l2caf, cam, gradcam) or of scripts/visualize_attention.py; the annotations are
the ILSVRC bounding-box XMLs of its images, or wsolevaluation's metadata folder of them.
Partial runs are scored on the images they cover. Examples:
  python scripts/evaluate_localization.py --results outputs/demo_fast \\
      --annotations data/synthetic/annotations
  python scripts/evaluate_localization.py --results outputs/resnet_v2_50_fast \\
      outputs/resnet_v2_50_gradcam --annotations data/imagenet/val --protocol adl
  python scripts/evaluate_localization.py --results outputs/resnet_v2_50_fast \\
      --annotations wsolevaluation/metadata/ILSVRC/test --protocol wsol
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    # Launched here, not above: the evaluation's worker processes start by importing this
    # file again (multiprocessing's spawn), and need none of what reads the runs.
    sys.exit(launch("l2caf.cli.evaluate", __doc__))
