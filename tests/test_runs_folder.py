"""l2caf.runs.folder on small run folders written here (no network, no TensorFlow): the
table of file names, shards, heatmap references and files, results lines, numbered .npz
chunks, deleting under locks, and RunFolder's settings check.

The builders of run folders are tests/run_builders.py's."""
import json
import os
import zlib

import numpy as np
import pytest
import yaml

from l2caf.errors import ConfigError, OutputError, RunError
from l2caf.files import FolderLock, read_json_lines
from l2caf.runs import folder as run_folder
from l2caf.runs.folder import (FILES, HeatmapFiles, LinesFile, NpyFiles, NpzChunks, RunFolder,
                               Shard, UnreadableHeatmap, delete_files, folder_path, kind_files,
                               kind_pattern, load_heatmap, parse_shard, reference_parts,
                               repair_command, shard_file, shard_files, shard_pattern)
from tests.run_builders import (MADE_WITH, LockHolder, names, results_line, run_config,
                                 score_line, write_config, write_lines)


# The table of file names.

def test_files_names_every_kind_and_its_patterns():
    assert list(FILES) == ["config", "results", "failures", "log", "heatmaps", "scores",
                           "curves", "score_failures", "sanity", "sanity_maps",
                           "sanity_failures", "localization"]
    assert {kind: FILES[kind].patterns for kind in FILES} == {
        "config": ("config*.yaml",), "results": ("results*.jsonl",),
        "failures": ("failures.jsonl", "failures_shard*of*.jsonl"), "log": ("run*.log",),
        "heatmaps": ("heatmaps*.npz",),
        "scores": ("faithfulness.jsonl", "faithfulness_shard*of*.jsonl"),
        "curves": ("faithfulness_curves*.npz",),
        "score_failures": ("failures_faithfulness*.jsonl",),
        "sanity": ("sanity.jsonl", "sanity_shard*of*.jsonl"),
        "sanity_maps": ("sanity_maps*.npz",),
        "sanity_failures": ("failures_sanity*.jsonl",),
        "localization": ("localization_*.csv", "localization_*.json", "localization_*.png",
                         "localization_*.pdf")}
    assert run_folder.RUN_FILES == ("results", "failures", "config", "log", "heatmaps",
                                    "localization", "scores", "curves", "score_failures",
                                    "sanity", "sanity_maps", "sanity_failures")
    assert run_folder.SCORE_FILES == ("scores", "curves", "score_failures")
    assert all(FILES[kind].what for kind in FILES)


@pytest.mark.parametrize("kind, unsharded, sharded", [
    ("config", "config.yaml", "config_shard2of4.yaml"),
    ("results", "results.jsonl", "results_shard2of4.jsonl"),
    ("failures", "failures.jsonl", "failures_shard2of4.jsonl"),
    ("log", "run.log", "run_shard2of4.log"),
    ("heatmaps", "heatmaps.npz", "heatmaps_shard2of4.npz"),
    ("scores", "faithfulness.jsonl", "faithfulness_shard2of4.jsonl"),
    ("curves", "faithfulness_curves.npz", "faithfulness_curves_shard2of4.npz"),
    ("score_failures", "failures_faithfulness.jsonl", "failures_faithfulness_shard2of4.jsonl"),
])
def test_shard_file_names_a_shards_file_of_each_kind(kind, unsharded, sharded):
    assert shard_file("run", kind) == os.path.join("run", unsharded)
    assert shard_file("run", kind, Shard(0, 1)) == os.path.join("run", unsharded)
    assert shard_file("run", kind, Shard(2, 4)) == os.path.join("run", sharded)
    assert shard_pattern(kind) == sharded.replace("2of4", "<INDEX>of<COUNT>")
    assert kind_pattern(kind) == FILES[kind].patterns[0]


def test_kind_files_finds_every_shards_files_of_a_kind_and_nothing_else(tmp_path):
    for name in ("config.yaml", "config_shard1of2.yaml", "results.jsonl",
                 "results_shard0of2.jsonl", "results_shard1of2.jsonl.tmp",
                 ".results_shard1of2.jsonl.lock", "failures_shard0of2.jsonl", "run.log",
                 "heatmaps_000000.npz", "heatmaps_shard1of2_000003.npz", "x_c0.npy",
                 "faithfulness.jsonl", "faithfulness_shard1of2.jsonl", "faithfulness_notes.jsonl",
                 "faithfulness_curves_000000.npz", "faithfulness_curves_shard1of2_000000.npz",
                 "localization_cam.csv", "localization_cam.json", "localization.txt",
                 "notes.yaml"):
        (tmp_path / name).write_text("")
    folder = str(tmp_path)

    def found(kind):
        return [os.path.basename(path) for path in kind_files(folder, kind)]
    assert found("config") == ["config.yaml", "config_shard1of2.yaml"]
    assert found("results") == ["results.jsonl", "results_shard0of2.jsonl"]
    assert found("log") == ["run.log"]
    assert found("heatmaps") == ["heatmaps_000000.npz", "heatmaps_shard1of2_000003.npz"]
    # Not faithfulness_notes.jsonl: a file of the user's that only looks like one.
    assert found("scores") == ["faithfulness.jsonl", "faithfulness_shard1of2.jsonl"]
    assert found("curves") == ["faithfulness_curves_000000.npz",
                               "faithfulness_curves_shard1of2_000000.npz"]
    assert found("localization") == ["localization_cam.csv", "localization_cam.json"]
    assert kind_files(str(tmp_path / "absent"), "results") == []


def test_a_folder_name_with_glob_characters_is_searched_as_it_is(tmp_path):
    folder = tmp_path / "run[1]"
    folder.mkdir()
    (folder / "results.jsonl").write_text("")
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "results_shard0of2.jsonl").write_text("")
    assert kind_files(str(folder), "results") == [str(folder / "results.jsonl")]


def test_the_failures_kind_is_not_the_scorings_failures(tmp_path):
    for name in ("failures.jsonl", "failures_shard0of2.jsonl", "failures_faithfulness.jsonl",
                 "failures_faithfulness_shard1of2.jsonl"):
        (tmp_path / name).write_text("")
    assert [os.path.basename(path) for path in kind_files(str(tmp_path), "failures")] == [
        "failures.jsonl", "failures_shard0of2.jsonl"]
    assert [os.path.basename(path) for path in kind_files(str(tmp_path), "score_failures")] == [
        "failures_faithfulness.jsonl", "failures_faithfulness_shard1of2.jsonl"]


def test_shard_files_lists_the_shards_by_count_then_index(tmp_path):
    for name in ("results.jsonl", "results_shard1of3.jsonl", "results_shard10of12.jsonl",
                 "results_shard0of3.jsonl", "results_shard2of12.jsonl",
                 "results_shard0of2.jsonl.tmp", "results_shardXof2.jsonl",
                 "faithfulness_shard0of2.jsonl", "config_shard1of2.yaml"):
        (tmp_path / name).write_text("")
    assert shard_files(str(tmp_path), "results") == [Shard(0, 3), Shard(1, 3), Shard(2, 12),
                                                     Shard(10, 12)]
    assert shard_files(str(tmp_path), "scores") == [Shard(0, 2)]
    assert shard_files(str(tmp_path), "config") == [Shard(1, 2)]
    assert shard_files(str(tmp_path / "absent"), "results") == []


# Shards.

@pytest.mark.parametrize("text, shard", [
    ("0/1", Shard(0, 1)), ("3/8", Shard(3, 8)), (" 2 / 4 ", Shard(2, 4)), ("07/10", Shard(7, 10)),
])
def test_parse_shard_reads_index_and_count(text, shard):
    assert parse_shard(text, {}) == shard


@pytest.mark.parametrize("text", ["4/4", "1", "-1/2", "a/b", "0/0", "1/2/3", "", "auto 1"])
def test_parse_shard_refuses_anything_else_naming_the_text(text):
    with pytest.raises(ConfigError) as caught:
        parse_shard(text, {})
    assert str(caught.value) == ("shard must be INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/4) "
                                 "or auto, got %r" % text)


def test_shard_auto_is_the_task_of_the_slurm_array_and_names_what_is_missing():
    environ = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5",
               "SLURM_ARRAY_TASK_COUNT": "3"}
    assert parse_shard(" auto ", environ) == Shard(2, 3)
    with pytest.raises(ConfigError) as caught:
        parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "7"})
    assert str(caught.value) == (
        "shard auto takes INDEX/COUNT from a Slurm job array (sbatch --array), but "
        "SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT are not set; give --shard INDEX/COUNT "
        "instead")
    with pytest.raises(ConfigError) as caught:
        parse_shard("auto", dict(environ, SLURM_ARRAY_TASK_MIN="five"))
    assert str(caught.value) == (
        "shard auto: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT must be "
        "integers, got '7', 'five', '3'")
    with pytest.raises(ConfigError, match=r"got '3/3'$"):  # the task past the array's last
        parse_shard("auto", dict(environ, SLURM_ARRAY_TASK_ID="8"))


# References and names.

@pytest.mark.parametrize("reference, parts", [
    ("heatmaps_000000.npz:x_c3", ("heatmaps_000000.npz", "x_c3")),
    ("/old/place/run/heatmaps_000001.npz:x_c3", ("heatmaps_000001.npz", "x_c3")),
    ("heatmaps_000000.npz:a:b.npz:c_c1", ("heatmaps_000000.npz", "a:b.npz:c_c1")),
    ("x_c3.npy", ("x_c3.npy", None)),
    ("/old/place/run/x_c3.npy", ("x_c3.npy", None)),
    ("x.npz:y_c2.npy", ("x.npz:y_c2.npy", None)),  # a .npy file whose name holds '.npz:'
    ("../elsewhere/x_oblivious.png", ("x_oblivious.png", None)),
    ("faithfulness_curves_shard1of2_000004.npz:x_c0", ("faithfulness_curves_shard1of2_000004.npz",
                                                       "x_c0")),
])
def test_a_reference_names_a_file_of_its_own_folder(reference, parts):
    assert reference_parts(reference) == parts
    assert folder_path("/runs/moved", reference) == os.path.join("/runs/moved", parts[0])


def test_output_names_add_a_hash_of_the_path_only_to_shared_names():
    paths = ["/d/a.jpg", "/e/a.png", "/d/b.jpg", "c"]
    assert run_folder.output_names(paths) == {
        "/d/a.jpg": "a-%08x" % zlib.crc32(b"/d/a.jpg"),
        "/e/a.png": "a-%08x" % zlib.crc32(b"/e/a.png"), "/d/b.jpg": "b", "c": "c"}
    assert run_folder.heatmap_key("a", 3) == "a_c3"
    assert run_folder.heatmap_key("a", 0) == "a_c0"
    assert run_folder.heatmap_key("a", None) == "a_oblivious"
    assert run_folder.line_key({"image": "./x/../y.jpg", "class_id": 2}) == ("y.jpg", 2)
    assert run_folder.line_key({"image": "y.jpg"}) == ("y.jpg", None)


# Heatmap files.

def test_repair_command_reruns_the_command_that_made_the_folder(tmp_path):
    single, sharded, unknown = tmp_path / "single", tmp_path / "sharded", tmp_path / "unknown"
    write_config(single)
    write_config(sharded, Shard(1, 3))
    unknown.mkdir()
    assert repair_command(str(single)) == (
        "rerun python scripts/visualize_attention.py --config %s --output_dir %s to make it "
        "again" % (single / "config.yaml", single))
    assert repair_command(str(sharded)) == (
        "rerun each shard (python scripts/visualize_attention.py --config "
        "%s --output_dir %s), then --merge %s, to make it again"
        % (sharded / "config_shard<INDEX>of<COUNT>.yaml", sharded, sharded))
    assert repair_command(str(unknown)) == (
        "rerun the visualiser command that wrote %s to make it again" % unknown)


@pytest.mark.parametrize("case, reason", [
    ("pickled npz", "not a whole .npz archive: truncated or corrupt"),
    ("infinite npz", "x_c0 holds NaN or infinite values"),
    ("boolean npy", "not a 2-D array of numbers (bool [2, 2])"),
    ("1-D npy", "not a 2-D array of numbers (float32 [4])"),
    ("archive as npy", "not a 2-D array of numbers"),
    ("missing npz", "no such file"),
])
def test_an_unusable_heatmap_names_the_file_and_the_rerun_of_each_shard(tmp_path, case, reason):
    write_config(tmp_path, Shard(0, 2))
    path = tmp_path / ("heatmaps_shard0of2_000000.npz" if "npz" in case else "x_c0.npy")
    reference = path.name + (":x_c0" if "npz" in case else "")
    if case == "pickled npz":
        np.savez(str(path), x_c0=np.array([{"code": "runs on load"}], dtype=object))
    elif case == "infinite npz":
        np.savez(str(path), x_c0=np.array([[0.0, np.inf], [1.0, 2.0]], np.float32))
    elif case == "boolean npy":
        np.save(str(path), np.ones((2, 2), bool))
    elif case == "1-D npy":
        np.save(str(path), np.ones(4, np.float32))
    elif case == "archive as npy":
        with open(str(path), "wb") as stream:
            np.savez(stream, x_c0=np.ones((2, 2), np.float32))
    with pytest.raises(UnreadableHeatmap) as caught:
        load_heatmap(reference, str(tmp_path))
    assert isinstance(caught.value, RunError)
    assert (caught.value.path, caught.value.reason) == (str(path), reason)
    assert str(caught.value) == (
        "heatmap file %s cannot be used (%s); rerun each shard (python "
        "scripts/visualize_attention.py --config %s --output_dir %s), then --merge %s, to make "
        "it again" % (path, reason, tmp_path / "config_shard<INDEX>of<COUNT>.yaml", tmp_path,
                      tmp_path))


def test_heatmap_files_read_numbers_of_any_kind_and_keep_a_failed_archives_error(tmp_path):
    np.save(str(tmp_path / "x_c0.npy"), np.arange(4, dtype=np.uint8).reshape(2, 2))
    np.savez(str(tmp_path / "good.npz"), x_c1=np.eye(2, dtype=np.float16), x_c2=np.eye(2))
    np.savez(str(tmp_path / "bad.npz"), x_c1=np.eye(2), x_c2=np.eye(2))
    data = (tmp_path / "bad.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(data[:len(data) // 2])
    with HeatmapFiles(str(tmp_path)) as files:
        np.testing.assert_array_equal(files.read("x_c0.npy"), [[0, 1], [2, 3]])
        assert files.read("good.npz:x_c1").dtype == np.float16
        for key in ("x_c1", "x_c2"):  # every key of the broken file, the same error
            with pytest.raises(UnreadableHeatmap, match="bad.npz cannot be used "
                                                        r"\(not a whole .npz archive"):
                files.read("bad.npz:" + key)
        with pytest.raises(UnreadableHeatmap, match=r"good.npz cannot be used \(it holds no "
                                                    r"array x_c3\); rerun the visualiser"):
            files.read("good.npz:x_c3")
    records = [{"heatmap": "good.npz:x_c2"}, {"heatmap": "bad.npz:x_c1"},
               {"heatmap": "x_c0.npy"}, {"heatmap": "gone.npy"}]
    problems = run_folder.unreadable_heatmaps(records, str(tmp_path))
    assert sorted(problems) == [1, 3]
    assert problems[3].reason == "no such file"
    assert problems[3].path == str(tmp_path / "gone.npy")


def test_heatmap_files_keep_the_last_few_archives_open(tmp_path):
    count = HeatmapFiles.OPEN_ARCHIVES + 2
    chunks = NpzChunks(str(tmp_path), Shard(0, 1))
    references = [chunks.write({"x_c%d" % index: np.full((2, 2), index, np.float32)})
                  ["x_c%d" % index] for index in range(count)]
    with HeatmapFiles(str(tmp_path)) as files:
        for index, reference in enumerate(references + references[:1]):
            assert files.read(reference)[0, 0] == index % count
        assert len(files._archives) == HeatmapFiles.OPEN_ARCHIVES
    assert files._archives == {}


def test_npz_chunks_number_on_from_the_highest_file_of_their_own_kind_and_shard(tmp_path):
    for name in ("heatmaps_000004.npz", "heatmaps_shard1of2_000009.npz",
                 "faithfulness_curves_000002.npz", "heatmaps_000011.npz.tmp",
                 "heatmaps_old.npz"):
        (tmp_path / name).write_bytes(b"")
    assert NpzChunks(str(tmp_path), Shard(0, 1)).next_number == 5
    assert NpzChunks(str(tmp_path), Shard(1, 2)).next_number == 10
    assert NpzChunks(str(tmp_path), Shard(0, 2)).next_number == 0
    assert NpzChunks(str(tmp_path), Shard(0, 1), "curves").next_number == 3
    chunks = NpzChunks(str(tmp_path), Shard(0, 2), "curves")
    first = chunks.write({"a_c0": np.zeros((2, 3), np.float32), "b_c1": np.ones((2, 3))})
    second = chunks.write({"a_c0": np.full((2, 3), 2.0)})
    assert first == {"a_c0": "faithfulness_curves_shard0of2_000000.npz:a_c0",
                     "b_c1": "faithfulness_curves_shard0of2_000000.npz:b_c1"}
    assert second == {"a_c0": "faithfulness_curves_shard0of2_000001.npz:a_c0"}
    assert load_heatmap(first["b_c1"], str(tmp_path)).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert load_heatmap(second["a_c0"], str(tmp_path))[0, 0] == 2.0
    assert NpyFiles(str(tmp_path)).write({"a_oblivious": np.eye(2)}) == {
        "a_oblivious": "a_oblivious.npy"}
    np.testing.assert_array_equal(np.load(str(tmp_path / "a_oblivious.npy")), np.eye(2))


# Results lines.

def test_lines_file_keeps_the_lines_there_and_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "results.jsonl"
    kept = [results_line("./a.jpg", 1, "a_c1.npy"),
            results_line("b.jpg", None, "b_oblivious.npy")]
    write_lines(path, kept, torn='{"image": "c.jpg", "cla')
    lines = LinesFile(str(path))
    assert lines.records == kept
    assert lines.done == {("a.jpg", 1), ("b.jpg", None)}
    assert lines.is_done("a.jpg", 1) and lines.is_done("./b.jpg")
    assert not lines.is_done("a.jpg") and not lines.is_done("c.jpg")
    written = [results_line("c.jpg", 0, "c_c0.npy"), results_line("c.jpg", 2, "c_c2.npy")]
    lines.write(written)
    lines.close()
    assert lines.is_done("c.jpg", 2)
    assert path.read_text() == "".join(json.dumps(line) + "\n" for line in kept + written)


def test_lines_file_keeps_none_or_the_lines_a_function_chooses(tmp_path):
    path = tmp_path / "faithfulness.jsonl"
    lines = [score_line("a.jpg", 0, "a_c0.npy", steps=8),
             score_line("b.jpg", 0, "b_c0.npy", steps=4)]
    write_lines(path, lines)
    chosen = LinesFile(str(path), keep=lambda record: record["steps"] == 8)
    chosen.close()
    assert chosen.done == {("a.jpg", 0)}
    assert read_json_lines(str(path)) == lines[:1]
    none = LinesFile(str(path), keep=False)
    none.close()
    assert none.done == set() and path.read_text() == ""
    fresh = LinesFile(str(tmp_path / "new.jsonl"))
    fresh.close()
    assert (tmp_path / "new.jsonl").read_text() == ""


def test_lines_file_in_a_missing_folder_is_an_output_error_naming_the_file(tmp_path):
    path = tmp_path / "gone" / "results.jsonl"
    with pytest.raises(OutputError) as caught:
        LinesFile(str(path))
    assert str(caught.value) == "cannot write %s: No such file or directory" % path


# Deleting under locks.

def scattered_files(folder):
    """Every shard's run and score files, named files, and files that are not the run's."""
    for name in ("config.yaml", "config_shard0of2.yaml", "results_shard0of2.jsonl",
                 "results_shard1of2.jsonl", "failures_shard1of2.jsonl", "run_shard0of2.log",
                 "heatmaps_shard0of2_000000.npz", "faithfulness_shard1of2.jsonl",
                 "faithfulness_curves_shard1of2_000000.npz", "localization_cam.csv",
                 "failures_faithfulness_shard1of2.jsonl", "x_c0.npy", "x_c0.png", "photo.jpg",
                 "notes.txt", "faithfulness_notes.jsonl"):
        (folder / name).write_text(name)


def test_delete_files_deletes_the_kinds_and_the_named_files_only(tmp_path):
    scattered_files(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "results.jsonl").write_text("not this folder's")
    delete_files(str(tmp_path), ("scores", "curves", "localization"), "scores",
                 str(tmp_path / "faithfulness_shard0of2.jsonl"),
                 named=lambda: [str(tmp_path / "x_c0.npy"), str(tmp_path / "absent.npy"),
                                str(tmp_path / "elsewhere")])
    assert names(tmp_path) == [
        "config.yaml", "config_shard0of2.yaml", "elsewhere",
        "failures_faithfulness_shard1of2.jsonl", "failures_shard1of2.jsonl",
        "faithfulness_notes.jsonl", "heatmaps_shard0of2_000000.npz", "notes.txt", "photo.jpg",
        "results_shard0of2.jsonl", "results_shard1of2.jsonl", "run_shard0of2.log", "x_c0.png"]
    assert (tmp_path / "elsewhere" / "results.jsonl").exists()


def test_delete_files_refuses_while_another_process_writes_a_shard(tmp_path):
    scattered_files(tmp_path)
    before = names(tmp_path)
    with LockHolder(tmp_path / "faithfulness_shard1of2.jsonl") as holder:
        with pytest.raises(RunError) as caught:
            delete_files(str(tmp_path), run_folder.SCORE_FILES, "scores",
                         str(tmp_path / "faithfulness_shard0of2.jsonl"))
        message = str(caught.value)
        assert message.startswith("%s is being written by another process (pid %d on host "
                                  % (tmp_path / "faithfulness_shard1of2.jsonl", holder.pid))
        assert message.endswith("; wait for it to end or stop it: two writers would overwrite "
                                "each other's files")
        assert names(tmp_path) == before
        # The deleting shard's own file is not locked again: its writer is the caller.
        with FolderLock(str(tmp_path / "results_shard0of2.jsonl")):
            delete_files(str(tmp_path), ("log",), "results",
                         str(tmp_path / "results_shard0of2.jsonl"))
    assert "run_shard0of2.log" not in names(tmp_path)
    with pytest.raises(RunError, match="being written by this process already"):
        with FolderLock(str(tmp_path / "results_shard1of2.jsonl")):
            delete_files(str(tmp_path), ("log",), "results",
                         str(tmp_path / "results_shard0of2.jsonl"))


# RunFolder.

def test_run_folder_paths_of_a_shard_and_its_config_round_trip(tmp_path):
    folder = RunFolder(str(tmp_path), Shard(1, 2))
    assert (folder.config_path, folder.results_path, folder.failures_path, folder.log_path) == (
        str(tmp_path / "config_shard1of2.yaml"), str(tmp_path / "results_shard1of2.jsonl"),
        str(tmp_path / "failures_shard1of2.jsonl"), str(tmp_path / "run_shard1of2.log"))
    config = write_config(tmp_path, Shard(1, 2), classes=[3, 1], layer="conv1")
    saved, made_with = run_folder.read_config_file(folder.config_path)
    assert saved == config and made_with == MADE_WITH
    with open(folder.config_path) as stream:
        assert list(yaml.safe_load(stream)) == list(config) + ["made_with"]


def test_check_names_every_key_that_differs_and_ignores_the_free_keys(tmp_path):
    config = write_config(tmp_path, max_iters=3, classes=[1, 2])
    folder = RunFolder(str(tmp_path))
    free = {key: "other" for key in ("output_dir", "checkpoint", "labels")}
    free.update(batch_size=7, workers=9, limit=2, shard="1/2", gpu=-1, progress=False,
                cache_activation=False, trust_model=True)
    folder.check(dict(config, **free), MADE_WITH)  # nothing that changes the results
    # (made_with's layer, the one the run resolved, stands for the config's layer.)
    other = dict(config, max_iters=4, seed=2, classes=[1], layer="conv1", network=None)
    with pytest.raises(RunError) as caught:
        folder.check(other, dict(MADE_WITH, checkpoint_sha256="ef" * 32))
    assert str(caught.value) == (
        "%s holds results made with other settings: network (densenet161 there, none now); "
        "max_iters (3 there, 4 now); seed (0 there, 2 now); classes ([1, 2] there, [1] now); "
        "checkpoint_sha256 "
        "(%s there, %s now); use another output_dir, or --overwrite to delete those results "
        "first" % (tmp_path, "ab" * 32, "ef" * 32))
    RunFolder(str(tmp_path / "empty")).check(other, {})  # no config there: nothing to check


def test_check_compares_every_shards_config(tmp_path):
    write_config(tmp_path, Shard(0, 2), top_k=1)
    config = write_config(tmp_path, Shard(1, 2), top_k=5)
    with pytest.raises(RunError, match=r"top_k \(1 there, 5 now\)"):
        RunFolder(str(tmp_path), Shard(1, 2)).check(config, MADE_WITH)


@pytest.mark.parametrize("text, problem", [
    ("max_iters: [1\n", "is not valid YAML: "),
    ("- a list\n", "must hold key: value pairs"),
    ("max_iters: 3\nspeed: 9\n", ": unknown key(s) speed; valid keys: network, checkpoint"),
    ("max_iters: many\n", ": max_iters must be an integer, got 'many'"),
])
def test_check_refuses_an_unreadable_config_in_one_message(tmp_path, text, problem):
    (tmp_path / "config_shard0of2.yaml").write_text(text)
    with pytest.raises(RunError) as caught:
        RunFolder(str(tmp_path)).check(run_config(), MADE_WITH)
    message = str(caught.value)
    assert str(tmp_path / "config_shard0of2.yaml") in message
    assert problem in message and "\n" not in message
    assert message.endswith(": use another output_dir, or --overwrite to clear the folder's "
                            "results")


def test_make_refuses_a_file_and_prepare_overwrite_deletes_the_runs_files_only(tmp_path):
    with pytest.raises(OutputError) as caught:
        (tmp_path / "file").write_text("")
        RunFolder(str(tmp_path / "file")).make()
    assert str(caught.value) == ("output_dir %s is a file, not a folder; choose another "
                                 "output_dir" % (tmp_path / "file"))
    run = tmp_path / "run"
    RunFolder(str(run)).make()
    scattered_files(run)
    victim = tmp_path / "victim.png"
    victim.write_text("not the run's")
    write_lines(run / "results_shard1of2.jsonl", [
        results_line("a.jpg", 0, "x_c0.npy", overlay="/old/place/x_c0.png"),
        results_line("b.jpg", 0, "heatmaps_shard0of2_000000.npz:b_c0", overlay="../victim.png",
                     gif="b_c0.gif")])
    folder = RunFolder(str(run), Shard(0, 2))
    with folder.lock():
        folder.prepare(overwrite=True)
    # (The scoring's failures go too: they are of the old heatmaps.)
    assert names(run) == ["faithfulness_notes.jsonl", "notes.txt", "photo.jpg"]
    assert victim.read_text() == "not the run's"
    folder.prepare()  # nothing to delete; the folder can be written
    assert names(run) == ["faithfulness_notes.jsonl", "notes.txt", "photo.jpg"]
