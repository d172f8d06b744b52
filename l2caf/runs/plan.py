"""Which images and classes a visualiser run explains: the images of a shard, the classes of
an image, and whether the results lines already hold an image's heatmaps. The visualiser plans
its work with it, and the merge reports the work still missing with it."""
import collections
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from l2caf import data, images
from l2caf.config import Config
from l2caf.errors import ConfigError
from l2caf.runs.folder import Shard, image_key


def explained_classes(config: Config, ranked_classes: Sequence[int],
                      ground_truth: Optional[Sequence[int]]) -> List[Optional[int]]:
    """The classes a run explains for an image: one class-free heatmap (None) for
    cls_oblivious; else config.classes, or the top_k of ranked_classes (class ids, best
    first), plus with explain_gt the image's ground-truth classes not among them."""
    if config.caf_variant == "cls_oblivious":
        return [None]
    classes = list(config.classes) or list(ranked_classes[:config.top_k])
    if config.explain_gt:
        classes += [c for c in ground_truth or () if c not in classes]
    return classes


def is_complete(config: Config, num_labels: int, records: Optional[Sequence[Mapping[str, Any]]],
                ground_truth: Optional[Sequence[int]],
                is_done: Callable[[str, Optional[int]], bool]) -> bool:
    """Whether an image's results lines `records` hold all its classes (False when they
    cannot tell: top_k beyond the top 5 the lines record). num_labels: the network's class
    ids; ground_truth: the image's classes, or None; is_done(image, class_id): whether the
    results hold that pair."""
    if not records:
        return False
    ranked = [prediction["class_id"] for prediction in records[0]["predictions"]]
    if config.caf_variant == "cls_specific" and not config.classes and \
            len(ranked) < min(config.top_k, num_labels):
        return False
    return all(is_done(records[0]["image"], class_id)
               for class_id in explained_classes(config, ranked, ground_truth))


def by_image(records: Iterable[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """{image_key of an image: its records}, in order."""
    grouped: Dict[str, List[Dict[str, Any]]] = collections.OrderedDict()
    for record in records:
        grouped.setdefault(image_key(record["image"]), []).append(record)
    return grouped


def list_images(config: Config) -> List[data.LabeledImage]:
    """All the data.LabeledImages of a run's images and annotations, sorted."""
    try:
        return data.list_labeled_images(config.images, config.annotations, config.labels)
    except images.ImageError as error:
        raise ConfigError("images: %s" % error) from None
    except (OSError, ValueError) as error:
        raise ConfigError("annotations: %s" % error) from None


def select(labeled: List[data.LabeledImage], config: Config,
           shard: Shard) -> List[data.LabeledImage]:
    """The images of a run's shard: the first config.limit of `labeled`, then every
    shard.count-th from the shard.index-th."""
    selected = labeled[:config.limit] if config.limit else labeled
    return selected[shard.index::shard.count]
