"""The README and docs/: a front page that links every page, links and pictures that
resolve, and the examples that run as written (the synthetic walkthrough on the front page,
the Keras example of docs/keras.md, the Library example of docs/library.md)."""
import glob
import itertools
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")
DOCS = os.path.join(REPO_ROOT, "docs")
FRONT_PAGE_LINES = 380  # the walkthrough shows its measured tables


def read(path):
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def docs_pages():
    return sorted(glob.glob(os.path.join(DOCS, "*.md")))


def prose(text):
    """The text without fenced code blocks and inline code, where brackets are no links."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text):
    """The targets of the text's links and images, [text](target) and ![alt](target)."""
    return re.findall(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(text))


def section(text, heading):
    """From the heading line to the next heading of its level or above, outside code."""
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n")
    level = heading.index(" ")
    fenced = False
    for end in range(start + 1, len(lines)):
        if lines[end].startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,%d} " % level, lines[end]):
            break
    else:
        end = len(lines)
    return "".join(lines[start:end])


def github_anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation other than hyphens (and
    underscores) removed, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    """The anchors of a Markdown file's headings; a repeated one gets -1, -2, ..."""
    found, seen = set(), {}
    text = re.sub(r"^```.*?^```[^\n]*$", "", read(path), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} +(.+?)[ #]*$", text, re.M):
        anchor = github_anchor(heading)
        found.add(anchor if anchor not in seen else "%s-%d" % (anchor, seen[anchor]))
        seen[anchor] = seen.get(anchor, 0) + 1
    return found


def test_github_anchors_follow_githubs_rule():
    assert github_anchor("ImageNet-validation sweeps (fast, batched)") == \
        "imagenet-validation-sweeps-fast-batched"
    assert github_anchor("Reading L2-CAF's heatmaps") == "reading-l2-cafs-heatmaps"
    assert github_anchor("Time, and sharding it") == "time-and-sharding-it"


def test_every_relative_link_and_picture_points_to_a_file_and_a_heading():
    broken, checked, shown = [], 0, set()
    for path in [README] + docs_pages():
        for target in links(read(path)):
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:
                continue
            checked += 1
            name, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), name)) \
                if name else path
            where = "%s: %s" % (os.path.relpath(path, REPO_ROOT), target)
            if not os.path.exists(resolved):
                broken.append(where + " (no such file)")
            elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
                broken.append(where + " (no such heading)")
            shown.add(resolved)
    assert checked > 20
    assert not broken, "\n".join(broken)
    pictures = set(glob.glob(os.path.join(DOCS, "pictures", "*.png")))
    assert pictures and not pictures - shown, "pictures shown nowhere: %s" % (pictures - shown)


def test_the_readme_stays_a_front_page_that_links_every_docs_page():
    readme = read(README)
    assert len(readme.splitlines()) < FRONT_PAGE_LINES
    for heading in ("## Quick start", "## Try it on the synthetic data set", "## Development"):
        assert heading + "\n" in readme
    linked = {os.path.normpath(os.path.join(REPO_ROOT, target.partition("#")[0]))
              for target in links(readme)}
    assert not [page for page in docs_pages() if page not in linked]
    index = os.path.join(DOCS, "README.md")
    linked = {os.path.normpath(os.path.join(DOCS, target.partition("#")[0]))
              for target in links(read(index))}
    assert not [page for page in docs_pages() if page != index and page not in linked]


@pytest.mark.slow
def test_the_readmes_synthetic_walkthrough_runs_and_prints_its_table(tmp_path):
    """The README's commands, run as written on 4 images (each command's cost is mostly its
    start-up and its per-image work; the table's columns do not depend on the count) and
    with --steps 4, from a folder holding the repository's configs, scripts and packages."""
    walkthrough = section(read(README), "## Try it on the synthetic data set")
    commands = walkthrough[walkthrough.index("```bash\n") + 8:]
    commands = commands[:commands.index("```")]
    assert "--num_images 100" in commands and "scripts/evaluate_faithfulness.py" in commands
    assert "--method opticam --max_iters 100" in commands
    commands = commands.replace("--num_images 100", "--num_images 4").replace(
        "scripts/evaluate_faithfulness.py", "scripts/evaluate_faithfulness.py --steps 4 "
        "--road_fractions 0.5").replace("--method opticam --max_iters 100",
                                        "--method opticam --max_iters 10")
    for name in ("configs", "scripts", "l2caf", "nets"):
        os.symlink(os.path.join(REPO_ROOT, name), str(tmp_path / name))
    result = subprocess.run(["bash", "-e", "-c", commands], cwd=str(tmp_path),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # The first table printed (the comparisons and the agreement follow it).
    lines = result.stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| run |"))
    printed = [line for line in itertools.takewhile(lambda line: line.startswith("|"),
                                                    lines[start:]) if line.startswith("| ")]
    shown = walkthrough[walkthrough.index("| run |"):]
    shown = [line for line in shown[:shown.index("\n\n")].splitlines() if line.startswith("| ")]
    assert printed[0] == shown[0]  # the same columns
    assert [line.split(" | ")[:3] for line in printed[1:]] == \
        [line.split(" | ")[:3] for line in shown[1:]]  # run, method, network
    assert "deletion and insertion curves of 4 steps" in result.stdout
    assert "Paired comparisons:" in result.stdout and "Metric agreement:" in result.stdout


@pytest.mark.slow
def test_the_keras_pages_example_runs_as_written():
    page = read(os.path.join(DOCS, "keras.md"))
    code = page[page.index("```python\n") + 10:]
    code = code[:code.index("```")]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["out_relu", "(7,", "7)"]
    assert result.stderr == ""  # no TensorFlow start-up lines


@pytest.mark.slow
def test_the_library_pages_example_runs_as_written():
    page = read(os.path.join(DOCS, "library.md"))
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    class_id, iterations, shape = result.stdout.split(" ", 2)
    assert 0 <= int(class_id) < 6 and int(iterations) % 50 == 1 and shape.strip() == "(21, 21)"
    assert result.stderr == ""
