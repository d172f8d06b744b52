"""Download, unpack and check the public checkpoints the networks restore.

    python scripts/download_checkpoints.py inception_v1 resnet_v2_50
    python scripts/download_checkpoints.py densenet161 \
        --archive ~/Downloads/tf-densenet161.ckpt.tar.gz
    python scripts/download_checkpoints.py --list
"""
import argparse
import os
import sys

# Run from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from l2caf.models import checkpoints  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Download the public checkpoints (%s), unpack them into DEST and check "
                    "that TensorFlow can read them. A checkpoint already in DEST is only "
                    "checked. Sources a script cannot download from (Google Drive) print "
                    "the steps to download them in a browser; then pass the archive with "
                    "--archive." % ", ".join(sorted(checkpoints.PUBLIC_CHECKPOINTS)))
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="checkpoints to install (see --list)")
    parser.add_argument("--dest", default=checkpoints.DEFAULT_DEST,
                        help="folder the checkpoints go to (default: %(default)s)")
    parser.add_argument("--archive", metavar="PATH",
                        help="unpack this already downloaded .tar.gz archive instead of "
                             "downloading; needs exactly one NAME")
    parser.add_argument("--list", action="store_true",
                        help="list the known checkpoints, where they come from and which are "
                             "in --dest already, then exit")
    args = parser.parse_args(argv)
    if not args.names and not args.list:
        parser.error("give at least one NAME, or --list")
    if args.archive and len(args.names) != 1:
        parser.error("--archive unpacks one checkpoint: give exactly one NAME")
    return args


def list_checkpoints(dest):
    """A line per known checkpoint: name, file, source, how it is fetched, and whether it is
    in `dest` already."""
    for name, info in sorted(checkpoints.PUBLIC_CHECKPOINTS.items()):
        how = "download in a browser, then --archive" if info.browser_only else \
            "this script downloads it"
        present = checkpoints.checkpoint_exists(os.path.join(dest, info.file_name))
        print("%-14s %-22s %s (%s)%s" % (name, info.file_name, info.url, how,
                                         " (downloaded, in %s)" % dest if present else ""))


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        list_checkpoints(args.dest)
    failures = []
    for name in args.names:
        try:
            path = checkpoints.fetch(name, args.dest, archive_path=args.archive)
        except checkpoints.CheckpointError as error:
            print("%s: FAILED\n%s\n" % (name, error), file=sys.stderr)
            failures.append(name)
        else:
            print("%s: ok, %s" % (name, path))
    if failures:
        print("failed: %s" % ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
