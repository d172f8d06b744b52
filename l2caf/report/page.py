"""The report page of run folders (scripts/make_report.py): one self-contained report.html
in an output folder, which opens from the file system (no server, no network).

* a contents bar: a link to each section and to the gallery;
* the localisation table of the annotated runs (l2caf.runs.localization, the table
  scripts/evaluate_localization.py prints), each score with its 95% bootstrap interval as
  text and as an error bar, in a box that scrolls sideways (the page never does); the
  paired comparisons of the runs with their forest plot, and the agreement of the metrics
  (l2caf.evaluation.statistics and .comparisons); the curves (l2caf.report.curves) and
  the sanity checks' figure when the runs have them (l2caf.report.sanity). The
  figures are PNG files beside the page, drawn with text of curves.PAGE_FONT_POINTS and
  shown at their size, so that their text is as large as the page's;
* the images the runs could not use (failures*.jsonl);
* a gallery of every heatmap (each run folder read once, l2caf.runs.localization's
  FolderSnapshot: the table, the curves and the gallery show the same scores): its overlay
  as a thumbnail (faded as l2caf.report.figure's: the heatmap's opacity grows from 0 at its
  minimum to alpha at its maximum; a JPEG file in thumbs/, referred to by a relative path,
  loaded lazily),
  the ground-truth boxes and the evaluation's box
  (drawn by the page over the thumbnail), class, probability, IoU, iterations, loss, the
  faithfulness scores when there are some, a convergence plot of the loss (from the
  results lines' loss_history; none for lines without it) and a link to the GIF and the
  full overlay when the run made them (relative paths into the run folders: keep the report
  beside them).

The gallery is one JSON blob in the page (a list of values per column); a small
plain script (report.html beside this module) filters, sorts and pages it, with its state in
the address's #fragment, so that a view can be bookmarked and a 50,000-heatmap sweep opens
with one page of cards.

Every value that comes from a run folder (names, classes, numbers, histories, reasons, the
table's cells) reaches the page as text, whatever its type: escaped here (html.escape), or put
in the blob, where numbers are numbers only when they are finite numbers and anything else is
its text, and shown by the script as text (textContent, never markup). The blob writes '<',
'>' and '&' as \\u escapes, so that no name ('</script>', '<!--') can end or hide the script;
links are relative paths of percent-encoded segments (never a scheme, a host or an absolute
path), checked here and again by the script.

Thumbnails are named after what they show (the image and heatmap files, their sizes and
times, the colour map, opacity and size): a second report of the same runs makes only the
new ones, and those no report refers to any more are removed.
"""
import collections
import hashlib
import html
import json
import math
import numbers
import os
import re
import struct
import time
import urllib.parse
from typing import Optional

import cv2
from tqdm import tqdm

from l2caf import heatmaps
from l2caf.errors import OutputError, RunError
from l2caf.evaluation import DEFAULT_THRESHOLDS
from l2caf.evaluation.comparisons import markdown_agreement, markdown_comparisons
from l2caf.evaluation.statistics import DEFAULT_RESAMPLES, DEFAULT_SEED
from l2caf.evaluation.table import COLUMNS as COLUMNS_OF_TABLE
from l2caf.evaluation.table import interval_keys, markdown_table, metrics, scores
from l2caf.files import write_atomically
from l2caf.parallel import prefetched
from l2caf.report import curves, drawing, sanity
from l2caf.report.pictures import box_fractions, read_picture
from l2caf.runs import localization

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.html")
THUMBNAILS = "thumbs"
THUMBNAIL_QUALITY = 85
CSS_PIXELS_PER_INCH = 96
# The gallery's columns. The blob holds each as one list over the heatmaps, and the values
# of variable length as short text (ENCODED): parsing a few long lists of numbers and
# strings takes a browser a tenth of the time that 50,000 small lists take. Then a column per
# faithfulness metric of the table.
SCORE_COLUMNS = tuple(metric.key for metric in metrics("faithfulness"))
COLUMNS = ("run", "name", "class_id", "probability", "top1", "top1_probability", "gt",
           "correct", "iou", "box", "gt_boxes", "width", "height", "thumb", "overlay", "gif",
           "iterations", "loss", "history") + SCORE_COLUMNS
# column: how its value is written as text ('' for none). gt: class ids, space-separated;
# box: 'left top right bottom' as fractions of the image; gt_boxes: boxes joined by ';';
# history: 'updates:loss' at each check, space-separated.
ENCODED = {
    "gt": lambda ids: " ".join(str(int(class_id)) for class_id in ids if _is_integer(class_id)),
    "box": lambda box: " ".join("%.4f" % value for value in box),
    "gt_boxes": lambda boxes: ";".join(" ".join("%.4f" % value for value in box)
                                       for box in boxes),
    "history": lambda history: _history_text(history),
}
_THUMBNAIL_NAME = re.compile(r".+_[0-9a-f]{16}\.jpg$")
# A link of the page: a relative URL of percent-encoded path segments (what urllib.parse.quote
# makes of a relative path), so never a scheme ('javascript:'), a host ('//') or an absolute
# path. report.html's script checks its links against the same pattern.
_RELATIVE_URL = re.compile(r"[A-Za-z0-9._~%-][A-Za-z0-9._~%/-]*\Z")

ReportSummary = collections.namedtuple("ReportSummary", ["path", "heatmaps", "thumbnails_made",
                                                         "thumbnails_kept", "table_rows"])
ReportSummary.__doc__ = """What `write_report` did: the page's path, the heatmaps in its
gallery, thumbnails made and kept from an earlier report, rows of its table."""


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite int or float (bool included: 0 or 1)."""
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _text(value) -> str:
    """A value of a run folder's line as the page shows it: a string as it is, None as '',
    anything else (a number, a list, an object) as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _rounded(value, digits=4):
    """A number of a line as the blob holds it: a finite number with `digits` significant
    digits (the page shows 2 or 3), None kept, and anything else (text, a list, NaN: a
    line may hold anything) as its text, which the page shows as text."""
    if value is None:
        return None
    return float("%.*g" % (digits, value)) if _is_number(value) else _text(value)


def _count(value):
    """A count of a line (iterations) as the blob holds it: an int kept, else as
    `_rounded` keeps it (a number, None, or its text)."""
    return int(value) if _is_integer(value) else _rounded(value, 15)


def _class_id(value):
    """A class id of a line as the blob holds it: an int, None (class-oblivious) or, for
    anything else, its text."""
    if value is None:
        return None
    return int(value) if _is_integer(value) else _text(value)


def _history_text(history) -> str:
    """A loss_history ([updates, loss] at every check) as 'updates:loss' pairs, or '' (no
    plot) when it is not a list of pairs of finite numbers."""
    if not isinstance(history, (list, tuple)):
        return ""
    pairs = []
    for point in history:
        if not (isinstance(point, (list, tuple)) and len(point) == 2
                and all(_is_number(value) for value in point)):
            return ""
        pairs.append("%d:%.4g" % (point[0], point[1]))
    return " ".join(pairs)


def _stat(path):
    status = os.stat(path)
    return "%s:%d:%d" % (os.path.abspath(path), status.st_size, status.st_mtime_ns)


def _link(path, output_dir):
    """A relative URL from the report folder to path: every character of its segments but
    letters, digits and '_.-~' percent-encoded (':' too), so that no file name can make it a
    URL with a scheme, a host or an absolute path."""
    link = urllib.parse.quote(os.path.relpath(path, output_dir).replace(os.sep, "/"), safe="/")
    if not _RELATIVE_URL.match(link):
        raise RunError("%s cannot be linked from %s by a relative path" % (path, output_dir))
    return link


class Gallery(object):
    """The gallery rows of runs and their thumbnails in output_dir."""

    def __init__(self, runs, output_dir, threshold, protocol, iou_threshold, colormap, alpha,
                 thumbnail_size):
        self.runs, self.output_dir = runs, output_dir
        self.threshold, self.protocol, self.iou_threshold = threshold, protocol, iou_threshold
        self.colormap = drawing.colormap(colormap)
        self.alpha, self.size = drawing.check_alpha(alpha), thumbnail_size
        # What every thumbnail's name depends on besides its files.
        self.settings = "%s:%r:%d:%d:fade" % (colormap, alpha, thumbnail_size,
                                              THUMBNAIL_QUALITY)
        self.made = self.kept = 0
        self.thumbnails = set()

    def _thumbnail_path(self, run_index, entry, image):
        digest = hashlib.sha256("|".join([self.settings, _stat(image),
                                          str(entry.heatmap.shape)]).encode("utf-8"))
        digest.update(entry.heatmap.tobytes())
        digest = digest.hexdigest()[:16]
        if entry.class_id is None:
            class_part = "oblivious"
        elif _is_integer(entry.class_id):
            class_part = "c%d" % entry.class_id
        else:  # not a class id (a line may hold anything): named by a digest of its text
            class_part = "c" + hashlib.sha256(
                _text(entry.class_id).encode("utf-8")).hexdigest()[:8]
        return os.path.join(self.output_dir, THUMBNAILS, str(run_index),
                            "%s_%s_%s.jpg" % (entry.name, class_part, digest))

    def image_rows(self, task):
        """Runs in a worker thread: the rows of one (run index, image), its thumbnails
        written when they are not there yet."""
        run_index, image = task
        run = self.runs[run_index]
        entries = run.entries(image, self.threshold, self.protocol)
        paths = [self._thumbnail_path(run_index, entry, image) for entry in entries]
        missing = [not os.path.exists(path) for path in paths]
        if any(missing):
            picture = read_picture(image, run.results_dir)
            height, width = picture.shape[:2]
            factor = min(1.0, self.size / float(max(height, width)))
            small = cv2.resize(picture, (max(1, round(width * factor)),
                                         max(1, round(height * factor))),
                               interpolation=cv2.INTER_AREA)
            os.makedirs(os.path.dirname(paths[0]), exist_ok=True)
            for entry, path, needed in zip(entries, paths, missing):
                if needed:
                    # Faded as the comparison figures: the scene shows where the map is low.
                    overlay = heatmaps.show_heatmap_on_image(small, entry.heatmap, self.alpha,
                                                             self.colormap, fade=True)
                    encoded = cv2.imencode(".jpg", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR),
                                           [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])[1]
                    write_atomically(path, lambda stream: stream.write(encoded.tobytes()))
        return [self._row(run_index, entry, path) for entry, path in zip(entries, paths)], \
            sum(missing)

    def _row(self, run_index, entry, thumbnail):
        run, line = self.runs[run_index], entry.line
        top1 = line["predictions"][0]
        height, width = entry.image_size
        scale = min(1.0, self.size / float(max(height, width)))
        faithfulness = entry.faithfulness or {}
        # A file a line names: linked only when the line names it by a string.
        overlay, gif = (run.file_of(line, key) if isinstance(line.get(key), str) else None
                        for key in ("overlay", "gif"))
        values = {
            "run": run_index, "name": _text(entry.name), "class_id": _class_id(entry.class_id),
            "probability": _rounded(entry.probability),
            "top1": _class_id(top1.get("class_id")),
            "top1_probability": _rounded(top1.get("probability")),
            "gt": list(entry.gt_classes),
            "correct": top1.get("class_id") in entry.gt_classes if entry.gt_classes else None,
            "iou": _rounded(entry.box.iou),
            "box": box_fractions(entry.box.box, entry.box.frame_size),
            "gt_boxes": [box_fractions(box, entry.image_size) for box in entry.gt_boxes],
            "width": max(1, round(width * scale)), "height": max(1, round(height * scale)),
            "thumb": _link(thumbnail, self.output_dir),
            "overlay": overlay and _link(overlay, self.output_dir),
            "gif": gif and _link(gif, self.output_dir),
            "iterations": _count(line.get("iterations")),
            "loss": _rounded(line.get("final_loss")), "history": line.get("loss_history"),
        }
        for key in SCORE_COLUMNS:
            values[key] = _rounded(faithfulness.get(key))
        return values

    def rows(self, workers, progress=True):
        """Every heatmap's row, run by run and image by image; the images are read and
        their thumbnails made by `workers` threads."""
        tasks = [(index, image) for index, run in enumerate(self.runs)
                 for image in run.image_paths()]
        rows = []
        # The bar is cleared before an error is printed.
        with tqdm(total=len(tasks), desc="gallery", unit="image", dynamic_ncols=True,
                  leave=False, disable=not progress) as bar:
            for batch in prefetched(tasks, 4 * workers, self.image_rows, workers):
                for (run_index, _), future in batch:
                    image_rows, made = future.result()
                    rows += image_rows
                    self.made += made
                    self.kept += len(image_rows) - made
                    self.thumbnails.update(row["thumb"] for row in image_rows)
                    bar.update()
        return rows

    def remove_stale_thumbnails(self):
        """Deletes the thumbnails in thumbs/ that this report does not show."""
        folder = os.path.join(self.output_dir, THUMBNAILS)
        shown = {os.path.normpath(os.path.join(self.output_dir, urllib.parse.unquote(link)))
                 for link in self.thumbnails}
        for parent, _, names in os.walk(folder):
            for name in names:
                path = os.path.normpath(os.path.join(parent, name))
                if _THUMBNAIL_NAME.match(name) and path not in shown:
                    os.remove(path)


def table_html(markdown: str, rows: Optional[list] = None) -> str:
    """A table of the evaluation (table.markdown_table's text, or another Markdown table) as
    an HTML table in a box that scrolls sideways (the page itself never does), and its
    notes as a list: the one formatting of the tables, whatever their columns. rows: the
    evaluation table's rows when the markdown is theirs: each score with an interval then
    gets an error bar (`interval_bar`) under its text."""
    lines = markdown.split("\n")
    cells = [[html.escape(cell.strip()) for cell in line.strip().strip("|").split("|")]
             for line in lines if line.startswith("|")]
    header, body = cells[0], cells[2:]
    bars = interval_bars(rows) if rows else {}
    keys = list(COLUMNS_OF_TABLE)
    parts = ["<div class=\"table-scroll\"><table class=\"scores\"><thead><tr>%s</tr></thead>"
             "<tbody>" % "".join("<th><div>%s</div></th>" % cell for cell in header)]
    for number, row in enumerate(body):
        parts.append("<tr>%s</tr>" % "".join(
            "<td>%s%s</td>" % (cell, bars.get((number, keys[index]), "") if index < len(keys)
                               else "") for index, cell in enumerate(row)))
    parts.append("</tbody></table></div>")
    notes = [line[2:] for line in lines if line.startswith("- ")]
    if bars:
        parts.append("<p class=\"notes\">Bars: each score's 95% interval (the line) and "
                     "its value (the dot), on a scale shared by the column's rows (from "
                     "its lowest to its highest bound).</p>")
    if notes:
        parts.append("<ul class=\"notes\">%s</ul>"
                     % "".join("<li>%s</li>" % html.escape(note) for note in notes))
    return "".join(parts)


def interval_bars(rows: list) -> dict:
    """{(row number, score key): its error bar as HTML} of the evaluation rows' scores that
    have an interval, each column on one scale (its rows' lowest to highest bound), so that
    the bars of a column compare; none for a column whose bounds are all one number."""
    bars = {}
    for column in scores():
        low_key, high_key = interval_keys(column.key)
        found = [(number, row[column.key], row[low_key], row[high_key])
                 for number, row in enumerate(rows)
                 if row.get(low_key) is not None and row.get(column.key) is not None]
        if not found:
            continue
        lowest = min(min(low, value) for _, value, low, _ in found)
        highest = max(max(high, value) for _, value, _, high in found)
        if highest <= lowest:
            continue

        def position(value):
            return 100.0 * (value - lowest) / (highest - lowest)
        for number, value, low, high in found:
            bars[(number, column.key)] = (
                "<span class=\"bar\" title=\"95%% interval %s to %s\"><span class=\"range\" "
                "style=\"left:%.1f%%;width:%.1f%%\"></span><span class=\"value\" "
                "style=\"left:%.1f%%\"></span></span>"
                % (column.format % low, column.format % high, position(low),
                   position(high) - position(low), position(value)))
    return bars


def markdown_html(markdown: str) -> str:
    """Markdown of the evaluation's text (blocks apart by blank lines: tables, bulleted
    notes, sentences) as HTML, every word escaped: each table through `table_html`, each
    list of notes as a list, any other block as a paragraph."""
    parts = []
    for block in markdown.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("|"):
            parts.append(table_html("\n".join(lines)))
        elif all(line.startswith("- ") for line in lines[1:]) and len(lines) > 1 and \
                not lines[0].startswith("- "):
            parts.append("<p>%s</p>" % html.escape(lines[0]))
            parts.append("<ul class=\"notes\">%s</ul>" % "".join(
                "<li>%s</li>" % html.escape(line[2:]) for line in lines[1:]))
        else:
            parts.append("<p>%s</p>" % html.escape(" ".join(lines)))
    return "".join(parts)


def statistics_html(table, forest_plot: str = "") -> str:
    """The paired comparisons and the agreement of an l2caf.runs.localization.Table, as the
    page's section ('' without a bootstrap), with forest_plot (the comparisons' figure as
    `figures_html` makes it) beside the comparisons."""
    if table.comparisons is None:
        return "<p>Paired comparisons need two runs or more.</p>" if table.rows and \
            "bootstrap_resamples" in table.rows[0] else ""
    parts = ["<h2>Paired comparisons</h2>", markdown_html(markdown_comparisons(
        table.comparisons)) if table.comparisons.comparisons or table.comparisons.not_compared
        else "<p>No two runs to compare.</p>", forest_plot]
    parts += ["<h2>Metric agreement</h2>",
              markdown_html(markdown_agreement(table.agreement)) if table.agreement is not None
              else "<p>Agreement needs three runs or more.</p>"]
    return "<section id=\"statistics\">%s</section>" % "".join(parts)


def failures_html(runs: list) -> str:
    """A table of the images the runs could not use, or '' when there are none."""
    lines = [(run, failure) for run in runs for failure in run.failures()]
    if not lines:
        return ""
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>"
                   % (html.escape(_text(run.results_dir)), html.escape(_text(failure["image"])),
                      html.escape(_text(failure.get("reason")))) for run, failure in lines)
    return ("<section id=\"failures\"><h2>Images that could not be used (%d)</h2><table "
            "class=\"scores\"><thead><tr><th>run</th><th>image</th><th>reason</th></tr>"
            "</thead><tbody>%s</tbody></table></section>" % (len(lines), rows))


def png_size(path: str) -> tuple:
    """(width, height) in pixels of a PNG file, from its header."""
    with open(path, "rb") as stream:
        header = stream.read(24)
    return struct.unpack(">II", header[16:24])


def figures_html(paths: list, output_dir: str) -> str:
    """The PNG files of paths (figures of l2caf.report.curves, written at
    l2caf.report.drawing.DPI) as images shown at their size (a CSS pixel is 1/96 inch:
    their text as large as the page's, curves.PAGE_FONT_POINTS), each with its PDF."""
    parts = []
    for path in paths:
        if not path.endswith(".png"):
            continue
        width, height = (round(pixels * CSS_PIXELS_PER_INCH / drawing.DPI)
                         for pixels in png_size(path))
        parts.append("<p class=\"figure\"><a href=\"%s\"><img src=\"%s\" width=\"%d\" "
                     "height=\"%d\" alt=\"%s\"></a> <a href=\"%s\">PDF</a></p>"
                     % (_link(path, output_dir), _link(path, output_dir), width, height,
                        html.escape(os.path.basename(path)),
                        _link(path[:-4] + ".pdf", output_dir)))
    return "".join(parts)


def _curves_html(paths, output_dir):
    if not any(path.endswith(".png") for path in paths):
        return "<p>No curves: no run has annotations or faithfulness scores.</p>"
    return figures_html(paths, output_dir)


def contents_html(statistics: str, failures: str, heatmaps: int) -> str:
    """The contents bar at the top of the page: a link to each of its sections (the
    comparisons and the failures when the page has them), the gallery's with its size."""
    links = [("localisation", "table")]
    if statistics.startswith("<section"):
        links.append(("statistics", "comparisons and agreement"))
    links.append(("curves", "curves"))
    if failures:
        links.append(("failures", "images not used"))
    links.append(("gallery", "gallery of the %d heatmaps" % heatmaps))
    return "<nav id=\"contents\">%s</nav>" % " &middot; ".join(
        "<a href=\"#%s\">%s</a>" % link for link in links)


def json_for_script(value) -> str:
    """JSON text that can stand inside a <script> element whatever its strings hold: every
    '<', '>' and '&' written as a \\u escape (they occur only in strings), so that neither
    '</script>' (which would end the element) nor '<!--' (which puts the HTML parser in its
    script-data-escaped state, and the rest of the page into the script) can change how the
    page is parsed. ValueError for NaN and infinities, which JSON lacks."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(template: str, fields: dict) -> str:
    """The template with each {{name}} replaced by fields[name], in one pass (what is put in
    is not read again)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda match: fields[match.group(1)], template)


def gallery_blob(runs: list, classes: dict, rows: list, threshold: float, protocol: str,
                 iou_threshold: float) -> dict:
    """The gallery's JSON blob: runs ({title, folder, annotated} each), classes ({class id as
    text: '3 circle'}), the box settings and columns: {column: its values over `rows` (dicts
    of the COLUMNS), those of ENCODED as text}."""
    columns = collections.OrderedDict(
        (name, [ENCODED[name](row[name]) for row in rows] if name in ENCODED
         else [row[name] for row in rows]) for name in COLUMNS)
    return {"runs": runs, "classes": classes, "threshold": threshold, "protocol": protocol,
            "iou_threshold": iou_threshold, "count": len(rows), "columns": columns}


def page_html(title: str, summary: str, table: str, curves_section: str, failures: str,
              data: dict, statistics: str = "") -> str:
    """The report page: the template (report.html beside this module) with its parts, which
    are HTML except title (text) and data (the `gallery_blob`)."""
    with open(TEMPLATE, encoding="utf-8") as stream:
        template = stream.read()
    return render(template, {
        "title": html.escape(title), "summary": summary, "table": table,
        "statistics": statistics,
        "contents": contents_html(statistics, failures, data["count"]),
        "curves": curves_section, "failures": failures, "threshold": "%g" % data["threshold"],
        "protocol": html.escape(data["protocol"]),
        "iou_threshold": "%g" % data["iou_threshold"], "data": json_for_script(data)})


def write_report(runs: list, output_dir: str, threshold: float = 0.2, protocol: str = "cam",
                 iou_threshold: float = 0.5, thresholds=DEFAULT_THRESHOLDS, workers: int = 1,
                 colormap: str = "bwr", alpha: float = 0.5, thumbnail_size: int = 192,
                 progress: bool = True, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> ReportSummary:
    """Writes output_dir/report.html of `runs` (l2caf.report.pictures.PictureRun), with its
    table (with `resamples` > 0, its intervals, comparisons and agreement, drawn with
    `seed`), curves and thumbnails; returns a `ReportSummary`. The page is written last and
    whole: an interrupted report leaves the previous page (and reusable thumbnails)."""
    try:
        os.makedirs(os.path.join(output_dir, THUMBNAILS), exist_ok=True)
    except OSError as error:
        raise OutputError("cannot write to %s: %s" % (output_dir, error.strerror or error)) \
            from None
    annotated = [run for run in runs if run.annotations is not None]
    # Each run with its own annotations (a run's config may name them), from the folder as
    # the run read it (its snapshot: table, curves and gallery show the same scores), then
    # the statistics of the table they make together.
    table = localization.table_of(
        [localization.score_run(run.results_dir, run.annotations, protocol, threshold,
                                thresholds, iou_threshold, workers, resamples > 0,
                                run.snapshot) for run in annotated], protocol, resamples, seed)
    rows = table.rows
    prefix, font = os.path.join(output_dir, "curves"), curves.PAGE_FONT_POINTS
    curve_paths = curves.write_box_accuracy_curves(prefix, rows, font) if rows else []
    curve_paths += curves.write_faithfulness_curves(
        prefix, [(curves.RunName(run.method, run.config.network, run.layer,
                                 run.results_dir.rstrip("/")), run.faithfulness)
                 for run in runs], font)
    curve_paths += sanity.write_sanity_figure(prefix, [run.results_dir for run in runs], font)
    forest_paths = curves.write_comparison_plot(prefix, table.comparisons, rows, font) \
        if table.comparisons is not None else []
    gallery = Gallery(runs, output_dir, threshold, protocol, iou_threshold, colormap, alpha,
                      thumbnail_size)
    gallery_rows = gallery.rows(workers, progress)
    classes = {}
    for row in gallery_rows:
        run = runs[row["run"]]
        for class_id in [row["class_id"], row["top1"]] + row["gt"]:
            if class_id is not None and _text(class_id) not in classes:
                # A class id that is not one (a line may hold anything) is named by its text.
                classes[_text(class_id)] = run.class_label(class_id) if _is_integer(class_id) \
                    else _text(class_id)
    data = gallery_blob([{"title": run.title, "folder": run.results_dir,
                          "annotated": run.annotations is not None} for run in runs],
                        classes, gallery_rows, threshold, protocol, iou_threshold)
    title = "l2caf report: %s" % ", ".join(run.results_dir.rstrip("/") for run in runs)
    summary = ("%d heatmaps of %d run(s); boxes at threshold %g under the %s protocol, right "
               "at IoU &gt;= %g; made %s." % (len(gallery_rows), len(runs), threshold,
                                               html.escape(protocol), iou_threshold,
                                               time.strftime("%Y-%m-%d %H:%M")))
    page = page_html(title, summary, table_html(markdown_table(rows), rows) if rows
                     else "<p>No table: no run has annotations (give --annotations).</p>",
                     _curves_html(curve_paths, output_dir), failures_html(runs), data,
                     statistics_html(table, figures_html(forest_paths, output_dir))
                     if rows else "")
    path = os.path.join(output_dir, "report.html")
    write_atomically(path, lambda stream: stream.write(page.encode("utf-8")))
    gallery.remove_stale_thumbnails()
    return ReportSummary(path, len(gallery_rows), gallery.made, gallery.kept, len(rows))
