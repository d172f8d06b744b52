#!/usr/bin/env python
"""Is the heatmap faithful? Deletion and insertion AUC (RISE), Average Drop and Increase in
Confidence (Grad-CAM++), Average Gain (Opti-CAM) and ROAD's MoRF and LeRF AUC (Rong et al.
2022) of every heatmap of visualiser runs, each scored with the class's softmax probability
on the network that made the heatmap.

Each results folder is a run of scripts/visualize_attention_fast.py or
scripts/visualize_attention.py (any method: l2caf, cam, gradcam, random, ...; slim or Keras
network; sweeps merged or not). The network is rebuilt from the folder's config.yaml and the
images are read from the paths its results name, so run this from the folder the run was
started from. The scores go into the run folder: a line per heatmap in faithfulness.jsonl and
the curves in faithfulness_curves_<number>.npz; scripts/evaluate_localization.py then shows
them beside the localisation scores. Rerun the same command to continue after an
interruption. A Keras model whose saved configuration runs code is loaded only with
--trust_model true on this command line (never because the folder's config.yaml says so).
Examples:
  python scripts/evaluate_faithfulness.py --results outputs/demo_l2caf outputs/demo_gradcam
  python scripts/evaluate_faithfulness.py --results outputs/resnet_v2_50_fast --shard 0/4
  python scripts/evaluate_faithfulness.py --merge outputs/resnet_v2_50_fast
Exit status: 0 done; 1 some images could not be read, or --merge found heatmaps unscored; 2 a
usage or configuration error (nothing written); 3 the scores cannot be written; 130
interrupted.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("l2caf.cli.faithfulness", __doc__))
