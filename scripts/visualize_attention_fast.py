#!/usr/bin/env python
"""L2-CAF attention heatmaps for thousands of images at once (the fast, batched visualiser).

Computes the activation at the filter layer once per image and optimises the filters of a
whole batch of (image, class) pairs together on it, with the slow visualiser's losses,
seeds, schedule and stopping rule. Input: a folder of images, a list file, or the ILSVRC2012
validation layout (images plus a folder of bounding-box XMLs as `annotations`). Writes
results.jsonl (with ground_truth and image_size), the heatmaps (one .npz per batch by
default) and failures.jsonl; rerun the same command to continue after an interruption.
Examples:
  python scripts/visualize_attention_fast.py --config configs/demo_fast.yaml
  python scripts/visualize_attention_fast.py --config configs/resnet50_v2_fast.yaml --shard 0/4
  python scripts/visualize_attention_fast.py --merge outputs/resnet_v2_50_fast
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(description=__doc__))
