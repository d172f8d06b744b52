#!/usr/bin/env python
"""Trains an embedded demo model on synthetic shapes, on the CPU.

--kind slim (default): the small DenseNet; writes <output_dir>/demo_densenet.ckpt (slim
format) and labels.txt. --kind keras: a small Keras CNN (global average pooling and a Dense
layer at the end); writes <output_dir>/demo_keras.keras and labels.txt. A folder that holds
them already (the shipped models' l2caf/demo_model/ among them) is refused unless
--overwrite is given. The shipped models were made with the defaults:
  python scripts/train_demo_model.py --output_dir l2caf/demo_model --overwrite
  python scripts/train_demo_model.py --output_dir l2caf/demo_model --kind keras --overwrite
"""
import glob
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.networks import KERAS_DEMO_FILE, get_network  # noqa: E402

EPOCHS = {"slim": 8, "keras": 8}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="l2caf/demo_model",
                        help="folder for the model and labels.txt (default: %(default)s)")
    parser.add_argument("--kind", choices=sorted(EPOCHS), default="slim",
                        help="slim: the DenseNet of the demo configs; keras: the Keras CNN of "
                             "configs/demo_keras.yaml (default: %(default)s)")
    parser.add_argument("--num_images", type=int, default=4000,
                        help="synthetic training images, made in memory (default: %(default)s)")
    parser.add_argument("--epochs", type=int,
                        help="passes over the training images (default: 8; keras also "
                             "trains on the images mirrored)")
    parser.add_argument("--batch_size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--learning_rate", type=float, default=2e-3,
                        help="Adam's initial rate, cosine decay to 0 (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data and the initialisation (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the model and labels.txt that --output_dir holds (the "
                             "default folder holds the shipped demo models); without it such a "
                             "folder is refused")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or EPOCHS[args.kind]
    for name in ("num_images", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name)
    if args.batch_size > args.num_images:
        parser.error("--batch_size must not exceed --num_images")
    model = get_network("demo_densenet").checkpoint_file if args.kind == "slim" \
        else KERAS_DEMO_FILE
    found = sorted(glob.glob(os.path.join(glob.escape(args.output_dir), model + "*"))) + \
        sorted(glob.glob(os.path.join(glob.escape(args.output_dir), "labels.txt")))
    if found and not args.overwrite:
        parser.error("%s holds a trained model already (%s); give another --output_dir, or "
                     "--overwrite to replace it" % (args.output_dir,
                                                    ", ".join(map(os.path.basename, found))))
    from l2caf.training import train, train_keras  # TensorFlow, once the options are right
    (train if args.kind == "slim" else train_keras)(
        args.output_dir, num_images=args.num_images, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
