"""The lines of a run folder's lines files, and the one reader that checks them.

A results line (one per heatmap), a faithfulness scores line (one per scored heatmap) and a
failure line (one per image or class that could not be used) are JSON objects whose fields
the readers use: RULES says, per kind of file, which fields a line must have and what each
may be. `read_lines_file` reads a file and checks every line against it, so that a line
whose fields have the wrong types (a list, a string, `predictions: null`, markup where a
number belongs, invalid UTF-8) is refused with one message naming the file, the line number
and the field, never a traceback or a silently wrong number further on. The last line may be
torn (a kill during its write, before its newline): it is left out, as the command that
wrote it writes it again. Fields the rules do not name are kept as they are (newer versions
may add some). No TensorFlow.
"""
import json
import math
import numbers
from typing import Any, Callable, Dict, List, Mapping, Optional

from l2caf.errors import RunError
from l2caf.evaluation.table import metrics

Rule = Callable[[Any], Optional[str]]  # a field's value -> what is wrong with it, or None


def _text(value: Any) -> Optional[str]:
    return None if isinstance(value, str) and value else "not a non-empty string"


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> Optional[str]:
    return None if _number(value) and math.isfinite(value) else "not a finite number"


def _count(value: Any) -> Optional[str]:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else "not a whole number >= 0"


def _positive(value: Any) -> Optional[str]:
    return None if _count(value) is None and value > 0 else "not a whole number >= 1"


def _size(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and len(value) == 2 and \
        all(_positive(side) is None for side in value) else "not [height, width] of whole numbers"


def _class_ids(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and all(_count(item) is None for item in value) \
        else "not a list of class ids"


def _history(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and all(
        isinstance(point, list) and len(point) == 2 and _count(point[0]) is None and
        _finite(point[1]) is None for point in value) else "not a list of [updates, loss]"


def _predictions(value: Any) -> Optional[str]:
    if not isinstance(value, list) or not value:
        return "not a non-empty list of predictions"
    for prediction in value:
        if not isinstance(prediction, dict) or _count(prediction.get("class_id")) or \
                _finite(prediction.get("probability")) or \
                _optional(_text)(prediction.get("class_name")):
            return "not a list of {class_id, probability, class_name}"
    return None


def _similarity(value: Any) -> Optional[str]:
    return None if value is None or (_finite(value) is None and -1.0 <= value <= 1.0) \
        else "not a similarity (a number from -1 to 1, or null)"


def _similarities(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and value and \
        all(_similarity(item) is None for item in value) \
        else "not a list of similarities (numbers from -1 to 1, or null)"


def _names(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and value and \
        all(_text(item) is None for item in value) else "not a list of names"


def _fractions(value: Any) -> Optional[str]:
    return None if isinstance(value, list) and value and all(
        _finite(item) is None and 0 < item < 1 for item in value) \
        else "not a list of fractions in (0, 1)"


def _optional(rule: Rule) -> Rule:
    """A rule that also lets the field be null."""
    return lambda value: None if value is None else rule(value)


# The per-heatmap scores that older faithfulness lines lack.
SCORES_ADDED_LATER = ("average_gain", "road_morf_auc", "road_lerf_auc")

# Per kind of lines file (l2caf.runs.folder.FILES): {field: (rule, required)}. A field that is
# not required may be missing (older lines lack some).
RULES: Dict[str, Dict[str, tuple]] = {
    "results": {
        "image": (_text, True), "heatmap": (_text, True), "layer": (_text, True),
        "predictions": (_predictions, True), "class_id": (_optional(_count), False),
        "class_name": (_optional(_text), False), "network": (_optional(_text), False),
        "method": (_optional(_text), False), "caf_variant": (_optional(_text), False),
        "filter_type": (_optional(_text), False), "iterations": (_optional(_count), False),
        "final_loss": (_optional(_finite), False), "loss_history": (_optional(_history), False),
        "seconds": (_optional(_finite), False), "overlay": (_optional(_text), False),
        "gif": (_optional(_text), False), "ground_truth": (_optional(_class_ids), False),
        "image_size": (_optional(_size), False)},
    "scores": dict({
        "image": (_text, True), "heatmap": (_text, True), "curves": (_text, False),
        "class_id": (_optional(_count), False), "scored_class_id": (_count, False),
        "steps": (_positive, False), "input_size": (_size, False),
        "probability": (_finite, False), "masked_probability": (_finite, False),
        "method": (_optional(_text), False), "road_curves": (_text, False),
        "road_fractions": (_fractions, False), "road_noise": (_finite, False)},
        # (Lines scored before ROAD and Average Gain existed lack them: the table shows "-".)
        **{metric.key: (_finite, metric.key not in SCORES_ADDED_LATER)
           for metric in metrics("faithfulness")}),
    "failures": {"image": (_text, True), "reason": (_text, True),
                 "class_id": (_optional(_count), False)},
}
# A sanity check's line (l2caf.runs.sanity): per randomisation step a similarity per block,
# from the output down; the random logit's one similarity (null: undefined, see
# l2caf.evaluation.similarity).
RULES["sanity"] = dict({
    "image": (_text, True), "heatmap": (_text, True), "maps": (_text, True),
    "class_id": (_optional(_count), False), "method": (_optional(_text), False),
    "seed": (_count, True), "blocks": (_names, True),
    "random_logit_class_id": (_optional(_count), True)},
    **{"%s_%s" % (randomisation, measure): (_similarities, True)
       for randomisation in ("cascading", "independent")
       for measure in ("spearman_abs", "spearman", "ssim")},
    **{"random_logit_%s" % measure: (_similarity, True)
       for measure in ("spearman_abs", "spearman", "ssim")})
RULES["score_failures"] = RULES["sanity_failures"] = RULES["failures"]


def check_line(record: Any, kind: Optional[str]) -> Optional[str]:
    """What is wrong with a line (a parsed JSON value) of a `kind` of lines file, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for field, (rule, required) in RULES.get(kind, {}).items():
        if field not in record:
            if required:
                return "no field %s" % field
            continue
        problem = rule(record[field])
        if problem:
            return "%s is %s (%s)" % (field, problem, _shown(record[field]))
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_lines_file(path: str, kind: Optional[str]) -> List[Dict[str, Any]]:
    """The lines of a `kind` of lines file ("results", "scores", "failures",
    "score_failures", "sanity", "sanity_failures"; None: any JSON objects), each checked
    (check_line); a torn last line is left out. RunError for any other line that is not
    valid, naming the file, the line number and what is wrong."""
    with open(path, "rb") as stream:
        data = stream.read()
    lines = data.split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = number == len(lines)  # no newline after it: its write was cut short
        try:
            record = json.loads(raw.decode("utf-8"))
        except ValueError as error:  # (UnicodeDecodeError is a ValueError)
            if last:
                continue
            raise _bad_line(path, number, "not JSON (%s)" % error.__class__.__name__) \
                from None
        problem = check_line(record, kind)
        if problem:
            raise _bad_line(path, number, problem)
        records.append(record)
    return records


def check_line_settings(path: str, record: Mapping[str, Any], settings: Mapping[str, Any],
                        what: str) -> None:
    """A RunError if `record`, a line of the lines file `path`, was made with other settings
    than `settings` ({field: the value the job uses now}): the message names each field that
    differs and `what` the file's lines are ("scores", "sanity checks")."""
    differ = ["%s (%s there, %s now)" % (key, record.get(key), value)
              for key, value in settings.items() if record.get(key) != value]
    if differ:
        raise RunError("%s holds %s made with other settings: %s; give the same settings, or "
                       "--overwrite to delete the folder's %s first"
                       % (path, what, "; ".join(differ), what))


def _bad_line(path: str, number: int, problem: str) -> RunError:
    return RunError("%s, line %d: %s; delete that line (the command that wrote it makes its "
                    "work again), or rerun that command with --overwrite" % (path, number, problem))
