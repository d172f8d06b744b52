"""Hostile run folders and the report page (issue 24, cases 3 and 4): every value that comes
from a run folder reaches the page as text, whatever its type; the gallery's JSON blob can
neither end its script element ('</script>') nor hide it ('<!--' puts the HTML parser in its
script-data-escaped state); links are relative paths, never a scheme ('javascript:'), a host
or an absolute path.

Unit tests of l2caf.report.page, then the page in headless Chromium (l2caf.report.browser,
slow): a page of a blob of hostile values of every type, and reports that
scripts/make_report.py's main makes of run folders written here without TensorFlow
(tests/helpers.py's make_run over conftest.py's `dataset`) whose lines carry markup in their
text fields and text where numbers belong. l2caf.runs.read refuses lines whose fields have the
wrong types; those tests read the lines without its checks, as a folder that slipped past
them would be read, so that the page's own defences are what they test."""
import collections
import json
import math
import os
import re
import shutil
import types
from html.parser import HTMLParser
from urllib.parse import quote

import numpy as np
import pytest

from l2caf.cli.report import main
from l2caf.report import browser, page
from l2caf.report.pictures import Entry
from l2caf.runs import localization, read
from l2caf.runs.folder import image_key, kind_files
from tests.helpers import NUM_IMAGES, gallery_data, make_run, read_lines, write_lines

# What an attacker writes: markup that sets the title if it runs, a comment opener that puts
# the HTML parser in its script-data-escaped state, and a script element.
PAYLOAD = "<img src=x onerror=document.title='pwned'>"
COMMENT = "<!--<script>"
SCRIPT = "<script>document.title='pwned'</script>"
# A relative URL of percent-encoded path segments: what page.py and the script let through.
RELATIVE_URL = re.compile(r"[A-Za-z0-9._~%-][A-Za-z0-9._~%/-]*\Z")
# The contents bar's links to the page's own sections (the template's, never the data's).
SECTION_LINK = re.compile(r"#[a-z][a-z0-9-]*\Z")
WINDOW = (1280, 2400)


class Parsed(HTMLParser):
    """What an HTML text holds: its elements (tag, attributes), its first <title>'s text and
    its text outside <script> and <style>, character references resolved."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self.text, self.title = [], [], None
        self._in = None
        self.feed(text)
        self.close()
        self.text = "".join(self.text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style") or (tag == "title" and self.title is None):
            self._in = tag
            if tag == "title":
                self.title = ""

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        if self._in not in ("script", "style"):
            self.text.append(data)

    def tags(self, name):
        return [attributes for tag, attributes in self.elements if tag == name]


def assert_no_markup_ran_or_was_made(parsed, title):
    """No element or attribute of the data: the template's two scripts only, no event handler
    attribute, every link a relative path or a link to one of the page's sections; the title
    the page was written with."""
    assert parsed.title == title
    assert len(parsed.tags("script")) == 2
    handlers = [(tag, name) for tag, attributes in parsed.elements for name in attributes
                if name.startswith("on")]
    assert handlers == []
    links = [attributes[name] for _, attributes in parsed.elements
             for name in ("href", "src") if name in attributes]
    assert all(RELATIVE_URL.match(link) or SECTION_LINK.match(link) for link in links), links


# Unit tests of l2caf.report.page.

def test_the_json_blob_has_no_angle_bracket_nor_ampersand():
    value = {"name": COMMENT, "iterations": PAYLOAD, "reason": SCRIPT + " & </script><!--",
             "nested": [{"class": COMMENT}, "-->"]}
    text = page.json_for_script(value)
    assert not set("<>&") & set(text), text
    assert json.loads(text) == value


class FakeRun(object):
    """What failures_html and Gallery ask of a run (l2caf.report.pictures.PictureRun)."""

    def __init__(self, results_dir, failures=()):
        self.results_dir, self._failures = results_dir, list(failures)

    def failures(self):
        return self._failures

    def file_of(self, line, key):
        path = os.path.join(self.results_dir, os.path.basename(line[key]))
        return path if os.path.isfile(path) else None


def test_the_page_holds_no_markup_from_a_run_folder():
    failures = page.failures_html([FakeRun(PAYLOAD, [{"image": PAYLOAD, "reason": SCRIPT}])])
    table = page.table_html("| run | layer |\n|---|---|\n| %s | %s |\n\n- %s\n"
                            % (PAYLOAD, SCRIPT, COMMENT))
    row = {name: None for name in page.COLUMNS}
    row.update(run=0, name=COMMENT, class_id=1, top1=1, iterations=PAYLOAD, loss=SCRIPT,
               probability=COMMENT, gt=[1], box=(0.1, 0.1, 0.5, 0.5), gt_boxes=[],
               width=10, height=10, thumb="thumbs/0/x.jpg", history=[[0, 1.0]])
    data = page.gallery_blob([{"title": PAYLOAD, "folder": SCRIPT, "annotated": True}],
                             {"1": COMMENT}, [row], 0.2, "cam", 0.5)
    text = page.page_html(PAYLOAD, "", table, "", failures, data)
    assert "<!--" not in text and "<img" not in text
    assert text.count("<script") == 2 and text.count("</script>") == 2
    parsed = Parsed(text)
    assert_no_markup_ran_or_was_made(parsed, PAYLOAD)
    assert PAYLOAD in parsed.text and SCRIPT in parsed.text and COMMENT in parsed.text
    assert gallery_data(text)[0]["columns"]["iterations"] == [PAYLOAD]


def test_failure_reasons_of_any_type_are_shown_as_text():
    text = page.failures_html([FakeRun("run", [
        {"image": COMMENT, "reason": {"why": PAYLOAD}}, {"image": "plain.jpg", "reason": 7},
        {"image": "quiet.jpg"}, {"image": ["a", "list"], "reason": None}])])
    parsed = Parsed(text)
    assert {tag for tag, _ in parsed.elements} == {"section", "h2", "table", "thead", "tr", "th",
                                                   "tbody", "td"}
    for shown in (COMMENT, '{"why": "%s"}' % PAYLOAD, "plain.jpg7", "quiet.jpg",
                  '["a", "list"]'):
        assert shown in parsed.text, shown


def test_a_lines_values_of_any_type_reach_the_blob_as_numbers_or_text(tmp_path):
    run_dir, output = tmp_path / "run", tmp_path / "report"
    run_dir.mkdir()
    output.mkdir()
    hostile_file = "javascript:document.title='pwned'"
    (run_dir / hostile_file).write_bytes(b"not an overlay")
    line = {"predictions": [{"class_id": PAYLOAD, "probability": "high"}],
            "iterations": PAYLOAD, "final_loss": "<b>-3.5</b>",
            "loss_history": [["<i>", "x"], [50, -3.0]], "overlay": hostile_file,
            "gif": ["not", "a", "name"]}
    entry = Entry(name=COMMENT, image=str(run_dir / "image.jpg"), line=line, class_id=SCRIPT,
                  class_name=COMMENT, probability=[PAYLOAD], heatmap=np.zeros((4, 4), np.float32),
                  image_size=(8, 8), gt_classes=[1, PAYLOAD], gt_boxes=[],
                  box=types.SimpleNamespace(iou=None, box=(0, 0, 3, 3), frame_size=(8, 8)),
                  faithfulness={"deletion_auc": "<b>0.1</b>", "insertion_auc": float("nan"),
                                "average_drop": {"x": PAYLOAD}, "increase_in_confidence": True})
    (run_dir / "image.jpg").write_bytes(b"an image")
    gallery = page.Gallery([FakeRun(str(run_dir))], str(output), 0.2, "cam", 0.5, "bwr", 0.5,
                           192)
    thumbnail = gallery._thumbnail_path(0, entry, entry.image)
    # A class id that is not one names no folder: the thumbnail is in thumbs/0.
    assert os.path.dirname(thumbnail) == str(output / "thumbs" / "0")
    row = gallery._row(0, entry, thumbnail)
    data = page.gallery_blob([{"title": "t", "folder": "f", "annotated": False}], {}, [row],
                             0.2, "cam", 0.5)
    text = page.json_for_script(data)  # no NaN left: JSON has none
    columns = json.loads(text)["columns"]
    for name, values in columns.items():
        [value] = values
        assert value is None or isinstance(value, (str, bool)) or (
            isinstance(value, (int, float)) and math.isfinite(value)), (name, value)
    assert columns["iterations"] == [PAYLOAD] and columns["loss"] == ["<b>-3.5</b>"]
    assert columns["class_id"] == [SCRIPT] and columns["top1"] == [PAYLOAD]
    assert columns["probability"] == [json.dumps([PAYLOAD])]
    assert columns["top1_probability"] == ["high"] and columns["history"] == [""]
    assert columns["gt"] == ["1"]
    assert columns["deletion_auc"] == ["<b>0.1</b>"] and columns["insertion_auc"] == ["NaN"]
    assert columns["average_drop"] == [json.dumps({"x": PAYLOAD})]
    assert columns["increase_in_confidence"] == [1.0]
    # Links: relative paths whatever the file's name; a name that is not text links nothing.
    [overlay] = columns["overlay"]
    assert RELATIVE_URL.match(overlay) and ":" not in overlay, overlay
    assert overlay == "../run/javascript%3Adocument.title%3D%27pwned%27"
    assert columns["gif"] == [None]
    assert RELATIVE_URL.match(columns["thumb"][0])


# The page in headless Chromium.

def dump(path, fragment=""):
    return Parsed(browser.dump_dom(browser.file_url(path, fragment), WINDOW))


def cards(parsed):
    return [attributes for attributes in parsed.tags("figure")
            if attributes.get("class") == "card"]


def blob_rows():
    """Gallery rows of values of every type where the page's own are numbers, text or links,
    and links that are not relative paths."""
    plain = {name: None for name in page.COLUMNS}
    plain.update(run=0, name="plain", class_id=1, probability=0.9, top1=1,
                 top1_probability=0.9, gt="1", correct=True, iou=0.7, box="0.1 0.1 0.5 0.5",
                 gt_boxes="0.1 0.1 0.5 0.5", width=96, height=96, thumb="thumbs/0/a.jpg",
                 iterations=PAYLOAD, loss=-3.5, history="0:-1 50:-3", deletion_auc=0.1,
                 insertion_auc=0.8, average_drop=0.2, increase_in_confidence=1)
    text_for_numbers = dict(
        plain, name=SCRIPT, class_id=PAYLOAD, probability=PAYLOAD, top1=SCRIPT,
        top1_probability="high", gt=PAYLOAD, correct="yes", iou="0.7", box=PAYLOAD,
        gt_boxes=PAYLOAD, width=PAYLOAD, height="96", iterations=101, loss=PAYLOAD,
        history="1:" + PAYLOAD, deletion_auc=PAYLOAD, insertion_auc="x", average_drop=SCRIPT,
        increase_in_confidence=PAYLOAD)
    containers = dict(
        plain, run=1, name=[PAYLOAD], class_id={"id": PAYLOAD}, probability=[0.5], top1=[1],
        top1_probability={"p": 1}, gt=[1, 2], correct=[True], iou={"iou": PAYLOAD},
        box=[0.1, 0.1, 0.5, 0.5], gt_boxes=[[PAYLOAD]], width=[96], height={"h": 1},
        thumb=["thumbs/0/c.jpg"], overlay={"href": "javascript:document.title='pwned'"},
        gif=[PAYLOAD], iterations={"n": PAYLOAD}, loss=[PAYLOAD], history=[[0, 1], [2, 3]],
        deletion_auc=[1], insertion_auc={"a": 1}, average_drop=[PAYLOAD],
        increase_in_confidence=[1])
    schemes = dict(plain, thumb="javascript:document.title='pwned'",
                   overlay="JaVaScRiPt:document.title='pwned'",
                   gif="data:text/html,<script>document.title='pwned'</script>")
    hosts = dict(plain, run="0", name=5, thumb="//example.invalid/x.jpg", overlay="/etc/passwd",
                 gif=" javascript:document.title='pwned'")
    nothing = dict({name: None for name in page.COLUMNS}, run=7)
    return [plain, text_for_numbers, containers, schemes, hosts, nothing]


@pytest.mark.slow
def test_the_script_shows_values_of_any_type_as_text_in_chromium(tmp_path):
    rows = blob_rows()
    data = {"runs": [{"title": PAYLOAD, "folder": SCRIPT, "annotated": True},
                     {"title": 5, "folder": None, "annotated": "yes"}, "not a run"],
            "classes": {"1": PAYLOAD, "2": ["x"], PAYLOAD: SCRIPT},
            "threshold": 0.2, "protocol": "cam", "iou_threshold": 0.5, "count": len(rows),
            "columns": collections.OrderedDict(
                (name, [row[name] for row in rows]) for name in page.COLUMNS)}
    path = str(tmp_path / "report.html")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(page.page_html("hostile blob", "", "", "", "", data))
    for fragment in ("", "sort=-iterations", "sort=probability&class=" + quote(PAYLOAD)):
        parsed = dump(path, fragment)
        assert_no_markup_ran_or_was_made(parsed, "hostile blob")
        assert len(cards(parsed)) == (len(rows) if not fragment.startswith("sort=prob")
                                      else 1), fragment
    parsed = dump(path)
    for shown in (PAYLOAD + " iterations, loss -3.500", "101 iterations, loss " + PAYLOAD,
                  SCRIPT, "drop " + SCRIPT + " %", '{"n":"%s"} iterations' % PAYLOAD):
        assert shown in parsed.text, shown
    assert parsed.tags("body")[0]["data-page"] == "1"


def plain_read_lines(results_dir):
    """A run's results lines as l2caf.runs.read.read_lines gives them, without its checks of
    the fields' types."""
    by_image = collections.OrderedDict()
    for path in kind_files(results_dir, "results"):
        with open(path, encoding="utf-8") as stream:
            for record in (json.loads(text) for text in stream if text.strip()):
                by_image.setdefault(image_key(record["image"]), []).append(record)
    return by_image


def hostile_run(tmp_path, dataset, kinds):
    """A run folder over a copy of the data set with payloads of `kinds`: 'script' (markup in
    the folder's name, the layer, a failure, the overlay's and the GIF's file names, and
    iterations), 'comment' (an image file named and a class called COMMENT), 'types' (text
    and malformed lists where numbers belong). Returns its path."""
    data = str(tmp_path / "data")
    shutil.copytree(dataset, data)
    if "comment" in kinds:
        for folder, extension in (("images", ".JPEG"), ("annotations", ".xml")):
            os.rename(os.path.join(data, folder, "synth_00002" + extension),
                      os.path.join(data, folder, COMMENT + extension))
    run = make_run(str(tmp_path / (PAYLOAD if "script" in kinds else "run")), data)
    path = os.path.join(run, "results.jsonl")
    lines = read_lines(path)
    if "script" in kinds:
        for line in lines:
            line["layer"] = SCRIPT
        lines[1]["iterations"] = PAYLOAD
        overlay, gif = "javascript:document.title='pwned'", PAYLOAD + ".gif"
        for name in (overlay, gif):
            with open(os.path.join(run, name), "wb") as stream:
                stream.write(b"a file")
        lines[0].update(overlay=overlay, gif=gif)
        write_lines(os.path.join(run, "failures.jsonl"),
                    [{"image": PAYLOAD + ".jpg", "reason": SCRIPT + " <b>unreadable</b>"}])
    if "comment" in kinds:
        renamed = lines[2]["class_id"]
        for line in lines:
            for prediction in line["predictions"]:
                if prediction["class_id"] == renamed:
                    prediction["class_name"] = COMMENT
            if line["class_id"] == renamed:
                line["class_name"] = COMMENT
    if "types" in kinds:
        lines[3]["final_loss"] = "<b>-3.5</b>"
        lines[4]["predictions"][0]["probability"] = PAYLOAD
        lines[5]["loss_history"] = [["<i>", "x"], [50, SCRIPT]]
        lines[0]["iterations"] = [PAYLOAD]
    write_lines(path, lines)
    return run


@pytest.mark.slow
@pytest.mark.parametrize("kinds", [("script",), ("comment",), ("script", "comment", "types")],
                         ids=["script", "comment", "all"])
def test_a_hostile_run_folders_report_runs_no_script_and_shows_every_card(
        dataset, tmp_path, monkeypatch, kinds):
    run = hostile_run(tmp_path, dataset, kinds)
    # Lines with fields of the wrong types, read as if l2caf.runs.read had let them through.
    monkeypatch.setattr(read, "read_lines", plain_read_lines)
    monkeypatch.setattr(localization, "read_lines", plain_read_lines)
    output = str(tmp_path / "report")
    assert main(["--results", run, "--output", output, "--workers", "1", "--progress",
                 "false"]) == 0
    path = os.path.join(output, "report.html")
    with open(path, encoding="utf-8") as stream:
        written = Parsed(stream.read())
    assert "l2caf report: " in written.title

    parsed = dump(path)
    assert_no_markup_ran_or_was_made(parsed, written.title)
    assert len(cards(parsed)) == NUM_IMAGES
    body = parsed.tags("body")[0]
    assert body["data-images"] == body["data-images-loaded"] == str(NUM_IMAGES)
    assert body["data-images-failed"] == "0"
    if "script" in kinds:
        for shown in (PAYLOAD + " iterations", SCRIPT + " <b>unreadable</b>",
                      PAYLOAD + ".jpg"):
            assert shown in parsed.text, shown
        # The run's folder (in the title, the heading, the table's run cell and its note of
        # the scores without an interval, the failures' run cell), the failure's reason, the
        # run's title (its layer) in the run select: text.
        assert written.text.count(run) == 5 and SCRIPT + " <b>unreadable</b>" in written.text
        assert "L2-CAF, demo_densenet, %s (%s)" % (SCRIPT, run) in parsed.text
        assert any(os.path.basename(attributes.get("href", "")).startswith("javascript%3A")
                   for attributes in parsed.tags("a"))
    if "comment" in kinds:
        assert parsed.text.count(COMMENT) >= 2  # the image's name and its class
        assert COMMENT in [attributes.get("alt") for attributes in parsed.tags("img")]
    if "types" in kinds:
        for shown in ("loss <b>-3.5</b>", "p " + PAYLOAD, json.dumps([PAYLOAD]) + " iterations"):
            assert shown in parsed.text, shown
