"""The report page of run folders (scripts/make_report.py): one self-contained report.html
in an output folder, which opens from the file system (no server, no network).

* the localisation table of the annotated runs (l2caf.runs.localization, the table
  scripts/evaluate_localization.py prints) and its curves (l2caf.report.curves), as PNG
  files beside the page;
* the images the runs could not use (failures*.jsonl);
* a gallery of every heatmap: its overlay as a thumbnail (a JPEG file in thumbs/, referred
  to by a relative path, loaded lazily), the ground-truth boxes and the evaluation's box
  (drawn by the page over the thumbnail), class, probability, IoU, iterations, loss, the
  faithfulness scores when there are some, a convergence plot of the loss (from the
  results lines' loss_history; none for lines without it) and a link to the GIF and the
  full overlay when the run made them (relative paths into the run folders: keep the report
  beside them).

The gallery is one JSON blob in the page (a list of values per column); a small
plain script (report.html beside this module) filters, sorts and pages it, with its state in
the address's #fragment, so that a view can be bookmarked and a 50,000-heatmap sweep opens
with one page of cards.

Thumbnails are named after what they show (the image and heatmap files, their sizes and
times, the colour map, opacity and size): a second report of the same runs makes only the
new ones, and those no report refers to any more are removed.
"""
import collections
import hashlib
import html
import json
import os
import re
import time
import urllib.parse

import cv2
from tqdm import tqdm

from l2caf import heatmaps
from l2caf.errors import OutputError
from l2caf.evaluation import DEFAULT_THRESHOLDS
from l2caf.evaluation.table import markdown_table, metrics
from l2caf.files import write_atomically
from l2caf.parallel import prefetched
from l2caf.report import curves, drawing
from l2caf.report.pictures import box_fractions, read_picture
from l2caf.runs import localization

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.html")
THUMBNAILS = "thumbs"
THUMBNAIL_QUALITY = 85
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
    "gt": lambda ids: " ".join(str(class_id) for class_id in ids),
    "box": lambda box: " ".join("%.4f" % value for value in box),
    "gt_boxes": lambda boxes: ";".join(" ".join("%.4f" % value for value in box)
                                       for box in boxes),
    "history": lambda history: " ".join("%d:%.4g" % (updates, loss)
                                        for updates, loss in history or ()),
}
_THUMBNAIL_NAME = re.compile(r".+_[0-9a-f]{16}\.jpg$")

ReportSummary = collections.namedtuple("ReportSummary", ["path", "heatmaps", "thumbnails_made",
                                                         "thumbnails_kept", "table_rows"])
ReportSummary.__doc__ = """What `write_report` did: the page's path, the heatmaps in its
gallery, thumbnails made and kept from an earlier report, rows of its table."""


def _rounded(value, digits=4):
    """A float with `digits` significant digits (the page shows 2 or 3), None kept."""
    return None if value is None else float("%.*g" % (digits, value))


def _stat(path):
    status = os.stat(path)
    return "%s:%d:%d" % (os.path.abspath(path), status.st_size, status.st_mtime_ns)


def _link(path, output_dir):
    """A relative URL from the report folder to path."""
    return urllib.parse.quote(os.path.relpath(path, output_dir).replace(os.sep, "/"))


class Gallery(object):
    """The gallery rows of runs and their thumbnails in output_dir."""

    def __init__(self, runs, output_dir, threshold, protocol, iou_threshold, colormap, alpha,
                 thumbnail_size):
        self.runs, self.output_dir = runs, output_dir
        self.threshold, self.protocol, self.iou_threshold = threshold, protocol, iou_threshold
        self.colormap = drawing.colormap(colormap)
        self.alpha, self.size = drawing.check_alpha(alpha), thumbnail_size
        # What every thumbnail's name depends on besides its files.
        self.settings = "%s:%r:%d:%d" % (colormap, alpha, thumbnail_size, THUMBNAIL_QUALITY)
        self.made = self.kept = 0
        self.thumbnails = set()

    def _thumbnail_path(self, run_index, entry, image):
        digest = hashlib.sha256("|".join([self.settings, _stat(image),
                                          str(entry.heatmap.shape)]).encode("utf-8"))
        digest.update(entry.heatmap.tobytes())
        digest = digest.hexdigest()[:16]
        class_part = "oblivious" if entry.class_id is None else "c%d" % entry.class_id
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
                    overlay = heatmaps.show_heatmap_on_image(small, entry.heatmap, self.alpha,
                                                             self.colormap)
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
        overlay, gif = run.file_of(line, "overlay"), run.file_of(line, "gif")
        values = {
            "run": run_index, "name": entry.name, "class_id": entry.class_id,
            "probability": _rounded(entry.probability),
            "top1": top1["class_id"], "top1_probability": _rounded(top1["probability"]),
            "gt": list(entry.gt_classes),
            "correct": top1["class_id"] in entry.gt_classes if entry.gt_classes else None,
            "iou": _rounded(entry.box.iou),
            "box": box_fractions(entry.box.box, entry.box.frame_size),
            "gt_boxes": [box_fractions(box, entry.image_size) for box in entry.gt_boxes],
            "width": max(1, round(width * scale)), "height": max(1, round(height * scale)),
            "thumb": _link(thumbnail, self.output_dir),
            "overlay": overlay and _link(overlay, self.output_dir),
            "gif": gif and _link(gif, self.output_dir),
            "iterations": line.get("iterations"), "loss": _rounded(line.get("final_loss")),
            "history": line.get("loss_history") or (),
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


def table_html(markdown: str) -> str:
    """The localisation table (table.markdown_table's text) as an HTML table and its notes
    as a list: the one formatting of the table, whatever its columns."""
    lines = markdown.split("\n")
    cells = [[html.escape(cell.strip()) for cell in line.strip().strip("|").split("|")]
             for line in lines if line.startswith("|")]
    header, body = cells[0], cells[2:]
    parts = ["<table class=\"scores\"><thead><tr>%s</tr></thead><tbody>"
             % "".join("<th>%s</th>" % cell for cell in header)]
    parts += ["<tr>%s</tr>" % "".join("<td>%s</td>" % cell for cell in row) for row in body]
    parts.append("</tbody></table>")
    notes = [line[2:] for line in lines if line.startswith("- ")]
    if notes:
        parts.append("<ul class=\"notes\">%s</ul>"
                     % "".join("<li>%s</li>" % html.escape(note) for note in notes))
    return "".join(parts)


def failures_html(runs: list) -> str:
    """A table of the images the runs could not use, or '' when there are none."""
    lines = [(run, failure) for run in runs for failure in run.failures()]
    if not lines:
        return ""
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>"
                   % (html.escape(run.results_dir), html.escape(failure["image"]),
                      html.escape(failure.get("reason", ""))) for run, failure in lines)
    return ("<section id=\"failures\"><h2>Images that could not be used (%d)</h2><table "
            "class=\"scores\"><thead><tr><th>run</th><th>image</th><th>reason</th></tr>"
            "</thead><tbody>%s</tbody></table></section>" % (len(lines), rows))


def _curves_html(paths, output_dir):
    images = [path for path in paths if path.endswith(".png")]
    if not images:
        return "<p>No curves: no run has annotations or faithfulness scores.</p>"
    return "".join("<p><a href=\"%s\"><img src=\"%s\" alt=\"%s\"></a> <a href=\"%s\">PDF</a>"
                   "</p>" % (_link(path, output_dir), _link(path, output_dir),
                             html.escape(os.path.basename(path)),
                             _link(path[:-4] + ".pdf", output_dir)) for path in images)


def json_for_script(value) -> str:
    """JSON text that can stand inside a <script> element (no '</' to end it early)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


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
              data: dict) -> str:
    """The report page: the template (report.html beside this module) with its parts, which
    are HTML except title (text) and data (the `gallery_blob`)."""
    with open(TEMPLATE, encoding="utf-8") as stream:
        template = stream.read()
    return render(template, {
        "title": html.escape(title), "summary": summary, "table": table,
        "curves": curves_section, "failures": failures, "threshold": "%g" % data["threshold"],
        "protocol": html.escape(data["protocol"]),
        "iou_threshold": "%g" % data["iou_threshold"], "data": json_for_script(data)})


def write_report(runs: list, output_dir: str, threshold: float = 0.2, protocol: str = "cam",
                 iou_threshold: float = 0.5, thresholds=DEFAULT_THRESHOLDS, workers: int = 1,
                 colormap: str = "bwr", alpha: float = 0.5, thumbnail_size: int = 192,
                 progress: bool = True) -> ReportSummary:
    """Writes output_dir/report.html of `runs` (l2caf.report.pictures.PictureRun), with its
    table, curves and thumbnails; returns a `ReportSummary`. The page is written last and
    whole: an interrupted report leaves the previous page (and reusable thumbnails)."""
    try:
        os.makedirs(os.path.join(output_dir, THUMBNAILS), exist_ok=True)
    except OSError as error:
        raise OutputError("cannot write to %s: %s" % (output_dir, error.strerror or error)) \
            from None
    annotated = [run for run in runs if run.annotations is not None]
    rows = [localization.evaluate_run(run.results_dir, run.annotations, protocol, threshold,
                                      thresholds, iou_threshold, workers)
            for run in annotated]
    curve_paths = []
    if rows:
        curve_paths += curves.write_box_accuracy_curves(
            os.path.join(output_dir, "curves"), rows)
    curve_paths += curves.write_faithfulness_curves(
        os.path.join(output_dir, "curves"),
        [("%s (%s)" % (run.title, run.results_dir.rstrip("/")), run.results_dir)
         for run in runs])
    gallery = Gallery(runs, output_dir, threshold, protocol, iou_threshold, colormap, alpha,
                      thumbnail_size)
    gallery_rows = gallery.rows(workers, progress)
    classes = {}
    for row in gallery_rows:
        run = runs[row["run"]]
        for class_id in [row["class_id"], row["top1"]] + row["gt"]:
            if class_id is not None and str(class_id) not in classes:
                classes[str(class_id)] = run.class_label(class_id)
    data = gallery_blob([{"title": run.title, "folder": run.results_dir,
                          "annotated": run.annotations is not None} for run in runs],
                        classes, gallery_rows, threshold, protocol, iou_threshold)
    title = "l2caf report: %s" % ", ".join(run.results_dir.rstrip("/") for run in runs)
    summary = ("%d heatmaps of %d run(s); boxes at threshold %g under the %s protocol, right "
               "at IoU &gt;= %g; made %s." % (len(gallery_rows), len(runs), threshold,
                                               html.escape(protocol), iou_threshold,
                                               time.strftime("%Y-%m-%d %H:%M")))
    page = page_html(title, summary, table_html(markdown_table(rows)) if rows
                     else "<p>No table: no run has annotations (give --annotations).</p>",
                     _curves_html(curve_paths, output_dir), failures_html(runs),
                     data)
    path = os.path.join(output_dir, "report.html")
    write_atomically(path, lambda stream: stream.write(page.encode("utf-8")))
    gallery.remove_stale_thumbnails()
    return ReportSummary(path, len(gallery_rows), gallery.made, gallery.kept, len(rows))
