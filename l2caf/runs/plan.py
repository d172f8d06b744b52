"""Which images and classes a visualiser run explains: the images of a shard, the classes of
an image, and whether the results lines already hold an image's heatmaps. The visualiser plans
its work with it, and the merge reports the work still missing with it."""
import collections

from l2caf import data, images
from l2caf.errors import ConfigError
from l2caf.runs.folder import image_key


def explained_classes(config, ranked_classes, ground_truth):
    """The classes a run explains for an image: one class-free heatmap (None) for
    cls_oblivious; else config.classes, or the top_k of ranked_classes (class ids, best
    first), plus with explain_gt the image's ground-truth classes not among them."""
    if config.caf_variant == "cls_oblivious":
        return [None]
    classes = list(config.classes) or list(ranked_classes[:config.top_k])
    if config.explain_gt:
        classes += [c for c in ground_truth or () if c not in classes]
    return classes


def is_complete(config, num_labels, records, ground_truth, is_done):
    """Whether an image's results lines `records` hold all its classes (False when they
    cannot tell: top_k beyond the top 5 the lines record)."""
    if not records:
        return False
    ranked = [prediction["class_id"] for prediction in records[0]["predictions"]]
    if config.caf_variant == "cls_specific" and not config.classes and \
            len(ranked) < min(config.top_k, num_labels):
        return False
    return all(is_done(records[0]["image"], class_id)
               for class_id in explained_classes(config, ranked, ground_truth))


def by_image(records):
    """{image_key of an image: its records}, in order."""
    grouped = collections.OrderedDict()
    for record in records:
        grouped.setdefault(image_key(record["image"]), []).append(record)
    return grouped


def list_images(config):
    """All the data.LabeledImages of a run's images and annotations, sorted."""
    try:
        return data.list_labeled_images(config.images, config.annotations, config.labels)
    except images.ImageError as error:
        raise ConfigError("images: %s" % error) from None
    except (OSError, ValueError) as error:
        raise ConfigError("annotations: %s" % error) from None


def select(labeled, config, shard):
    """The images of a run's shard: the first config.limit of `labeled`, then every
    shard.count-th from the shard.index-th."""
    selected = labeled[:config.limit] if config.limit else labeled
    return selected[shard.index::shard.count]
