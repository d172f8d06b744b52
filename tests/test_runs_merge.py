"""l2caf.runs.merge on sharded folders written here: the merged results and failures, what
the report says is failed, missing or incomplete and which shards to rerun; the merge of
faithfulness scores; refusals that write nothing."""
import os

import pytest

from l2caf.annotations import Annotation, BoxObject, write_voc_xml
from l2caf.errors import RunError
from l2caf.files import read_json_lines
from l2caf.runs.folder import Shard
from l2caf.runs.merge import merge_results, merge_scores
from tests.run_builders import names, results_line, score_line, write_config, write_lines

STEMS = ("a", "b", "c", "d", "e", "f")


@pytest.fixture
def sweep(tmp_path):
    """A sweep's inputs (6 images, 3 classes) and its empty output folder."""
    images, output = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    output.mkdir()
    for stem in STEMS:  # (the merge lists the images; it never reads them)
        (images / (stem + ".jpg")).write_bytes(b"")
    (tmp_path / "labels.txt").write_text("cat\ndog\nfox\n")
    return {"images": str(images), "labels": str(tmp_path / "labels.txt"), "output": output,
            "annotations": tmp_path / "annotations"}


def image(sweep, stem):
    return os.path.join(sweep["images"], stem + ".jpg")


def line(sweep, stem, class_id, ranked=(0, 1, 2)):
    return results_line(image(sweep, stem), class_id,
                        "heatmaps_000000.npz:%s_c%s" % (stem, class_id), predictions=ranked)


def shard_configs(sweep, count=2, **keys):
    for index in range(count):
        write_config(sweep["output"], Shard(index, count), images=sweep["images"],
                     labels=sweep["labels"], **keys)


def failure(sweep, stem, class_id=False):
    record = {"image": image(sweep, stem), "reason": "%s: cannot be used" % stem}
    if class_id is not False:
        record["class_id"] = class_id
    return record


def test_merge_results_joins_the_shards_and_reports_the_work_left(sweep):
    out = sweep["output"]
    shard_configs(sweep, top_k=2)
    # Shard 0 takes a, c, e; shard 1 b, d, f.
    shard0 = [line(sweep, "c", 0), line(sweep, "c", 1), line(sweep, "a", 1),
              line(sweep, "a", 0), line(sweep, "a", 1)]
    shard1 = [line(sweep, "b", 0), line(sweep, "f", 0)]
    write_lines(out / "results_shard0of2.jsonl", shard0, torn='{"image": "e.jp')
    write_lines(out / "results_shard1of2.jsonl", shard1)
    write_lines(out / "failures_shard0of2.jsonl", [
        failure(sweep, "c"),  # done since: dropped
        failure(sweep, "e")])
    write_lines(out / "failures_shard1of2.jsonl", [
        failure(sweep, "f", 0),  # that class done since: dropped
        failure(sweep, "f", 1)])

    report = merge_results(str(out))
    assert report._asdict() == {
        "path": str(out / "results.jsonl"), "kind": "results", "lines": 6, "duplicates": 1,
        "total": 6, "failed": [image(sweep, "e"), image(sweep, "f")],
        "missing": [image(sweep, "d")], "incomplete": [image(sweep, "b")],
        "shards_to_rerun": [0, 1]}
    assert read_json_lines(str(out / "results.jsonl")) == [
        shard0[2], shard0[3], shard1[0], shard0[0], shard0[1], shard1[1]]
    assert read_json_lines(str(out / "failures.jsonl")) == [failure(sweep, "e"),
                                                             failure(sweep, "f", 1)]
    # The shards' own files stay as they were.
    assert len(read_json_lines(str(out / "results_shard0of2.jsonl"))) == 5

    # Shard 0 rerun: e done; merging again makes the merged files anew.
    write_lines(out / "results_shard0of2.jsonl", shard0 + [line(sweep, "e", 0),
                                                           line(sweep, "e", 1)])
    report = merge_results(str(out))
    assert (report.lines, report.duplicates, report.failed, report.shards_to_rerun) == (
        8, 1, [image(sweep, "f")], [1])
    assert [record["image"] for record in read_json_lines(str(out / "results.jsonl"))] == [
        image(sweep, stem) for stem in ("a", "a", "b", "c", "c", "e", "e", "f")]
    assert read_json_lines(str(out / "failures.jsonl")) == [failure(sweep, "f", 1)]


def test_a_finished_sweep_merges_with_nothing_to_rerun(sweep):
    out = sweep["output"]
    shard_configs(sweep, count=3)
    for index in range(3):
        write_lines(out / ("results_shard%dof3.jsonl" % index),
                    [line(sweep, stem, 0) for stem in STEMS[index::3]])
    report = merge_results(str(out))
    assert (report.lines, report.duplicates, report.total, report.failed, report.missing,
            report.incomplete, report.shards_to_rerun) == (6, 0, 6, [], [], [], [])
    assert (out / "failures.jsonl").read_text() == ""


def complete_and_not(sweep, keys, lines):
    """(the images the merge finds complete, incomplete, missing) of a sweep of 2 shards
    (configured with `keys`) that wrote `lines`."""
    out = sweep["output"]
    shard_configs(sweep, **keys)
    for index in range(2):
        write_lines(out / ("results_shard%dof2.jsonl" % index), [
            record for record in lines
            if STEMS.index(os.path.basename(record["image"])[0]) % 2 == index])
    report = merge_results(str(out))
    incomplete = [os.path.basename(path)[0] for path in report.incomplete]
    missing = [os.path.basename(path)[0] for path in report.missing]
    complete = [stem for stem in STEMS[:report.total] if stem not in incomplete + missing]
    return complete, incomplete, missing


def test_the_classes_an_image_needs_are_the_runs(sweep):
    # Explicit classes, whatever the network ranks first.
    assert complete_and_not(sweep, {"classes": [1, 2]}, [
        line(sweep, "a", 1), line(sweep, "a", 2), line(sweep, "b", 1),
        line(sweep, "c", 0)]) == (["a"], ["b", "c"], ["d", "e", "f"])


def test_a_class_oblivious_run_needs_one_heatmap_per_image(sweep):
    assert complete_and_not(sweep, {"caf_variant": "cls_oblivious", "limit": 3}, [
        line(sweep, "a", None), line(sweep, "c", None)]) == (["a", "c"], [], ["b"])


def test_top_k_beyond_the_recorded_predictions_cannot_be_complete(sweep):
    # top_k 3 of 3 classes, but b's line records only 2 predictions: the merge cannot tell.
    assert complete_and_not(sweep, {"top_k": 3, "limit": 2}, [
        line(sweep, "a", c) for c in (2, 0, 1)] + [
        line(sweep, "b", c, ranked=(1, 0)) for c in (1, 0)]) == (["a"], ["b"], [])


def test_explain_gt_needs_the_heatmaps_of_the_annotated_classes(sweep):
    folder = sweep["annotations"]
    folder.mkdir()
    for stem, names_ in (("a", ["fox"]), ("b", ["cat", "dog"]), ("c", ["cat"])):
        write_voc_xml(str(folder / (stem + ".xml")), Annotation(
            stem + ".jpg", 50, 40, [BoxObject(name, (1, 2, 30, 20)) for name in names_]))
    assert complete_and_not(sweep, {"explain_gt": True, "annotations": str(folder),
                                    "limit": 4}, [
        line(sweep, "a", 0), line(sweep, "a", 2),  # top-1 and fox
        line(sweep, "b", 0),  # dog lacks
        line(sweep, "c", 0),  # cat is the top-1 class too
        line(sweep, "d", 0)]) == (["a", "c", "d"], ["b"], [])


def test_merge_results_refuses_a_folder_without_shards_or_of_two_shardings(sweep):
    out = sweep["output"]
    write_config(out)
    write_lines(out / "results.jsonl", [line(sweep, "a", 0)])
    with pytest.raises(RunError) as caught:
        merge_results(str(out))
    assert str(caught.value) == ("%s holds no shard results (results_shard<INDEX>of<COUNT>"
                                 ".jsonl); run the sweep with --shard INDEX/COUNT first" % out)
    write_lines(out / "results_shard1of3.jsonl", [])
    write_lines(out / "results_shard0of2.jsonl", [])
    before = names(out)
    with pytest.raises(RunError) as caught:
        merge_results(str(out))
    assert str(caught.value) == ("%s holds shards of different counts (0/2, 1/3); merge one "
                                 "sharding at a time" % out)
    assert names(out) == before


def test_merge_results_writes_nothing_without_the_first_shards_config(sweep):
    out = sweep["output"]
    write_config(out, Shard(1, 2), images=sweep["images"], labels=sweep["labels"])
    write_lines(out / "results_shard0of2.jsonl", [line(sweep, "a", 0)])
    write_lines(out / "results_shard1of2.jsonl", [line(sweep, "b", 0)])
    before = sorted(os.listdir(str(out)))
    with pytest.raises(RunError) as caught:
        merge_results(str(out))
    assert str(caught.value) == ("%s is missing: rerun shard 0/2 (the same command with --shard "
                                 "0/2) to write it, then merge again"
                                 % (out / "config_shard0of2.yaml"))
    assert sorted(os.listdir(str(out))) == before  # not even a lock file


def scores(stem, class_id, **extra):
    return score_line("images/%s.jpg" % stem, class_id,
                      "heatmaps_000000.npz:%s_c%s" % (stem, class_id), **extra)


def test_merge_scores_joins_the_shards_and_reports_the_heatmaps_unscored(tmp_path):
    results = [results_line("images/%s.jpg" % stem, class_id,
                            "heatmaps_000000.npz:%s_c%s" % (stem, class_id))
               for stem, class_id in (("a", 0), ("a", 1), ("b", 0), ("c", 0), ("d", 0))]
    write_lines(tmp_path / "results.jsonl", results)
    # The job's shards of 2 take the sorted images a, c and b, d.
    write_lines(tmp_path / "faithfulness_shard0of2.jsonl", [
        scores("c", 0), scores("a", 1), scores("a", 0), scores("a", 1, deletion_auc=0.9)])
    write_lines(tmp_path / "faithfulness_shard1of2.jsonl", [scores("b", 0)],
                torn='{"image": "images/d.jpg", "class_id": 0, "heatm')
    report = merge_scores(str(tmp_path))
    assert report._asdict() == {
        "path": str(tmp_path / "faithfulness.jsonl"), "kind": "scores", "lines": 4,
        "duplicates": 1, "total": 5, "failed": [], "missing": [results[4]], "incomplete": [],
        "shards_to_rerun": [1]}
    assert read_json_lines(str(tmp_path / "faithfulness.jsonl")) == [
        scores("a", 1), scores("a", 0), scores("b", 0), scores("c", 0)]
    write_lines(tmp_path / "faithfulness_shard1of2.jsonl", [scores("d", 0), scores("b", 0)])
    report = merge_scores(str(tmp_path))
    assert (report.lines, report.missing, report.shards_to_rerun) == (5, [], [])


def test_merge_scores_refuses_a_folder_without_shards_or_of_two_shardings(tmp_path):
    write_lines(tmp_path / "results.jsonl", [results_line("a.jpg", 0, "a_c0.npy")])
    write_lines(tmp_path / "faithfulness.jsonl", [])
    with pytest.raises(RunError) as caught:
        merge_scores(str(tmp_path))
    assert str(caught.value) == (
        "%s holds no shard scores (faithfulness_shard<INDEX>of<COUNT>.jsonl); run "
        "scripts/evaluate_faithfulness.py with --shard INDEX/COUNT first" % tmp_path)
    write_lines(tmp_path / "faithfulness_shard0of2.jsonl", [])
    write_lines(tmp_path / "faithfulness_shard2of4.jsonl", [])
    with pytest.raises(RunError) as caught:
        merge_scores(str(tmp_path))
    assert str(caught.value) == ("%s holds scores of shards of different counts (0/2, 2/4); "
                                 "merge one sharding at a time" % tmp_path)
    assert (tmp_path / "faithfulness.jsonl").read_text() == ""
