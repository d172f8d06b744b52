"""Writes a synthetic localisation data set in the ILSVRC layout (see l2caf/synthetic.py).

Example:
    python scripts/make_synthetic_dataset.py --output data/synthetic --num_images 1000
"""
import argparse
import os
import sys

# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.synthetic import CLASS_NAMES, MIN_IMAGE_SIZE, make_dataset  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Classes: " + ", ".join(CLASS_NAMES) + ".")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder to write images/, annotations/, labels.txt and dataset.json "
                             "to; images/ and annotations/ must be empty or absent")
    parser.add_argument("--num_images", type=int, default=1000, metavar="N",
                        help="number of images to write (default: %(default)s)")
    parser.add_argument("--image_size", type=int, default=224, metavar="PIXELS",
                        help="side of the square images in pixels, at least %d (default: "
                             "%%(default)s)" % MIN_IMAGE_SIZE)
    parser.add_argument("--seed", type=int, default=0, metavar="SEED",
                        help="random seed; the same seed writes byte-identical files "
                             "(default: %(default)s)")
    parser.add_argument("--two_object_fraction", type=float, default=0.25, metavar="P",
                        help="probability in [0, 1] that an image holds two objects of different "
                             "classes instead of one (default: %(default)s)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        make_dataset(args.output, args.num_images, image_size=args.image_size, seed=args.seed,
                     two_object_fraction=args.two_object_fraction, progress=not args.no_progress)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
