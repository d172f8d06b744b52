"""Weakly-supervised localisation evaluation of heatmaps: boxes, IoU, localisation errors,
MaxBoxAcc and MaxBoxAccV2, and the annotations they are scored against.

numpy, OpenCV and the standard library only: no TensorFlow, so that an evaluation never
waits for it or competes with it for memory.

  boxes        the 'cam' and 'adl' protocols: boxes at the image's size; IoU
  wsol         the 'wsol' protocol: wsolevaluation's boxes at 224 x 224
  metrics      errors, MaxBoxAcc and MaxBoxAccV2 of a run's records (and their accuracy at
               every threshold), over a process pool; the box of one class's heatmap
  pointing     the pointing game and the energy-based pointing game
  annotations  VOC / ILSVRC XMLs and wsolevaluation's metadata
"""
from l2caf.evaluation.annotations import (Annotation, BoxObject, read_annotation_folder,
                                          read_annotations, read_voc_xml, read_wsol_metadata,
                                          write_voc_xml)
from l2caf.evaluation.boxes import (box_at_threshold, heatmap_to_box, iou, is_localized,
                                    resize_heatmap)
from l2caf.evaluation.metrics import (DEFAULT_THRESHOLDS, PROTOCOLS, V2_IOU_THRESHOLDS,
                                      BoxAccuracies, ClassBox, Evaluation, ImageRecord,
                                      LocalizationMetrics, MaxBoxAcc, MaxBoxAccV2, class_box,
                                      default_workers, evaluate_records, localization_metrics,
                                      max_box_acc, max_box_acc_v2, parse_thresholds,
                                      record_from_annotation)
from l2caf.evaluation.pointing import (POINTING_TOLERANCE, energy_share, pointing_hit,
                                       pointing_scores)

__all__ = [
    "Annotation", "BoxObject", "read_annotation_folder", "read_annotations", "read_voc_xml",
    "read_wsol_metadata", "write_voc_xml",
    "box_at_threshold", "heatmap_to_box", "iou", "is_localized", "resize_heatmap",
    "DEFAULT_THRESHOLDS", "PROTOCOLS", "V2_IOU_THRESHOLDS", "BoxAccuracies", "ClassBox",
    "Evaluation", "ImageRecord", "LocalizationMetrics", "MaxBoxAcc", "MaxBoxAccV2", "class_box",
    "default_workers", "evaluate_records",
    "localization_metrics", "max_box_acc", "max_box_acc_v2", "parse_thresholds",
    "record_from_annotation",
    "POINTING_TOLERANCE", "energy_share", "pointing_hit", "pointing_scores",
]
