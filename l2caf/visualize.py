"""The visualiser runs behind scripts/visualize_attention.py: images in, heatmaps out."""
import logging
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from l2caf import data, heatmaps, images
from l2caf import networks
from l2caf.config import COMMON_OPTIONS, ConfigError, parse
from l2caf.errors import L2CAFError, RunError
from l2caf.methods import L2CAF
from l2caf.model import Model, list_layers
from l2caf.results import ResultsFile
from l2caf.settings import Settings

LOG = logging.getLogger("l2caf")
GIF_SIZE = 224


def setup_logging(output_dir, log_name="run.log"):
    """Log lines go to output_dir/log_name; warnings and errors also to the terminal."""
    LOG.setLevel(logging.INFO)
    LOG.handlers[:] = []
    to_file = logging.FileHandler(os.path.join(output_dir, log_name))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    LOG.addHandler(to_file)
    LOG.addHandler(to_terminal)


def check_settings(config, num_labels):
    """Value checks that types alone do not catch."""
    for key in ("max_iters", "check_every", "top_k"):
        if config[key] < 1:
            raise ConfigError("%s must be at least 1, got %d" % (key, config[key]))
    if config.seed < 0:
        raise ConfigError("seed must be 0 or more, got %d" % config.seed)
    if config.learning_rate <= 0:
        raise ConfigError("learning_rate must be positive, got %g" % config.learning_rate)
    bad = [c for c in config.classes if not 0 <= c < num_labels]
    if bad:
        raise ConfigError("classes %s are not class ids 0..%d of this network"
                          % (",".join(map(str, bad)), num_labels - 1))
    if config.caf_variant == "cls_specific" and config.explain == "embedding":
        raise ConfigError("explain: embedding works with caf_variant cls_oblivious only "
                          "(an embedding has no classes)")


def prepare(config):
    """Network, class names and number of outputs of a run, checked."""
    spec = networks.get_network(config.network)
    try:
        names = data.class_names(config.labels)
    except (OSError, ValueError) as error:
        raise ConfigError("labels: %s" % error) from None
    num_classes = spec.num_classes or len(names)
    if num_classes - spec.label_offset != len(names):
        raise ConfigError("network %s has %d classes but the label list has %d names"
                          % (spec.name, num_classes - spec.label_offset, len(names)))
    check_settings(config, len(names))
    return spec, names, num_classes


def output_stem(image_path, class_id):
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return stem + ("_oblivious" if class_id is None else "_c%d" % class_id)


def top5_record(model, probabilities, names):
    return [{"class_id": c, "class_name": names[c],
             "probability": float(probabilities[model.class_output(c)])}
            for c in model.top_classes(probabilities, 5)]


def classes_to_explain(config, ranked_classes):
    """cls_specific: config.classes, else the top_k of ranked_classes (class ids, best first).
    cls_oblivious: [None], one class-free heatmap."""
    if config.caf_variant == "cls_oblivious":
        return [None]
    return list(config.classes) or list(ranked_classes[:config.top_k])


def gif_recorder(config, pictures):
    """(frames, on_check): on_check(iteration, heatmaps) adds to frames[row] the heatmap of
    filter row `row` over pictures[row] (RGB, GIF_SIZE), at every convergence check."""
    frames = [[] for _ in pictures]

    def on_check(iteration, maps, running):
        for row_frames, picture, heatmap, is_running in zip(frames, pictures, maps, running):
            if is_running:
                row_frames.append(heatmaps.show_heatmap_on_image(picture, heatmap,
                                                                 config.overlay_alpha))
    return frames, on_check


def write_pictures(config, stem, image, explanation, frames):
    """Overlay .png (if config.save_overlays) and GIF (if frames) of one explanation at
    `stem`; returns their paths (None for those not written)."""
    paths = {"overlay": None, "gif": None}
    if config.save_overlays:
        paths["overlay"] = stem + ".png"
        heatmaps.save_png(paths["overlay"], heatmaps.show_heatmap_on_image(
            image, explanation.heatmap, config.overlay_alpha))
    if frames:
        paths["gif"] = stem + ".gif"
        heatmaps.save_gif(paths["gif"], frames)
    return paths


def write_outputs(config, image_path, image, explanation, frames):
    """Heatmap .npy, overlay .png and GIF of one explanation; returns their paths."""
    stem = os.path.join(config.output_dir, output_stem(image_path, explanation.class_id))
    np.save(stem + ".npy", explanation.heatmap.astype(np.float32))
    return dict(heatmap=stem + ".npy", **write_pictures(config, stem, image, explanation, frames))


def result_record(config, model, names, image_path, explanation, probabilities, paths):
    """The results.jsonl line of one explanation (paths: of its heatmap, overlay and GIF)."""
    class_id = explanation.class_id
    return {
        "image": image_path, "network": model.network.name, "layer": model.layer,
        "caf_variant": config.caf_variant, "filter_type": config.filter_type,
        "class_id": class_id, "class_name": None if class_id is None else names[class_id],
        "iterations": explanation.iterations, "final_loss": explanation.loss,
        "seconds": round(explanation.seconds, 4), "heatmap": paths["heatmap"],
        "overlay": paths["overlay"], "gif": paths["gif"],
        "predictions": top5_record(model, probabilities, names)}


def explain_image(config, explainer, names, path, results):
    """All heatmaps of one image; returns how many were made."""
    model = explainer.model
    image = images.read_image(path)
    batch = images.resize(image, model.network.image_size)[None].astype(np.float32)
    prediction = explainer.predict(batch)
    probabilities = prediction.probabilities[0]
    made = 0
    ranked = model.top_classes(probabilities, config.top_k)
    for class_id in classes_to_explain(config, ranked):
        if results.is_done(path, class_id):
            continue
        frames, on_check = [[]], None
        if config.save_gif:
            frames, on_check = gif_recorder(config, [images.resize(image, GIF_SIZE)])
        [explanation] = explainer(
            batch, None if class_id is None else [[class_id]], [os.path.basename(path)],
            prediction=prediction, on_check=on_check)
        paths = write_outputs(config, path, image, explanation, frames[0])
        results.write([result_record(config, model, names, path, explanation, probabilities,
                                     paths)])
        LOG.info("%s class %s: %d iterations, loss %.6g, %.2f s", path, class_id,
                 explanation.iterations, explanation.loss, explanation.seconds)
        made += 1
    return made


def load_explainer(config, spec, num_classes, rows=1):
    """The configured L2CAF on a restored Model of `spec` with `rows` filter rows."""
    model = Model(spec, num_classes, config.layer, config.filter_type, rows=rows,
                  explain=config.explain, gpu=config.gpu)
    model.restore(config.checkpoint)
    settings = Settings.of({key: config[key] for key in Settings.keys()})
    return L2CAF(model, config.caf_variant, settings, config.cache_activation)


def run(config):
    """Explains every image of config.images; returns the list of (image, reason) failures."""
    spec, names, num_classes = prepare(config)
    paths = images.list_images(config.images)
    os.makedirs(config.output_dir, exist_ok=True)
    setup_logging(config.output_dir)
    config.save(os.path.join(config.output_dir, "config.yaml"))
    explainer = load_explainer(config, spec, num_classes)
    failures = []
    started = time.time()
    made = 0
    with ResultsFile(os.path.join(config.output_dir, "results.jsonl")) as results:
        for path in tqdm(paths, desc="images", unit="image", dynamic_ncols=True):
            try:
                made += explain_image(config, explainer, names, path, results)
            except images.ImageError as error:
                LOG.error("skipped %s", error)
                failures.append((path, str(error)))
    LOG.info("made %d heatmaps for %d images in %.1f s", made, len(paths), time.time() - started)
    print("%d heatmaps, %d images, %d failed; results in %s"
          % (made, len(paths), len(failures), os.path.join(config.output_dir, "results.jsonl")))
    return failures


def print_layers(config):
    """--list_layers: prints the network's filter insertion points; returns the exit code."""
    spec, _, num_classes = prepare(config)
    print("\n".join("%s %dx%d" % ((name,) + size) for name, size in list_layers(spec, num_classes)))
    return 0


def report_failures(failures):
    """Prints the (image, reason) failures; returns the exit code: 1 if any, else 0."""
    if not failures:
        return 0
    print("%d image(s) failed:" % len(failures), file=sys.stderr)
    for _, reason in failures:
        print("  %s" % reason, file=sys.stderr)
    return 1


def run_command(command):
    """command()'s exit code; an error the user can fix is one line on stderr (exit 2), and
    Ctrl-C tells how to continue (exit 130)."""
    try:
        return command()
    except L2CAFError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished heatmaps are saved; run the same command again to "
              "continue", file=sys.stderr)
        return 130


def main(argv=None, description=__doc__):
    config, args = parse(description, COMMON_OPTIONS, argv)
    return run_command(lambda: print_layers(config) if args.list_layers
                       else report_failures(run(config)))
