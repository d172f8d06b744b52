"""The report page of a real demo sweep, looked at in headless Chromium (l2caf.report.browser):
a screenshot that is not blank, every image of the first page loaded, sorting by IoU
reordering the gallery, a convergence plot per L2-CAF heatmap and its GIF; and both picture
commands run as scripts in a process where TensorFlow cannot be imported.

The sweeps are the shipped demo model's on a few held-out synthetic images (L2-CAF with
GIFs, and Grad-CAM): conftest.py's `demo_sweep`. Lines without loss_history (older runs) get
one in its promised format (helper C's: [updates, loss] at every convergence check) before
the report is made."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from l2caf.report import browser
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
    # Not blank: the table, the curves and the thumbnails make many colours, far from white.
    colours = len(np.unique((picture[..., 0] << 16) | (picture[..., 1] << 8) | picture[..., 2]))
    not_white = np.mean(np.abs(picture - 255).max(axis=-1) > 30)
    assert colours > 2000 and not_white > 0.15, (colours, not_white)

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
