#!/usr/bin/env python
"""L2-CAF attention heatmaps for thousands of images at once (the fast, batched visualiser).

The same run as scripts/visualize_attention.py, on batches: the activation at the filter's
layer is computed once per image and the filters of a whole batch of (image, class) pairs
are optimised together, each stopping when its own loss has settled. Input: a folder of
images, a list file, or the ILSVRC2012 validation layout (images plus a folder of
bounding-box XMLs as `annotations`). Writes results.jsonl (with ground_truth and
image_size), the heatmaps (one .npz per batch by default) and failures.jsonl; rerun the same
command to continue after an interruption. Examples:
  python scripts/visualize_attention_fast.py --config configs/demo_fast.yaml
  python scripts/visualize_attention_fast.py --config configs/resnet50_v2_fast.yaml --shard 0/4
  python scripts/visualize_attention_fast.py --merge outputs/resnet_v2_50_fast
Exit status: 0 done; 1 some images could not be used (failures.jsonl), or --merge found
work missing; 2 a usage or configuration error (nothing written); 3 the results cannot be
written; 130 interrupted.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.cli import launch  # noqa: E402

if __name__ == "__main__":
    sys.exit(launch("l2caf.cli.visualize_fast", __doc__))
