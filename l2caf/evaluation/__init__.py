"""Scores of heatmaps, from arrays: boxes, IoU, localisation errors, MaxBoxAcc and
MaxBoxAccV2, the pointing games and the faithfulness metrics, and the one table of the
metrics every table, curve, figure and page reads. No run folders here (l2caf.runs reads
them) and no TensorFlow: the faithfulness metrics take the model that scores them.

  boxes         the 'cam' and 'adl' protocols: boxes at the image's size; IoU
  wsol          the 'wsol' protocol: wsolevaluation's boxes at 224 x 224
  metrics       errors, MaxBoxAcc and MaxBoxAccV2 of a run's records (and their accuracy at
                every threshold), over a process pool; the box of one class's heatmap
  pointing      the pointing game and the energy-based pointing game
  faithfulness  deletion and insertion AUC, Average Drop, Increase in Confidence
  table         the table's columns (name, label, better direction, scale, format, unit,
                outcome) and its Markdown, CSV and JSON
  statistics    the table's numbers from per-unit samples, and their bootstrap intervals
                over images (vectorised over the resamples)
  comparisons   paired comparisons of runs (bootstrap intervals, McNemar, paired t, Holm)
                and the metrics' agreement (ranks, Kendall's tau, Krippendorff's alpha)
"""
from l2caf.evaluation.boxes import box_at_threshold, heatmap_to_box, iou, is_localized
from l2caf.evaluation.metrics import (DEFAULT_THRESHOLDS, PROTOCOLS, V2_IOU_THRESHOLDS,
                                      BoxAccuracies, ClassBox, Evaluation, ImageOutcomes,
                                      ImageRecord, LocalizationMetrics, MaxBoxAcc, MaxBoxAccV2,
                                      class_box,
                                      evaluate_records, localization_metrics, max_box_acc,
                                      max_box_acc_v2, parse_thresholds, record_from_annotation)
from l2caf.evaluation.pointing import (POINTING_TOLERANCE, energy_share, pointing_hit,
                                       pointing_scores)

__all__ = [
    "box_at_threshold", "heatmap_to_box", "iou", "is_localized",
    "DEFAULT_THRESHOLDS", "PROTOCOLS", "V2_IOU_THRESHOLDS", "BoxAccuracies", "ClassBox",
    "Evaluation", "ImageOutcomes", "ImageRecord", "LocalizationMetrics", "MaxBoxAcc",
    "MaxBoxAccV2", "class_box",
    "evaluate_records", "localization_metrics", "max_box_acc", "max_box_acc_v2",
    "parse_thresholds", "record_from_annotation",
    "POINTING_TOLERANCE", "energy_share", "pointing_hit", "pointing_scores",
]
