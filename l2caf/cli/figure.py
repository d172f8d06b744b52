"""scripts/make_figure.py: a comparison figure of run folders (see l2caf.report.figure). No
TensorFlow."""
import sys

from l2caf import config
from l2caf.cli import options, run_command
from l2caf.cli.options import positive
from l2caf.errors import ConfigError

DEFAULT_RANDOM = 4


def main(argv=None, description=__doc__):
    from l2caf.report.figure import FAITHFULNESS_RANKINGS, OVERLAYS, RANKINGS
    parser = config.ArgumentParser(description=description)
    options.add_results(parser, "results folders of visualiser runs over the same images: a "
                                "column of overlays each, in this order; the images are the "
                                "first folder's, matched in the others by name")
    parser.add_argument("--output", required=True, metavar="PREFIX",
                        help="write PREFIX.png (at --dpi) and PREFIX.pdf (vector boxes and "
                             "text)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--images", metavar="NAMES",
                       help="the images, comma-separated, by name (file name with or without "
                            "its extension), one row each in this order")
    which.add_argument("--random", type=positive, metavar="N",
                       help="N images drawn at random (--seed), by name (default: %d)"
                            % DEFAULT_RANDOM)
    which.add_argument("--best", type=positive, metavar="N",
                       help="the N best images by --by, best first")
    which.add_argument("--worst", type=positive, metavar="N",
                       help="the N worst images by --by, worst first")
    parser.add_argument("--seed", type=int, metavar="S",
                        help="seed of --random, 0 or more (default: 0)")
    directions = ["%s: %s is better" % (" and ".join(key for key, higher in
                                                     FAITHFULNESS_RANKINGS.items()
                                                     if higher == better), word)
                  for better, word in ((False, "lower"), (True, "higher"))]
    parser.add_argument("--by", choices=list(RANKINGS),
                        help="what --best and --worst rank the first folder's images by, the "
                             "score of the heatmap a row shows: iou (at --threshold and "
                             "--protocol, higher is better), probability (of the class), or a "
                             "faithfulness score of the folder's faithfulness.jsonl (%s); "
                             "images without it are left out (default: iou)"
                             % "; ".join(directions))
    options.add_picture_options(parser)
    parser.add_argument("--dpi", type=positive, default=300,
                        help="resolution of the PNG (default: %(default)s); the PNG may have "
                             "at most 65535 pixels a side and 100 million in all")
    parser.add_argument("--titles", metavar="TITLES",
                        help="the columns' titles, comma-separated, one per --results folder "
                             "in their order, e.g. 'L2-CAF,Grad-CAM' (default: each run's "
                             "method, network, layer and folder)")
    parser.add_argument("--overlay", choices=OVERLAYS, default="fade",
                        help="fade: the heatmap's opacity grows from 0 where it is lowest to "
                             "--alpha where it is highest, so that the image shows through; "
                             "blend: --alpha everywhere, as the runs' own overlays "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    return run_command(lambda: make_figure(args))


def make_figure(args):
    """Draws and writes the figure; returns 0."""
    from l2caf.report.figure import (ASPECT_RANGE, Chooser, check_figure_size, check_titles,
                                     write_comparison)
    from l2caf.report.pictures import PictureRun
    options.check(args)
    # Before anything is read: one image at the flattest aspect is the smallest figure.
    check_figure_size(len(args.results), [ASPECT_RANGE[0]], args.dpi, least=True)
    if args.seed is not None and (args.images or args.best or args.worst):
        raise ConfigError("--seed is the seed of --random; it does not go with --images, "
                          "--best or --worst")
    if args.seed is not None and args.seed < 0:
        raise ConfigError("--seed must be 0 or more (numpy's generators take no negative "
                          "seed), got %d" % args.seed)
    if args.by is not None and args.best is None and args.worst is None:
        raise ConfigError("--by ranks the images of --best N or --worst N; give one of them")
    titles = None if args.titles is None else [title.strip()
                                               for title in args.titles.split(",")]
    check_titles(titles, len(args.results))
    runs = [PictureRun(results_dir, args.annotations) for results_dir in args.results]
    chooser = Chooser(runs[0], args.threshold, args.protocol)
    notes = []
    if args.images is not None:
        names = [name.strip() for name in args.images.split(",") if name.strip()]
        if not names:
            raise ConfigError("--images names no image; give names such as a,b")
        images = chooser.by_names(names)
    elif args.best or args.worst:
        images, notes = chooser.ranked(args.best or args.worst, args.by or "iou",
                                       best=bool(args.best))
    else:
        images = chooser.at_random(args.random or DEFAULT_RANDOM, args.seed or 0)
    result = write_comparison(runs, images, args.output, args.threshold, args.protocol,
                              args.colormap, args.alpha, args.dpi, chooser, notes, titles,
                              args.overlay)
    for note in result.notes:
        print("note: %s" % note, file=sys.stderr)
    print("written: %s (%d images x %d runs, %dx%d pixels)"
          % (", ".join(result.paths), len(images), len(runs), result.size[1], result.size[0]))
    return 0
