"""Both visualisers' error contract and run folders: what made a folder, resume, clear errors,
unusable images, colliding names, full disks, Ctrl-C, a quiet terminal."""
import errno
import os
import signal
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from l2caf import files
from l2caf.runs import folder as run_folder
from l2caf.cli import visualize, visualize_fast
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import folder_path, load_heatmap
from tests.helpers import (DEMO_CHECKPOINT, REPO_ROOT, default_sigint, demo_run_inputs,
                           random_demo_checkpoint)

MAINS = {"slow": visualize.main, "fast": visualize_fast.main}


@pytest.fixture(scope="module")
def demo(random_demo, tmp_path_factory):
    return demo_run_inputs(tmp_path_factory.mktemp("cli"), {
        "a.jpg": (30, 40, 3), "a.png": (40, 30, 3), "b:c.png": (20, 20, 3)}, weights=random_demo)


def arguments(demo, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", demo["checkpoint"],
            "--labels", demo["labels"], "--images", demo["images"],
            "--output_dir", str(output_dir), "--max_iters", "3", "--check_every", "2",
            "--progress", "false"] + list(extra)


def pairs(path):
    return sorted((r["image"], r["class_id"]) for r in read_results(str(path)))


@pytest.mark.parametrize("script", ["slow", "fast"])
def test_same_command_resumes_other_settings_are_refused_before_any_work(
        script, demo, tmp_path, capsys):
    main = MAINS[script]
    assert main(arguments(demo, tmp_path)) == 0
    before = sorted(os.listdir(tmp_path))
    results = (tmp_path / "results.jsonl").read_text()
    assert main(arguments(demo, tmp_path)) == 0
    assert "0 images done (0 heatmaps" in capsys.readouterr().out
    # Settings that cannot change the results may differ.
    assert main(arguments(demo, tmp_path, "--batch_size", "2", "--workers", "1")) == 0
    capsys.readouterr()

    assert main(arguments(demo, tmp_path, "--max_iters", "4", "--seed", "2")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("holds results made with other settings: max_iters (3 there, 4 now); seed (0 "
            "there, 2 now); use another output_dir, or --overwrite") in err
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "results.jsonl").read_text() == results
    assert "max_iters: 3" in (tmp_path / "config.yaml").read_text()

    assert main(arguments(demo, tmp_path, "--max_iters", "4", "--overwrite")) == 0
    records = read_results(str(tmp_path / "results.jsonl"))
    assert len(records) == 3 and all(r["iterations"] == 4 for r in records)
    assert "max_iters: 4" in (tmp_path / "config.yaml").read_text()


def test_another_checkpoint_with_the_same_path_is_refused(demo, tmp_path, capsys):
    folder = tmp_path / "weights"
    folder.mkdir()
    checkpoint, _ = random_demo_checkpoint(folder, num_classes=3)
    common = ["--checkpoint", checkpoint, "--max_iters", "2"]
    assert visualize_fast.main(arguments(demo, tmp_path / "out", *common)) == 0
    random_demo_checkpoint(folder, num_classes=3, seed=1)  # new weights, same file
    assert visualize_fast.main(arguments(demo, tmp_path / "out", *common)) == 2
    assert "checkpoint_sha256 (" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["slow", "fast"])
@pytest.mark.parametrize("extra, message", [
    (["--config", "/nowhere/c.yaml"], "config file /nowhere/c.yaml does not exist"),
    (["--max_iters", "abc"], "--max_iters must be an integer, got 'abc'"),
    (["--filter_type", "nonsense"], "--filter_type must be one of l2norm, softmax, gauss"),
    (["--save_gif", "perhaps"], "--save_gif must be true or false"),
    (["--classes", "1;2"], "--classes must be comma-separated integers"),
    (["--classes", "7"], "classes 7 are not class ids 0..2 of this network"),
    (["--layer", "Mixed_4f"], "network demo_densenet has no layer Mixed_4f; layers where a "
                              "filter can go: conv1, pool1"),
    (["--layer", "global_pool"], "layer global_pool has a 1x1 map"),
    (["--filter_type", "gauss", "--layer", "pool1"], "gauss needs a square feature map of odd"),
    (["--network", "vgg16"], "unknown network 'vgg16'"),
    (["--checkpoint", "/nowhere/model.ckpt"], "no checkpoint at /nowhere/model.ckpt"),
    (["--network", "inception_v1", "--labels", "", "--checkpoint", "/nowhere/inception_v1.ckpt"],
     "get it with (from the repository root) python scripts/download_checkpoints.py "
     "inception_v1 --dest /nowhere, which puts it at /nowhere/inception_v1.ckpt"),
    (["--checkpoint", DEMO_CHECKPOINT], "network demo_densenet has 6 classes but the label "
                                        "list"),
    (["--images", "/nowhere"], "images: /nowhere: no such image, folder or list file"),
    (["--shard", "2/2"], "shard must be INDEX/COUNT with 0 <= INDEX < COUNT"),
    (["--learning_rate", "nan"], "learning_rate must be a finite number, positive, got nan"),
    (["--end_learning_rate", "inf"], "end_learning_rate must be a finite number, 0 or more, "
                                     "got inf"),
    (["--method", "cam"], "CAM needs a head that is a global mean followed by a linear layer"),
])
def test_a_configuration_error_is_one_line_exit_2_and_writes_nothing(
        script, extra, message, demo, tmp_path, capsys):
    output_dir = tmp_path / "out"
    assert MAINS[script](arguments(demo, output_dir, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not output_dir.exists()


def test_a_usage_error_is_one_line_exit_2(demo, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        visualize.main(arguments(demo, tmp_path / "out", "--bogus", "1"))
    assert caught.value.code == 2
    assert capsys.readouterr().err == "error: unrecognized arguments: --bogus 1 (see --help)\n"
    assert not (tmp_path / "out").exists()


def large_png_header(path, width, height):
    """A PNG whose header says width x height (its pixel data is a few bytes)."""
    def chunk(kind, payload):
        return (len(payload).to_bytes(4, "big") + kind + payload
                + zlib.crc32(kind + payload).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("script", ["slow", "fast"])
def test_unusable_images_are_failures_the_others_are_done_and_a_rerun_goes_on(
        script, demo, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "good.png"), np.full((30, 30, 3), 90, np.uint8))
    large_png_header(images / "huge.png", 40000, 30000)
    (images / "broken.jpg").write_bytes(open(os.path.join(REPO_ROOT, "input_imgs",
                                                          "chelsea.jpg"), "rb").read()[:3000])
    arguments_ = arguments(demo, tmp_path / "out", "--images", str(images), "--batch_size", "3")
    for _ in range(2):  # the rerun tries the failed images again and does not crash on them
        assert MAINS[script](arguments_) == 1
        captured = capsys.readouterr()
        # Each once, as it happens; the summary counts them.
        assert captured.err.count("huge.png: the image has 1200 megapixels, over the limit of "
                                  "150 megapixels") == 1
        assert captured.err.count("broken.jpg: not a readable image") == 1
        assert "2 image(s) or class(es) could not be explained" in captured.err
        failures = read_results(str(tmp_path / "out" / "failures.jsonl"))
        assert sorted(os.path.basename(f["image"]) for f in failures) == ["broken.jpg",
                                                                         "huge.png"]
        assert [os.path.basename(r["image"]) for r in read_results(
            str(tmp_path / "out" / "results.jsonl"))] == ["good.png"]


@pytest.mark.parametrize("script, heatmap_format", [("slow", "npy"), ("fast", "npz"),
                                                    ("fast", "npy")])
def test_images_sharing_a_name_keep_their_own_heatmaps(script, heatmap_format, demo,
                                                       tmp_path):
    assert MAINS[script](arguments(demo, tmp_path, "--heatmap_format", heatmap_format,
                                   "--save_overlays", "true")) == 0
    records = read_results(str(tmp_path / "results.jsonl"))
    assert sorted(os.path.basename(r["image"]) for r in records) == ["a.jpg", "a.png", "b:c.png"]
    names = {os.path.basename(r["image"]): r["heatmap"] for r in records}
    assert len(set(names.values())) == 3 and len({r["overlay"] for r in records}) == 3
    assert "b:c_c" in names["b:c.png"]  # a unique name is kept as it is
    sizes = {os.path.basename(r["image"]): r["image_size"] for r in records}
    assert sizes == {"a.jpg": [30, 40], "a.png": [40, 30], "b:c.png": [20, 20]}
    for record in records:
        assert load_heatmap(record["heatmap"], str(tmp_path)).shape == (21, 21)
        overlay = cv2.imread(folder_path(str(tmp_path), record["overlay"]))
        assert list(overlay.shape[:2]) == record["image_size"]


def test_output_names_are_unique_and_stable():
    paths = ["x/a.jpg", "x/a.png", "y/a.jpg", "x/b:c.png"]
    names = run_folder.output_names(paths)
    assert names["x/b:c.png"] == "b:c" and len(set(names.values())) == 4
    assert all(names[path].startswith("a-") for path in paths[:3])
    assert run_folder.output_names(list(reversed(paths))) == names


def test_an_output_dir_that_is_a_file_or_cannot_be_written_is_one_line_exit_3(
        demo, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    assert visualize.main(arguments(demo, tmp_path / "file")) == 3
    err = capsys.readouterr().err
    assert err == "error: output_dir %s is a file, not a folder; choose another output_dir\n" \
        % (tmp_path / "file")
    assert visualize.main(arguments(demo, tmp_path / "file" / "out")) == 3
    assert "error: cannot write to output_dir %s: Not a directory" % (tmp_path / "file" / "out") \
        in capsys.readouterr().err

    # A full disk after the first image: its results stay, the run stops with the path.
    original = files.write_atomically
    heatmaps_written = []

    def fill_up(path, write):
        if path.endswith(".npy"):
            if heatmaps_written:
                def write_half(stream):
                    stream.write(b"\x93NUMPY")
                    raise OSError(errno.ENOSPC, "No space left on device")
                return original(path, write_half)
            heatmaps_written.append(path)
        return original(path, write)

    monkeypatch.setattr(run_folder, "write_atomically", fill_up)
    assert visualize.main(arguments(demo, tmp_path / "full", "--save_overlays", "false")) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert len(read_results(str(tmp_path / "full" / "results.jsonl"))) == 1
    assert not [name for name in os.listdir(tmp_path / "full") if name.endswith(".tmp")]


def test_an_image_listed_twice_in_two_spellings_is_explained_once(demo, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("./a.jpg\na.jpg\nsub/../a.jpg\n")
    os.symlink(os.path.join(demo["images"], "a.jpg"), str(tmp_path / "a.jpg"))
    (tmp_path / "sub").mkdir()
    assert visualize.main(arguments(demo, tmp_path / "out", "--images", str(listing))) == 0
    [record] = read_results(str(tmp_path / "out" / "results.jsonl"))
    assert record["image"] == str(tmp_path / "a.jpg")


def test_an_exif_rotated_photo_is_explained_upright(demo, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(pixels).save(str(images / "phone.jpg"), exif=exif, quality=100)
    assert visualize.main(arguments(demo, tmp_path / "out", "--images", str(images))) == 0
    [record] = read_results(str(tmp_path / "out" / "results.jsonl"))
    assert record["image_size"] == [40, 20]
    overlay = cv2.imread(folder_path(str(tmp_path / "out"), record["overlay"]))
    assert overlay.shape[:2] == (40, 20)


def test_a_gif_even_when_max_iters_is_below_check_every(demo, tmp_path):
    assert visualize.main(arguments(demo, tmp_path, "--max_iters", "3", "--check_every", "50",
                                    "--save_gif", "true")) == 0
    for record in read_results(str(tmp_path / "results.jsonl")):
        gif = Image.open(folder_path(str(tmp_path), record["gif"]))
        assert gif.n_frames == 2  # iteration 0's check, then the final heatmap


def test_list_layers_shows_sizes_and_marks_the_default(capsys):
    assert visualize.main(["--network", "demo_densenet", "--list_layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["conv1", "84x84"]
    [default] = [line for line in lines if "default" in line]
    assert default.split()[:2] == ["dense_block2/conv_block2", "21x21"]
    assert not [line for line in lines if "global_pool" in line]


def script(name, *argv, **kwargs):
    return subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "scripts", name)]
                            + list(argv), cwd=kwargs.get("cwd", REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


@pytest.mark.slow
def test_a_run_in_a_terminal_shows_no_tensorflow_log_lines(tmp_path):
    process = script("visualize_attention.py", "--config", "configs/demo.yaml",
                     "--output_dir", str(tmp_path), "--max_iters", "2", "--save_gif", "false",
                     "--images", "input_imgs/shapes_1.jpg")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and all(line.startswith("images:") for line in lines), lines
    assert "2 heatmaps" in out


@pytest.mark.slow
@pytest.mark.parametrize("after_seconds", [0.5, None])
def test_ctrl_c_at_any_moment_is_exit_130_one_line_and_the_same_command_goes_on(
        after_seconds, tmp_path):
    argv = ["--config", "configs/demo.yaml", "--output_dir", str(tmp_path), "--max_iters", "30",
            "--save_gif", "false", "--progress", "false"]
    process = script("visualize_attention.py", *argv)
    if after_seconds is None:  # once the first heatmaps are written
        while not (tmp_path / "results.jsonl").exists() or \
                not (tmp_path / "results.jsonl").read_text():
            time.sleep(0.05)
    else:  # while Python imports TensorFlow
        time.sleep(after_seconds)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err == ("interrupted: the finished results are kept; run the same command again "
                   "to continue\n")
    rerun = script("visualize_attention.py", *argv)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    records = read_results(str(tmp_path / "results.jsonl"))
    assert len(records) == len({(r["image"], r["class_id"]) for r in records}) == 12
    for record in records:
        assert load_heatmap(record["heatmap"], str(tmp_path)).shape == (21, 21)
