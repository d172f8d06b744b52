"""What a newcomer meets first (issue 28): the licence and the citation, commands that do not
change the shipped files or leave files behind by surprise."""
import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO_ROOT


def read(name):
    with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as stream:
        return stream.read()


def test_the_project_has_a_licence_and_says_so():
    licence = read("LICENSE")
    assert licence.startswith("MIT License\n") and "Permission is hereby granted" in licence
    assert "[LICENSE](LICENSE)" in read("README.md")
    assert "same licence as the project" not in read("input_imgs/README.md")
    assert "[LICENSE](../LICENSE)" in read("input_imgs/README.md")


def test_the_citation_names_the_paper_and_the_software():
    citation = yaml.safe_load(read("CITATION.cff"))
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    paper = citation["preferred-citation"]
    assert paper["title"] == "A Generic Visualization Approach for Convolutional Neural Networks"
    assert [author["family-names"] for author in paper["authors"]] == [
        "Taha", "Yang", "Shrivastava", "Davis"]
    assert paper["year"] == 2020
    readme = read("README.md")
    assert "@inproceedings{taha2020generic," in readme and "@software{l2caf," in readme
    from l2caf import __version__
    assert citation["version"] == __version__


@pytest.mark.parametrize("path", ["benchmarks/results/faithfulness_quick.json",
                                  "benchmarks/results/faithfulness_quick.md",
                                  "benchmarks/results/report_page_quick.json",
                                  "benchmarks/results/benchmark_quick.md"])
def test_the_benchmarks_smoke_runs_leave_nothing_for_git(path):
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT)
    assert ignored.returncode == 0, "%s would show as an untracked file" % path


def test_the_recorded_benchmark_results_are_tracked_not_ignored():
    for name in ("faithfulness.json", "report_page.md", "benchmark.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "benchmarks/results/" + name],
                                 cwd=REPO_ROOT)
        assert ignored.returncode == 1


def test_training_into_a_folder_that_holds_a_model_is_refused_without_overwrite(tmp_path):
    (tmp_path / "labels.txt").write_text("a\nb\n")
    (tmp_path / "demo_keras.keras").write_bytes(b"the shipped model")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "train_demo_model.py"),
         "--kind", "keras", "--output_dir", str(tmp_path), "--num_images", "2",
         "--batch_size", "1", "--epochs", "1"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train_demo_model.py: error: %s holds a trained model already (demo_keras.keras, "
        "labels.txt); give another --output_dir, or --overwrite to replace it" % tmp_path)
    assert (tmp_path / "demo_keras.keras").read_bytes() == b"the shipped model"


def test_listing_the_checkpoints_does_not_start_tensorflow(tmp_path):
    # The list is static: importing TensorFlow for it took over a minute under load.
    script = ("import sys, runpy\n"
              "sys.argv = ['download_checkpoints.py', '--list', '--dest', %r]\n"
              "try:\n    runpy.run_path(%r, run_name='__main__')\nexcept SystemExit:\n    pass\n"
              "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'no tensorflow')"
              % (str(tmp_path), os.path.join(REPO_ROOT, "scripts", "download_checkpoints.py")))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "inception_v1.ckpt" in result.stdout
    assert result.stdout.strip().endswith("no tensorflow")


def test_the_help_says_where_a_list_files_relative_paths_lead():
    from l2caf.config import OPTIONS
    assert "relative path in a list resolves against the list file's folder" in \
        " ".join(OPTIONS["images"].help.split())


def test_an_image_missing_from_a_list_file_is_named_by_its_resolved_path(tmp_path):
    from l2caf import images
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "list.txt").write_text("photo.jpg\n/abs/other.jpg\n")
    listed = images.list_images(str(tmp_path / "lists" / "list.txt"))
    assert listed == [str(tmp_path / "lists" / "photo.jpg"), "/abs/other.jpg"]
    with pytest.raises(images.ImageError, match=str(tmp_path / "lists" / "photo.jpg")):
        images.read_image(listed[0])
