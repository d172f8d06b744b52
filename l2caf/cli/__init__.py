"""The command lines. Each script in scripts/ calls `launch`, which imports its module and
runs its `main`; errors become one line on stderr and an exit status:

    0    done
    1    done, but some images could not be used (failures.jsonl says which and why), or
         --merge found work still missing
    2    a usage or configuration error (a bad key or value, a missing checkpoint, an output
         folder holding results of other settings or written by another process, a heatmap
         the evaluation cannot use): nothing was written
    3    the results cannot be written (output folder not a folder, not writable, disk
         full): the finished results are kept
    130  interrupted (Ctrl-C): the finished results are kept; the same command continues

TensorFlow is imported only once the command line is understood, so that --help and
mistakes are answered at once.
"""
import importlib
import sys

from l2caf.errors import L2CAFError, OutputError

INTERRUPTED = ("interrupted: the finished results are kept; run the same command again to "
               "continue")


def run_command(command, interrupted=INTERRUPTED):
    """command()'s exit status, with the library's errors and Ctrl-C (one line,
    `interrupted`) as described above."""
    try:
        return command()
    except OutputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 3
    except L2CAFError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


def launch(module, description):
    """What a script runs: `module`'s main(description=...), Ctrl-C included while Python
    imports it."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return main(description=description)


def print_merge_report(report):
    """Prints an l2caf.runs.merge.MergeReport; returns 1 if work is missing or failed, else
    0."""
    if report.kind == "scores":
        print("%s: %d lines (%d duplicates dropped) for the %d heatmaps of the results; %d "
              "unscored" % (report.path, report.lines, report.duplicates, report.total,
                            len(report.missing)))
    else:
        print("%s: %d lines (%d duplicates dropped) for %d images; %d failed, %d missing, "
              "%d incomplete" % (report.path, report.lines, report.duplicates, report.total,
                                 len(report.failed), len(report.missing),
                                 len(report.incomplete)))
        for label, paths in (("failed", report.failed), ("missing", report.missing),
                             ("incomplete", report.incomplete)):
            if paths:
                print("  %s: %s%s" % (label, ", ".join(paths[:5]),
                                      " ..." if len(paths) > 5 else ""))
    if report.shards_to_rerun:
        print("rerun shard(s) %s with the same command to finish them%s, then merge again"
              % (", ".join(map(str, report.shards_to_rerun)),
                 " (a --limit leaves the rest unscored)" if report.kind == "scores" else ""))
        return 1
    return 0
