#!/usr/bin/env python
"""Does the heatmap depend on what the network learned? The sanity checks of Adebayo et al.
(NeurIPS 2018) and the random-logit test (Sixt et al., ICML 2020) for every heatmap of
visualiser runs: the network's blocks are made random from the output down (cascading) and
one at a time (independent), the same (image, class) pairs are explained again with the
run's own method and settings, and each map is compared with the run's heatmap (Spearman rank
correlation of the absolute maps and of the maps, SSIM); then each heatmap's image is
explained for a seeded random other class and compared the same way. A method whose maps
stay alike when the network is random cannot explain the network.

Each results folder is a run of scripts/visualize_attention_fast.py or
scripts/visualize_attention.py (any method; slim or Keras network; sweeps merged or not). The
network is rebuilt in memory from the folder's config.yaml (the files on disk are never
changed) and the images are read from the paths its results name, so run this from the
folder the run was started from. A line per heatmap goes into sanity.jsonl in the run folder,
the maps of the cascade into sanity_maps_<number>.npz (docs/sanity-checks.md says what each
value is and how to read it). Rerun the same
command to continue after an interruption. Examples:
  python scripts/sanity_check.py --results outputs/demo_l2caf outputs/demo_gradcam
  python scripts/sanity_check.py --results outputs/resnet_v2_50_fast --shard 0/4
  python scripts/sanity_check.py --merge outputs/resnet_v2_50_fast
Exit status: 0 done; 1 some images could not be read, or --merge found heatmaps unchecked; 2
a usage or configuration error (nothing written); 3 the lines cannot be written; 130
interrupted.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("l2caf.cli.sanity_check", __doc__))
