"""The report page of a real demo sweep, looked at in headless Chromium (l2caf.report.browser):
a screenshot that is not blank, every image of the first page loaded, sorting by IoU
reordering the gallery, a convergence plot per L2-CAF heatmap and its GIF; and both picture
commands run as scripts in a process where TensorFlow cannot be imported.

The sweeps are the shipped demo model's on a few held-out synthetic images (L2-CAF with
GIFs, and Grad-CAM): conftest.py's `demo_sweep`. Lines without loss_history (older runs) get
one in its promised format (helper C's: [updates, loss] at every convergence check) before
the report is made."""
import html
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from l2caf.report import browser, curves, drawing
from tests.helpers import NUM_IMAGES, REPO_ROOT, gallery_data, read_lines, write_lines

pytestmark = pytest.mark.slow  # sweeps with the demo model, runs Chromium
WINDOW = (1280, 2400)  # tall enough for the whole first page of this sweep


def with_loss_history(run):
    """Gives the run's lines a loss_history where they have none: the line's final loss
    reached from twice it, at every check."""
    path = os.path.join(run, "results.jsonl")
    lines = read_lines(path)
    for line in lines:
        if line.get("loss_history") is None:
            checks = list(range(0, line["iterations"], 20)) + [line["iterations"]]
            line["loss_history"] = [[updates, line["final_loss"] * (2.0 - updates /
                                                                    float(checks[-1]))]
                                    for updates in checks]
    write_lines(path, lines)


def run_script(script, arguments, blocked_tensorflow):
    """A picture script in a fresh process that cannot import TensorFlow."""
    environment = dict(os.environ, PYTHONPATH=blocked_tensorflow)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", script)]
                          + arguments, cwd=REPO_ROOT, env=environment, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def report(demo_sweep, blocked_tensorflow, tmp_path_factory):
    """The report of conftest.py's demo sweep, its L2-CAF run (a copy) given loss_history."""
    folder = tmp_path_factory.mktemp("browser")
    data, gradcam = demo_sweep["data"], demo_sweep["gradcam"]
    l2caf = str(folder / "l2caf")
    shutil.copytree(demo_sweep["l2caf"], l2caf)
    with_loss_history(l2caf)
    output = str(folder / "report")
    finished = run_script("make_report.py", ["--results", l2caf, gradcam, "--output", output,
                                             "--progress", "false"], blocked_tensorflow)
    assert finished.returncode == 0, finished.stderr
    with open(os.path.join(output, "report.html"), encoding="utf-8") as stream:
        text = stream.read()
    return output, text, (l2caf, gradcam), data


# Appended to a copy of the page: once it has loaded, what the layout checks need, in the
# body's data-layout attribute (JSON): the page's width and the width it scrolls to, the
# size of its text, each figure's shown and natural widths, and the headers of the table
# (their words and the lines they take).
MEASURE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  function lines(element) {
    var range = document.createRange(), tops = {};
    range.selectNodeContents(element);
    Array.prototype.forEach.call(range.getClientRects(), function (rect) {
      if (rect.width > 0) tops[Math.round(rect.top)] = true;
    });
    return Object.keys(tops).length;
  }
  var layout = {
    scroll_width: root.scrollWidth, client_width: root.clientWidth,
    font_pixels: parseFloat(getComputedStyle(document.body).fontSize),
    figures: Array.prototype.map.call(document.querySelectorAll(".figure img"),
      function (image) {
        return [image.getAttribute("src"), image.getBoundingClientRect().width,
                image.naturalWidth];
      }),
    headers: Array.prototype.map.call(document.querySelectorAll("#localisation ~ .table-scroll th"),
      function (header) {
        return [header.textContent, lines(header.querySelector("div") || header)];
      })
  };
  document.body.setAttribute("data-layout", JSON.stringify(layout));
});
</script>
"""


def layout_of(report_html, width):
    """The MEASURE numbers of a report page shown in a window `width` pixels wide."""
    with open(report_html, encoding="utf-8") as stream:
        text = stream.read()
    measured = os.path.join(os.path.dirname(report_html), "measured.html")
    with open(measured, "w", encoding="utf-8") as stream:
        stream.write(text.replace("</body>", MEASURE + "</body>"))
    dom = browser.dump_dom(browser.file_url(measured), (width, 1000))
    return json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', dom).group(1)))


def assert_readable_layout(report_html, width):
    """At `width` pixels the page does not scroll sideways, every figure's text is at least
    as large as the page's and no header of the table stands one word a line."""
    layout = layout_of(report_html, width)
    assert layout["scroll_width"] <= layout["client_width"] == width, layout
    assert layout["figures"], layout
    for source, shown, natural in layout["figures"]:
        text_pixels = curves.PAGE_FONT_POINTS / 72.0 * drawing.DPI * shown / natural
        assert text_pixels >= layout["font_pixels"], (source, text_pixels, layout)
    assert len(layout["headers"]) > 10
    for header, lines in layout["headers"]:
        assert lines <= (len(header.split()) + 1) // 2, (header, lines)  # two words a line
    return layout


def cards(dom):
    """The gallery rows of the cards in a DOM, in their order."""
    return [int(index) for index in re.findall(r'<figure class="card" data-row="(\d+)"', dom)]


def body_attributes(dom):
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', body))


def test_chromium_shows_the_page_with_every_image_of_the_first_page(report, tmp_path):
    output, text, runs, _ = report
    url = browser.file_url(os.path.join(output, "report.html"))
    shot = browser.screenshot(url, str(tmp_path / "page.png"), WINDOW)
    picture = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert picture.shape[:2] == (WINDOW[1], WINDOW[0])
    # Not blank: the table, the curves and the thumbnails make many colours, far from white
    # (the tables' text on white is most of the page's top).
    colours = len(np.unique((picture[..., 0] << 16) | (picture[..., 1] << 8) | picture[..., 2]))
    not_white = np.mean(np.abs(picture - 255).max(axis=-1) > 30)
    assert colours > 2000 and not_white > 0.1, (colours, not_white)

    dom = browser.dump_dom(url, WINDOW)
    _, rows = gallery_data(text)
    assert len(rows) >= 2 * NUM_IMAGES
    shown = cards(dom)
    status = body_attributes(dom)
    assert len(shown) == min(48, len(rows)) == int(status["images"])
    assert status["images-loaded"] == status["images"] and status["images-failed"] == "0"
    # Each L2-CAF card plots its loss at every check; Grad-CAM's have no plot.
    for index, card in re.findall(r'<figure class="card" data-row="(\d+)">(.*?)</figure>', dom):
        row = rows[int(index)]
        if row["run"] == 0:
            [points] = re.findall(r'<polyline[^>]*points="([^"]*)"', card)
            assert len(points.split()) == len(row["history"]) > 1
            assert 'href="%s"' % row["gif"] in card and row["gif"].endswith(".gif")
            assert os.path.exists(os.path.join(output, row["gif"]))
        else:
            assert "<svg" not in card and row["history"] is None


@pytest.mark.parametrize("width", [1280, 1400])
def test_the_page_never_scrolls_sideways_and_its_figures_text_is_as_large_as_its_own(report,
                                                                                     width):
    output, _, _, _ = report
    layout = assert_readable_layout(os.path.join(output, "report.html"), width)
    shown = [source for source, _, _ in layout["figures"]]
    assert shown == ["curves_comparisons.png", "curves_maxboxacc.png"]


def test_a_card_names_each_class_once(report):
    output, text, _, _ = report
    data, rows = gallery_data(text)
    dom = browser.dump_dom(browser.file_url(os.path.join(output, "report.html")), WINDOW)
    found = re.findall(r'<figure class="card" data-row="(\d+)">(.*?)</figure>', dom)
    assert found
    for index, card in found:
        row = rows[int(index)]
        lines = [re.sub(r"<[^>]+>", "", line) for line in re.findall(r"<div>(.*?)</div>", card)]
        named = [data["classes"][str(class_id)] for class_id in
                 {row["class_id"], row["top1"]} | set(row["gt"])]
        for name in named:
            assert sum(line.count(name) for line in lines) == 1, (name, lines)
        if row["class_id"] == row["top1"]:
            assert lines[0].startswith("%s, p " % data["classes"][str(row["class_id"])])
            assert lines[0].endswith(", top-1 right" if row["correct"] else ", top-1 wrong")


def test_sorting_by_iou_reorders_the_gallery_worst_first(report):
    output, text, _, _ = report
    _, rows = gallery_data(text)
    url = os.path.join(output, "report.html")
    by_name = cards(browser.dump_dom(browser.file_url(url, "sort=name"), WINDOW))
    by_iou = cards(browser.dump_dom(browser.file_url(url, "sort=iou"), WINDOW))
    expected = sorted(range(len(rows)), key=lambda index: (rows[index]["iou"] is None,
                                                           rows[index]["iou"] or 0, index))
    assert by_iou == expected[:48]
    assert by_name == sorted(range(len(rows)), key=lambda index: (rows[index]["name"], index))
    assert by_iou != by_name
    # One run, the misses only.
    missed = cards(browser.dump_dom(browser.file_url(url, "run=1&show=missed&sort=-iou"),
                                    WINDOW))
    assert missed == sorted([index for index, row in enumerate(rows) if row["run"] == 1 and
                             row["iou"] is not None and row["iou"] < 0.5],
                            key=lambda index: (-rows[index]["iou"], index))


def test_the_figure_script_draws_the_sweep_without_tensorflow(report, blocked_tensorflow,
                                                             tmp_path):
    _, _, runs, data = report
    prefix = str(tmp_path / "worst")
    finished = run_script("make_figure.py", ["--results"] + list(runs) + [
        "--worst", "3", "--by", "iou", "--annotations", os.path.join(data, "annotations"),
        "--output", prefix, "--dpi", "100"], blocked_tensorflow)
    assert finished.returncode == 0, finished.stderr
    assert "(3 images x 2 runs" in finished.stdout
    with Image.open(prefix + ".png") as png:
        assert png.info["dpi"] == pytest.approx((100, 100), abs=0.01)
