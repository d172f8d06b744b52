"""scripts/visualize_attention.py: the slow visualiser, the runner one image at a time with
every picture (overlays, optionally GIFs) and a .npy file per heatmap."""
from l2caf import config
from l2caf.cli import visualizer_main

OPTIONS = config.options()


def main(argv=None, description=__doc__):
    return visualizer_main(description, OPTIONS, argv)
