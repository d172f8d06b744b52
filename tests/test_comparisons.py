"""l2caf.evaluation.comparisons: the tests (exact McNemar, the paired t over images, the
normal approximation, Holm), the paired comparisons of runs, Kendall's tau-b, Krippendorff's
alpha and the agreement of the metrics, against float64 references written here from the
definitions, hand-computed cases and the published examples of Krippendorff's paper; never
against another library alone."""
import fractions
import json
import math

import numpy as np
import pytest

from l2caf.evaluation.comparisons import (BOOTSTRAP_Z, MCNEMAR, PAIRED_T, VERDICTS, agreement,
                                          compare_pair, compare_runs, holm, image_values,
                                          kendall_tau_b, krippendorff_alpha,
                                          markdown_agreement, markdown_comparisons,
                                          mcnemar_exact, normal_p_value, not_paired, paired_t,
                                          ranks, write_agreement, write_comparisons)
from l2caf.evaluation.statistics import RunSamples, Samples
from l2caf.evaluation.table import COLUMNS


def binomial_two_sided(a_only, b_only):
    """McNemar's exact p-value from its definition: under the null each discordant unit is
    A's or B's with probability 1/2; twice the smaller tail, exactly, at most 1."""
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    tail = sum(fractions.Fraction(math.comb(n, i), 2 ** n) for i in range(k + 1))
    return float(min(fractions.Fraction(1), 2 * tail))


@pytest.mark.parametrize("a_only, b_only", [(0, 0), (3, 0), (0, 3), (12, 4), (4, 12), (7, 7),
                                            (10, 25), (1, 60), (300, 340)])
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_units(a_only, b_only):
    assert mcnemar_exact(a_only, b_only) == pytest.approx(binomial_two_sided(a_only, b_only),
                                                          rel=1e-9, abs=1e-300)


def test_mcnemar_by_hand():
    # 5 discordant, all one way: 2 * (1/2)^5
    assert mcnemar_exact(5, 0) == pytest.approx(1 / 16.0)
    # 12 vs 4: 2 * sum_{i<=4} C(16, i) / 2^16 = 2 * 2517 / 65536
    assert mcnemar_exact(12, 4) == pytest.approx(2 * 2517 / 65536.0)


def student_t3_cdf(t):
    """The CDF of Student's t with 3 degrees of freedom, in closed form."""
    x = t / math.sqrt(3.0)
    return 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi


def test_paired_t_on_a_constructed_case():
    # One heatmap per image, differences 1, 2, 3, 4: mean 2.5, s = sqrt(5/3), t = 2.5 / (s / 2)
    t, degrees, p_value = paired_t(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4))
    expected_t = 2.5 / (math.sqrt(5.0 / 3.0) / 2.0)
    assert (t, degrees) == (pytest.approx(expected_t), 3)
    assert t == pytest.approx(3.872983346207417)
    assert p_value == pytest.approx(2 * (1 - student_t3_cdf(expected_t)), rel=1e-9)


def test_paired_t_over_images_of_several_heatmaps_is_the_cluster_robust_test():
    # Images with 1, 3 and 2 heatmaps (and an image without any), differences per heatmap.
    per_image = [[0.5], [1.0, 2.0, 0.0], [], [3.0, 1.5]]
    sums = np.array([sum(found) for found in per_image])
    units = np.array([len(found) for found in per_image], dtype=float)
    t, degrees, p_value = paired_t(sums, units)
    # The definition, written out: d the mean over the heatmaps, the standard error of the
    # ratio over the images that have some.
    kept = [found for found in per_image if found]
    n, total = len(kept), sum(len(found) for found in kept)
    d = sum(sum(found) for found in kept) / total
    variance = n / (n - 1.0) * sum((sum(found) - d * len(found)) ** 2 for found in kept)
    expected = d / (math.sqrt(variance) / total)
    assert (t, degrees) == (pytest.approx(expected), 2)
    # two degrees of freedom: the t CDF is 1/2 + t / (2 sqrt(2 + t^2))
    assert p_value == pytest.approx(1 - abs(expected) / math.sqrt(2 + expected ** 2), rel=1e-9)


def test_paired_t_without_spread_or_images():
    assert paired_t(np.array([2.0]), np.ones(1)) is None
    assert paired_t(np.array([0.0, 0.0, 0.0]), np.ones(3))[2] == 1.0
    assert paired_t(np.array([1.0, 1.0]), np.ones(2))[2] == 0.0


def test_normal_p_value():
    assert normal_p_value(1.959963984540054, 1.0) == pytest.approx(0.05, rel=1e-9)
    assert normal_p_value(0.0, 0.0) == 1.0 and normal_p_value(1.0, 0.0) == 0.0


def test_holm_on_a_hand_made_case():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> at least 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_ranks_and_kendall_by_hand():
    assert ranks([10.0, 30.0, 20.0], "higher") == [3.0, 1.0, 2.0]
    assert ranks([10.0, 30.0, 20.0], "lower") == [1.0, 3.0, 2.0]
    assert ranks([5.0, 5.0, 1.0, 5.0], "higher") == [2.0, 2.0, 4.0, 2.0]
    # the table's numbers, equal but for the last bits of their sums, tie
    assert ranks([0.1 + 0.2, 0.3], "higher") == [1.5, 1.5]
    # 1 2 3 4 against 1 3 2 4: 5 concordant pairs, 1 discordant
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6.0)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # with ties: x = 1 2 2 3, y = 1 2 3 3; pairs (6): concordant (1,2) (1,3) (1,4) (2,4);
    # (2,3) tied in x, (3,4) tied in y: tau-b = 4 / sqrt(5 * 5)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None


NAN = np.nan
# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), its example C: four
# observers, twelve units, values 1 to 5, missing values; the paper's alphas.
KRIPPENDORFF_C = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
                  [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
                  [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
                  [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]
# Its example A: two observers, ten units, binary values.
KRIPPENDORFF_A = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
                  [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]


@pytest.mark.parametrize("data, level, published", [
    (KRIPPENDORFF_C, "nominal", 0.743), (KRIPPENDORFF_C, "ordinal", 0.815),
    (KRIPPENDORFF_C, "interval", 0.849), (KRIPPENDORFF_A, "nominal", 0.095)])
def test_krippendorff_alpha_gives_the_published_examples(data, level, published):
    assert round(krippendorff_alpha(np.array(data, dtype=float), level), 3) == published


def test_krippendorff_alpha_by_hand():
    # Two raters, three units, ordinal values 1 2 3: they agree on units 1 and 2 and say 2 and
    # 3 on unit 3. Pairable values: 1 1 2 2 2 3, n_1 = 2, n_2 = 3, n_3 = 1, n = 6.
    # Coincidences: o_11 = 2, o_22 = 2, o_23 = o_32 = 1. Ordinal distances: d_12 = (2 + 3 -
    # 2.5)^2 = 6.25, d_23 = (3 + 1 - 2)^2 = 4, d_13 = (2 + 3 + 1 - 1.5)^2 = 20.25.
    # alpha = 1 - (n - 1) (o_23 d_23 + o_32 d_32) / sum_c sum_k n_c n_k d_ck
    #       = 1 - 5 * 8 / (2 * (2*3*6.25 + 3*1*4 + 2*1*20.25)) = 1 - 40 / 180 = 7 / 9
    data = np.array([[1, 2, 2], [1, 2, 3]], dtype=float)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(7 / 9.0)
    assert krippendorff_alpha(np.array([[1, 2, 3], [1, 2, 3]], dtype=float)) == 1.0
    assert krippendorff_alpha(np.array([[2, 2], [2, 2]], dtype=float)) is None
    assert krippendorff_alpha(np.array([[1, NAN], [NAN, 2]])) is None
    with pytest.raises(ValueError):
        krippendorff_alpha(data, "ratio")


# Runs of samples written here.

IMAGES = ["image_%02d" % index for index in range(40)]


def image_units(images=IMAGES):
    return [(image, None) for image in images]


def heatmap_units(images=IMAGES):
    """Two heatmaps (classes 1 and 2) for every other image, one (class 1) for the rest."""
    return [(image, class_id) for index, image in enumerate(images)
            for class_id in ((1, 2) if index % 2 else (1,))]


def a_run(run, localized, energies, network="demo_densenet", fingerprint=None, hits=None,
          images=IMAGES):
    """A run's samples: GT-known (0/1 per image), the energy pointing game (a value per
    heatmap), MaxBoxAcc (hits per image at 3 thresholds) and the classification error (the
    network's: the same in every run)."""
    hits = np.tile(np.asarray(localized, float)[:, None, None], (1, 1, 3)) if hits is None \
        else hits
    return RunSamples(run, network, fingerprint or {}, {
        "top1_cls_error": Samples(image_units(images), np.zeros(len(images))),
        "gt_known_loc_accuracy": Samples(image_units(images), np.asarray(localized, float)),
        "max_box_acc": Samples(image_units(images), hits),
        "energy_pointing_game": Samples(heatmap_units(images), np.asarray(energies, float))})


def test_a_paired_comparison_computes_each_column_as_the_table_and_tests_it():
    rng = np.random.default_rng(1)
    count = len(heatmap_units())
    better = a_run("runs/a", np.ones(40), rng.uniform(0.5, 1.0, count))
    worse = a_run("runs/b", np.r_[np.ones(10), np.zeros(30)], rng.uniform(0.0, 0.4, count))
    comparisons, notes = compare_pair(better, worse, resamples=400, seed=3)
    by_column = {comparison.column: comparison for comparison in comparisons}
    assert list(by_column) == ["gt_known_loc_accuracy", "max_box_acc", "energy_pointing_game"]
    assert notes == ["not compared, the same in both runs on every unit: top-1 cls err"]
    gt = by_column["gt_known_loc_accuracy"]
    assert (gt.difference, gt.images, gt.units, gt.test, gt.detail) == (
        pytest.approx(75.0), 40, 40, MCNEMAR, "30 vs 0 discordant")
    assert gt.p_value == pytest.approx(binomial_two_sided(30, 0))
    assert gt.ci_low <= 75.0 <= gt.ci_high
    energy = by_column["energy_pointing_game"]
    a_values = better.samples["energy_pointing_game"].values
    b_values = worse.samples["energy_pointing_game"].values
    assert energy.difference == pytest.approx(100 * (a_values.mean() - b_values.mean()))
    assert (energy.test, energy.units, energy.images) == (PAIRED_T, count, 40)
    assert by_column["max_box_acc"].test == BOOTSTRAP_Z
    table = compare_runs([better, worse], resamples=400, seed=3)
    assert [comparison.verdict for comparison in table.comparisons] == [VERDICTS[0]] * 3
    # B first: "B better"
    table = compare_runs([worse, better], resamples=400, seed=3)
    assert [comparison.verdict for comparison in table.comparisons] == [VERDICTS[1]] * 3


def test_lower_is_better_columns_turn_the_verdict():
    right = np.ones(40)
    wrong = np.r_[np.ones(5), np.zeros(35)]
    a = RunSamples("runs/a", "n", {}, {"top1_loc_error": Samples(image_units(), 1 - right)})
    b = RunSamples("runs/b", "n", {}, {"top1_loc_error": Samples(image_units(), 1 - wrong)})
    [comparison] = compare_runs([a, b], resamples=200).comparisons
    assert comparison.difference == pytest.approx(-87.5) and comparison.verdict == "A better"
    assert COLUMNS["top1_loc_error"].better == "lower"


def test_the_paired_differences_use_only_the_units_both_runs_have():
    a = a_run("runs/a", np.ones(40), np.full(len(heatmap_units()), 0.8))
    part = IMAGES[:20]
    b = a_run("runs/b", np.r_[np.ones(5), np.zeros(15)], np.full(len(heatmap_units(part)), 0.3),
              images=part)
    comparisons, _ = compare_pair(a, b, resamples=200)
    by_column = {comparison.column: comparison for comparison in comparisons}
    assert by_column["gt_known_loc_accuracy"].images == 20
    assert by_column["gt_known_loc_accuracy"].difference == pytest.approx(75.0)
    assert by_column["energy_pointing_game"].units == len(heatmap_units(part))
    assert by_column["energy_pointing_game"].difference == pytest.approx(50.0)


def test_holm_runs_over_every_comparison_of_the_table():
    rng = np.random.default_rng(5)
    count = len(heatmap_units())
    runs = [a_run("runs/%d" % index, rng.integers(0, 2, 40), rng.uniform(0, 1, count))
            for index in range(4)]
    table = compare_runs(runs, resamples=200)
    tested = [comparison for comparison in table.comparisons if comparison.p_value is not None]
    assert len(tested) == 6 * 3
    assert [comparison.p_holm for comparison in tested] == pytest.approx(
        holm([comparison.p_value for comparison in tested]))
    for comparison in tested:
        expected = VERDICTS[2] if comparison.p_holm >= 0.05 else comparison.verdict
        assert comparison.verdict == expected


def test_runs_that_are_not_paired_are_not_compared_and_the_table_says_why():
    a = a_run("runs/a", np.ones(40), np.ones(len(heatmap_units())))
    assert not_paired(a, a_run("runs/b", np.ones(40), np.ones(len(heatmap_units())),
                               network="resnet_v2_50")) == "other networks (demo_densenet, " \
                                                           "resnet_v2_50)"
    other_images = ["other_%02d" % index for index in range(40)]
    assert not_paired(a, a_run("runs/c", np.ones(40), np.ones(len(heatmap_units(other_images))),
                               images=other_images)) == "no image in common"
    assert not_paired(a_run("x", np.ones(40), np.ones(60), fingerprint={"checkpoint_sha256": "a"}),
                      a_run("y", np.ones(40), np.ones(60), fingerprint={"checkpoint_sha256": "b"})
                      ) == "other checkpoint sha256"
    table = compare_runs([a, a_run("runs/b", np.ones(40), np.ones(60), network="other")])
    assert table.comparisons == [] and table.not_compared[0].reason == \
        "other networks (demo_densenet, other)"
    assert "not compared: runs/a and runs/b: other networks (demo_densenet, other)" in \
        markdown_comparisons(table)


def test_a_single_image_gives_no_interval_and_no_test_but_never_a_nan(tmp_path):
    one = ["only"]
    a = a_run("runs/a", [1.0], [0.9], images=one)
    b = a_run("runs/b", [0.0], [0.2], images=one)
    table = compare_runs([a, b], resamples=100)
    by_column = {comparison.column: comparison for comparison in table.comparisons}
    assert by_column["energy_pointing_game"].p_value is None
    assert by_column["energy_pointing_game"].verdict == "-"
    assert by_column["max_box_acc"].p_value is None
    assert all(comparison.ci_low is None for comparison in table.comparisons)
    written = write_comparisons(str(tmp_path / "table"), table)
    for path in written:
        assert "nan" not in open(path).read().lower()
    json.loads(open(written[1]).read())
    assert "no test (a single image)" in markdown_comparisons(table)


def test_image_values_of_a_best_threshold_column_are_the_outcomes_at_the_best_threshold():
    hits = np.array([[[0, 1, 1]], [[0, 1, 0]], [[1, 0, 0]]], dtype=float)  # best: threshold 1
    samples = Samples(image_units(["a", "b", "c"]), hits)
    assert image_values(COLUMNS["max_box_acc"], samples, samples.units) == {
        "a": 1.0, "b": 1.0, "c": 0.0}
    energy = Samples([("a", 1), ("a", 2), ("b", 1)], np.array([0.2, 0.4, 0.9]))
    assert image_values(COLUMNS["energy_pointing_game"], energy, [("a", 1), ("a", 2)]) == {
        "a": pytest.approx(0.3)}


def a_row(run, method, **values):
    row = {"run": run, "method": method}
    row.update({column.key: None for column in COLUMNS.values() if column.better})
    row.update(values)
    return row


def test_agreement_ranks_the_runs_and_compares_the_columns():
    rng = np.random.default_rng(2)
    count = len(heatmap_units())
    quality = [0.9, 0.5, 0.1]
    runs = [a_run("runs/%d" % index, rng.random(40) < level,
                  np.clip(level + rng.normal(0, 0.05, count), 0, 1))
            for index, level in enumerate(quality)]
    rows = [a_row(run.run, "m%d" % index, top1_cls_error=0.0,
                  gt_known_loc_accuracy=100 * run.samples["gt_known_loc_accuracy"].values.mean(),
                  max_box_acc=100 * run.samples["max_box_acc"].values.mean(),
                  energy_pointing_game=100 * run.samples["energy_pointing_game"].values.mean(),
                  # The sanity checks are no raters of the maps: left out.
                  sanity_spearman_randomized=0.1 * index,
                  sanity_spearman_random_logit=0.3 - 0.1 * index)
            for index, run in enumerate(runs)]
    found = agreement(rows, runs)
    assert found.columns == ["top1_cls_error", "gt_known_loc_accuracy", "max_box_acc",
                             "energy_pointing_game"]
    assert found.ranks["gt_known_loc_accuracy"] == [1.0, 2.0, 3.0]
    assert found.ranks["top1_cls_error"] == [2.0, 2.0, 2.0]
    assert found.ranked_columns == ["gt_known_loc_accuracy", "max_box_acc",
                                    "energy_pointing_game"]
    assert found.kendall == [[1.0] * 3] * 3
    assert found.raters == ["gt_known_loc_accuracy", "max_box_acc", "energy_pointing_game"]
    assert found.images == 40
    # The reference: the same reliability data built image by image, plainly.
    data = []
    for key in found.raters:
        column = COLUMNS[key]
        rated = []
        for image in IMAGES:
            values = [np.mean([value for unit, value in zip(run.samples[key].units,
                                                            run.samples[key].values)
                               if unit[0] == image], axis=0).ravel().mean() for run in runs]
            rated += ranks(values, column.better)
        data.append(rated)
    assert found.alpha == pytest.approx(krippendorff_alpha(np.array(data), "ordinal"))
    assert 0 < found.alpha < 1
    text = markdown_agreement(found)
    assert "Krippendorff's alpha (ordinal) of the 3 metrics" in text
    assert "leaves out top-1 cls err" in text


def test_agreement_without_pairing_gives_no_alpha(tmp_path):
    runs = [a_run("runs/%d" % index, np.ones(40), np.ones(60), network="n%d" % (index // 2))
            for index in range(3)]
    rows = [a_row(run.run, "m", gt_known_loc_accuracy=float(index))
            for index, run in enumerate(runs)]
    found = agreement(rows, runs)
    assert found.alpha is None and "not paired" in found.notes[-1]
    [path] = write_agreement(str(tmp_path / "table"), found)
    assert json.loads(open(path).read())["krippendorff_alpha_ordinal"] is None
