"""scripts/visualize_attention_fast.py: the fast visualiser, the visualisation job on batches
of 64 images with the released fast script's tolerance, no pictures and a .npz file per
batch."""
from l2caf import config
from l2caf.cli.visualize import visualizer_main

OPTIONS = config.options(config.FAST_DEFAULTS)


def main(argv=None, description=__doc__):
    return visualizer_main(description, OPTIONS, argv)
