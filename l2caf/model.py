"""A network's inference graph with one attention filter, its session and its checkpoint."""
import numpy as np

from l2caf import checkpoints
from nets import nets_factory
from nets.attention_filter import FILTER_COLLECTION, AttentionFilters
from nets.tf_slim_compat import tf


def session_config(gpu):
    """Session options: the GPU `gpu` with memory growth, or the CPU only for gpu < 0.

    On a machine without a GPU both run on the CPU.
    """
    if gpu is None or gpu < 0:
        return tf.compat.v1.ConfigProto(device_count={"GPU": 0})
    options = tf.compat.v1.GPUOptions(allow_growth=True, visible_device_list=str(gpu))
    return tf.compat.v1.ConfigProto(gpu_options=options, allow_soft_placement=True)


def list_layers(spec, num_classes):
    """The end points of `spec` where a filter can go (those with a spatial map), in order."""
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, spec.image_size, spec.image_size, 3])
        _, end_points = nets_factory.build(spec, images, num_classes)
    return [name for name, value in end_points.items() if value.shape.rank == 4
            and value.shape[1] is not None and value.shape[1] > 1]


class Model(object):
    """`spec`'s network with a filter at `layer`, in its own graph and session.

    images: placeholder of RGB images, float 0..255, [N, size, size, 3].
    outputs: what the losses see: the logits, or the pooled pre-logits features when
    explain == 'embedding'. filter: the AttentionFilter at `layer` (gate closed), with
    `rows` rows: N may be at most `rows` when the gate is open.
    """

    def __init__(self, spec, num_classes, layer="", filter_type="l2norm", rows=1,
                 explain="logits", gpu=0):
        self.spec = spec
        self.num_classes = num_classes
        self.layer = layer or spec.last_conv_end_point
        self.graph = tf.Graph()
        with self.graph.as_default():
            size = spec.image_size
            self.images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], "images")
            attention = AttentionFilters([self.layer], filter_type, rows)
            self.logits, self.end_points = nets_factory.build(
                spec, self.images, num_classes, attention)
            self.filter = attention.filters[self.layer]
            self.outputs = (self.end_points["PreLogits"] if explain == "embedding"
                            else self.logits)
            self.probabilities = tf.nn.softmax(self.logits)
            filter_variables = set(tf.compat.v1.get_collection(FILTER_COLLECTION))
            self.model_variables = [v for v in tf.compat.v1.global_variables()
                                    if v not in filter_variables]
            self._open_gate = self.filter.gate.assign(True)
            self._close_gate = self.filter.gate.assign(False)
            self._initializer = tf.compat.v1.global_variables_initializer()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config(gpu))
        self.session.run(self._initializer)

    @property
    def filter_size(self):
        """(H, W) of the filtered feature map."""
        return tuple(int(d) for d in self.filter.activation.shape[1:3])

    def restore(self, checkpoint_path):
        """Loads the network's weights; errors name the file or the variables at fault."""
        with self.graph.as_default():
            checkpoints.restore_variables(self.session, checkpoint_path, self.model_variables,
                                          network_name=self.spec.name)

    def set_gate(self, is_open):
        self.session.run(self._open_gate if is_open else self._close_gate)

    def class_output(self, class_id):
        """Output index of class id `class_id` (0..num_labels-1)."""
        return class_id + self.spec.label_offset

    def top_classes(self, probabilities, k):
        """Class ids (label offset removed) of the k most probable classes, best first."""
        scores = np.asarray(probabilities)[self.spec.label_offset:]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]

    def close(self):
        self.session.close()
