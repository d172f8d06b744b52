"""scripts/evaluate_localization.py: the localisation table of visualiser runs (the job:
l2caf.runs.localization; the table: l2caf.evaluation.table). No TensorFlow."""
import os

from l2caf import config
from l2caf.cli import options, run_command
from l2caf.errors import OutputError
from l2caf.evaluation import V2_IOU_THRESHOLDS


def main(argv=None, description=__doc__):
    parser = config.ArgumentParser(description=description)
    options.add_results(parser, "results folders of visualiser runs (sweeps, merged or not); "
                                "one table row each")
    options.add_annotations(parser, "the images' boxes: a folder of bounding-box XMLs, one per "
                                    "image named after it (ILSVRC layout), or a folder of "
                                    "wsolevaluation metadata (image_ids.txt, class_labels.txt, "
                                    "image_sizes.txt, localization.txt; class labels are class "
                                    "ids), told apart by the files present; images are matched "
                                    "to results by file name", required=True)
    options.add_protocol(parser, "box from heatmap: cam (bilinear to the image's size, largest "
                                 "8-connected component: the paper's Tables 1 and 3), adl (to "
                                 "the image's size, uint8, largest contour: Table 2) or wsol "
                                 "(wsolevaluation's benchmark: bicubic to 224x224, min-max "
                                 "normalised, uint8, largest contour, ground-truth boxes scaled "
                                 "to 224x224; adds MaxBoxAccV2) (default: %(default)s)")
    options.add_threshold(parser, "fraction of a heatmap's maximum that the box keeps, in "
                                  "[0, 1), for the loc errors and GT-known loc acc (default: "
                                  "%(default)s)")
    options.add_thresholds(parser, "MaxBoxAcc's (and MaxBoxAccV2's) threshold sweep: "
                                   "START:STOP:STEP (STOP excluded) or a comma-separated list "
                                   "(default: %(default)s). wsolevaluation's own default step "
                                   "is 0.001 (0:1:0.001): ten times the boxes under cam and "
                                   "adl; under wsol a threshold acts through int(threshold x "
                                   "255), so at most 255 distinct boxes per heatmap are made "
                                   "whatever the step")
    options.add_iou(parser, "IoU with a ground-truth box that a box needs to be right, for the "
                            "loc errors, GT-known loc acc and MaxBoxAcc; MaxBoxAccV2 always "
                            "averages IoU %s (default: %%(default)s)"
                            % ", ".join("%g" % value for value in V2_IOU_THRESHOLDS))
    options.add_workers(parser, "processes that box the heatmaps (default: the cores this "
                                "process may use, here %(default)s)")
    options.add_bootstrap(parser)
    parser.add_argument("--output", metavar="PREFIX",
                        help="write the table to PREFIX.csv and PREFIX.json and its curves "
                             "to PREFIX_maxboxacc.png and .pdf (box accuracy against the "
                             "threshold; and, when the folders hold faithfulness scores, "
                             "PREFIX_faithfulness.png and .pdf: the mean deletion and insertion "
                             "curves), PREFIX_sanity.png and .pdf when they hold sanity "
                             "checks (similarity against the blocks made random), and with "
                             "--bootstrap the comparisons and agreement beside them "
                             "(default: localization_<protocol> in the first "
                             "results folder)")
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args), interrupted="interrupted: nothing written; run "
                       "the same command again for the table")


def evaluate(args):
    """Prints and writes the table of the runs; returns 0."""
    from l2caf.evaluation import comparisons, table
    from l2caf.runs import localization
    options.check(args)
    annotations = localization.load_annotations(args.annotations)
    found = localization.evaluate_runs(args.results, annotations, args.protocol, args.threshold,
                                       args.thresholds, args.iou, args.workers, args.bootstrap,
                                       args.seed)
    rows = found.rows
    prefix = args.output or os.path.join(args.results[0],
                                         localization.default_table_name(args.protocol))
    try:
        os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    except OSError as error:
        raise OutputError("cannot write %s: %s" % (prefix, error.strerror or error)) from None
    table.write_csv(prefix + ".csv", rows)
    table.write_json(prefix + ".json", rows)
    written = [prefix + ".csv", prefix + ".json"]
    if found.comparisons is not None:
        written += comparisons.write_comparisons(prefix, found.comparisons)
    if found.agreement is not None:
        written += comparisons.write_agreement(prefix, found.agreement)
    from l2caf.report import curves, sanity  # matplotlib, only once the table is written
    pictures = curves.write_evaluation_curves(prefix, rows, found.faithfulness)
    pictures += sanity.write_sanity_figure(prefix, args.results)
    if found.comparisons is not None:
        pictures += curves.write_comparison_plot(prefix, found.comparisons, rows)
    print(table.markdown_table(rows))
    if found.comparisons is not None:
        print("\nPaired comparisons:\n\n%s" % comparisons.markdown_comparisons(found.comparisons))
    if found.agreement is not None:
        print("\nMetric agreement:\n\n%s" % comparisons.markdown_agreement(found.agreement))
    print("\nwritten: %s" % ", ".join(written + pictures))
    return 0
