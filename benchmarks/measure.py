"""Runs some measurements of one network and writes their raw timings (used by run.py).

    python -m benchmarks.measure TASK_JSON RESULT_PATH

benchmarks/run.py starts this in fresh processes, so that a measurement's memory counts in
no other's except where it says so. TASK_JSON holds network, gpu, repeats, measurements
(each: key, label, mode, layer, batch, cache_activation, iterations, masked_batch and,
with iterations, extrapolate_to; see run.py's `plan`),
and for the progress lines first_number and count (the measurements' numbers among the
network's). RESULT_PATH receives the device, the machine, the process's peak memory after
its imports and, per measurement, the seconds of each repeat (for L2-CAF also the seconds
per iteration), the channels of the layer's activation and the process's peak memory at its
end.
"""
import dataclasses
import json
import resource
import sys
import time

import numpy as np

from benchmarks import common
from l2caf import data, networks
from l2caf.methods import METHODS, L2CAF, OptiCAM, ScoreCAM
from l2caf.models.slim import Model
from l2caf.settings import Settings
from nets.tf_slim_compat import tf

# Keras networks measured beside the slim ones: keras.applications models with random
# weights at 224x224 (name: (keras.applications function, its preprocessing)).
KERAS_NETWORKS = {"keras_resnet50": ("ResNet50", "caffe"),
                  "keras_mobilenet_v2": ("MobileNetV2", "tf")}

# The warm-up run of an L2-CAF measurement: the first calls build TensorFlow's executors for
# these feeds and shapes; iterations need no warming, so a short run does.
WARM_UP_ITERATIONS = 2
# Convergence checks per measured run: the time per iteration is taken between the first and
# the last, free of the per-batch costs (forward pass, loss terms, executor set-up).
CHECKS_PER_RUN = 4


def peak_rss_mb():
    """The process's peak resident memory so far, in MB (ru_maxrss: KiB on Linux, bytes on
    macOS). It never decreases: TensorFlow's CPU allocator keeps the memory it has used."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 ** 2 if sys.platform == "darwin" else 1024.0)


def convergence_off_settings(iterations):
    """The paper's settings for `iterations` iterations, with a tolerance no loss change is
    below (0: a row stops when its loss moved less than the tolerance): every row runs them
    all, with CHECKS_PER_RUN checks on the way."""
    return Settings(max_iters=iterations, check_every=max(1, iterations // CHECKS_PER_RUN),
                    tolerance=0.0)


class OptiCAMToTheEnd(OptiCAM):
    """Opti-CAM whose rows run every iteration: on random weights a row's loss may rise at a
    check, which would stop it (its cost per iteration is the same: the loop runs every row
    until all stop)."""

    def loop(self):
        return dataclasses.replace(OptiCAM.loop(self), stop="settled", tolerance=0.0)


def input_gradients(model):
    """A function of (images, output weights) that runs the whole network on the images
    forwards and backwards down to them, as each Opti-CAM iteration does: the gradient of
    the weighted logits with respect to the images."""
    if isinstance(model, Model):
        with model.graph.as_default():
            images = tf.compat.v1.placeholder(tf.float32, [None] + list(model.input_shape))
            weights = tf.compat.v1.placeholder(tf.float32, [None, model.num_classes])
            gradient = tf.gradients(tf.reduce_sum(weights * model.logits_of(images)), images)[0]
        return lambda values, output_weights: model.session.run(
            gradient, {images: values, weights: output_weights})

    @tf.function
    def keras_gradient(values, output_weights):
        with tf.GradientTape() as tape:
            tape.watch(values)
            score = tf.reduce_sum(output_weights * model.logits_of(values))
        return tape.gradient(score, values)
    return lambda values, output_weights: keras_gradient(
        tf.constant(values), tf.constant(output_weights)).numpy()


class Workload(object):
    """A measurement's model, explainer and input batch (random images, seeded), and one
    timed pass over the batch."""

    def __init__(self, measurement, network, gpu):
        self.mode = measurement["mode"]
        batch = measurement["batch"]
        self.model = build_model(network, measurement["layer"],
                                 batch if self.mode in ("fast", "opticam") else 1, gpu)
        size = self.model.image_size
        self.images = np.random.default_rng(0).uniform(
            0, 255, (batch, size, size, 3)).astype(np.float32)
        self.keys = ["image_%d" % index for index in range(batch)]
        self.classes = [[index % self.model.num_labels] for index in range(batch)]
        self.explainer = self.gradients = None
        if self.mode == "forward_backward":
            self.gradients = input_gradients(self.model)
            self.output_weights = np.eye(self.model.num_classes, dtype=np.float32)[
                [self.model.class_output(c) for [c] in self.classes]]
        elif self.mode == "opticam":
            self.explainer = OptiCAMToTheEnd(self.model, max_iters=measurement["iterations"])
        elif self.mode in ("slow", "fast"):
            self.explainer = L2CAF(self.model, "cls_specific",
                                   convergence_off_settings(measurement["iterations"]),
                                   measurement["cache_activation"])
        elif self.mode == "scorecam":
            self.explainer = ScoreCAM(self.model, batch_size=measurement["masked_batch"])
        elif self.mode != "forward":
            self.explainer = METHODS[self.mode](self.model)

    def warm_up(self, iterations):
        """A first run, untimed: TensorFlow builds its executors for these shapes. Score-CAM's
        is a forward pass of the image and one of a batch of masked inputs (a whole run would
        be one forward pass per channel)."""
        if self.mode != "scorecam":
            return self.run(iterations)
        self.model.predict(self.images)
        self.model.class_probabilities(np.repeat(self.images, self.explainer.batch_size, 0))

    def channels(self):
        """The channels of the activation at the layer."""
        return int(self.model.predict(self.images[:1]).activation.shape[-1])

    def run(self, iterations):
        """(seconds for the batch, seconds per iteration or None): the forward pass alone, or
        the forward pass then the explanations, as the visualisers make them."""
        if self.explainer is None:
            started = time.perf_counter()
            if self.gradients is not None:
                self.gradients(self.images, self.output_weights)
            else:
                self.model.predict(self.images)
            return time.perf_counter() - started, None
        if iterations and self.mode == "opticam":
            self.explainer.max_iters = iterations
        elif iterations:
            self.explainer.settings = convergence_off_settings(iterations)
        checks = []
        started = time.perf_counter()
        prediction = self.explainer.predict(self.images)
        explanations = self.explainer(
            self.images, self.classes, self.keys, prediction=prediction,
            on_check=lambda updates, *_: checks.append((updates, time.perf_counter())))
        seconds = time.perf_counter() - started
        if not iterations:
            return seconds, None
        if any(explanation.iterations != iterations for explanation in explanations):
            raise RuntimeError("a filter stopped before %d iterations; the benchmark needs "
                               "convergence off" % iterations)
        (first_iteration, first_time), (last_iteration, last_time) = checks[0], checks[-1]
        return seconds, (last_time - first_time) / (last_iteration - first_iteration)

    @staticmethod
    def device():
        """'GPU' when TensorFlow has one (it then places the network there)."""
        return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"

    def close(self):
        self.model.close()


def build_model(network, layer, rows, gpu):
    """An l2caf model of `network` (a slim network or a KERAS_NETWORKS name) with random
    weights. Networks sized by their label list (the demo) get ImageNet's classes."""
    if network in KERAS_NETWORKS:
        import keras
        from l2caf.models.keras import KerasModel
        function, preprocess = KERAS_NETWORKS[network]
        keras_model = getattr(keras.applications, function)(weights=None)
        return KerasModel(keras_model, layer, rows=rows, preprocess=preprocess, gpu=gpu,
                          name=network)
    spec = networks.get_network(network)
    return Model(spec, spec.num_classes or len(data.class_names()), layer, rows=rows, gpu=gpu)


def measure(measurement, network, gpu, repeats, progress):
    """One measurement: a warm-up run, then `repeats` timed runs; and the process's peak
    memory at its end."""
    iterations = measurement["iterations"]
    stopwatch = common.Stopwatch()
    workload = Workload(measurement, network, gpu)
    try:
        progress("model built in %.1f s; warm-up" % stopwatch.seconds())
        workload.warm_up(WARM_UP_ITERATIONS if iterations else None)
        samples = []
        for repeat in range(repeats):
            samples.append(workload.run(iterations))
            progress("repeat %d/%d: %.3f s" % (repeat + 1, repeats, samples[-1][0]))
        device, layer = workload.device(), workload.model.layer
        image_size, num_classes = workload.model.image_size, workload.model.num_classes
        channels = workload.channels()
        # Built with the default layer when none is given: the last conv layer.
        last_conv = None if measurement["layer"] else layer
    finally:
        workload.close()
    return dict(measurement, layer=None if measurement["mode"] == "forward" else layer,
                device=device, image_size=image_size, num_classes=num_classes,
                channels=channels,
                last_conv_layer=last_conv, batch_seconds=[seconds for seconds, _ in samples],
                iteration_seconds=[per_iteration for _, per_iteration in samples]
                if iterations else None,
                peak_rss_mb=peak_rss_mb())


def machine():
    """The hardware and software the numbers were measured on (common.machine), with the
    GPUs TensorFlow sees and its version."""
    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    return common.machine(gpus=gpus, tensorflow=tf.__version__, numpy=np.__version__)


def measure_network(task):
    """Runs the task's measurements of its network, in order; returns the raw results.

    The process's peak memory only grows, so a measurement's peak_rss_mb is its own need only
    where it is above the previous one's (run.py orders the measurements by growing need)."""
    network = task["network"]
    baseline = peak_rss_mb()
    results = []
    for number, measurement in enumerate(task["measurements"], task["first_number"]):
        details = ["batch %d" % measurement["batch"]]
        if measurement["mode"] != "forward":
            details.insert(0, "layer %s" % (measurement["layer"] or "the last conv layer"))
        if measurement["iterations"]:
            details.append("%d iterations" % measurement["iterations"])
        common.log("[%s %d/%d] %s: %s" % (network, number, task["count"],
                                          measurement["label"], ", ".join(details)))
        results.append(measure(measurement, network, task["gpu"], task["repeats"],
                               lambda message: common.log("    " + message)))
    return {"network": network, "image_size": results[0]["image_size"],
            "num_classes": results[0]["num_classes"],
            "last_conv_layer": results[0]["last_conv_layer"],
            "device": results[0]["device"], "machine": machine(), "baseline_rss_mb": baseline,
            "measurements": results}


def main(argv):
    task_json, result_path = argv
    result = measure_network(json.loads(task_json))
    with open(result_path, "w") as stream:
        json.dump(result, stream)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
