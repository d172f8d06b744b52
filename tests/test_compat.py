"""The tf-slim / TF >= 2.16 fix and the quiet import."""
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT


def test_slim_batch_norm_builds_and_runs():
    import numpy as np
    from nets.tf_slim_compat import slim, tf
    with tf.Graph().as_default():
        inputs = tf.compat.v1.placeholder(tf.float32, [2, 3, 3, 4])
        outputs = slim.batch_norm(inputs, is_training=False, scale=True)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
            result = session.run(outputs, {inputs: values})
    # Fresh moving statistics (mean 0, variance 1): BN is x / sqrt(1 + epsilon).
    np.testing.assert_allclose(result, values / np.sqrt(1 + 0.001), rtol=1e-5)


def test_the_old_module_path_is_importable_after_the_fix():
    import importlib
    import nets.tf_slim_compat  # noqa: F401
    module = importlib.import_module("tf_keras.legacy_tf_layers.normalization")
    assert hasattr(module, "BatchNormalization")


@pytest.mark.slow
def test_plain_tf_slim_fails_without_the_fix_and_works_with_it():
    # Proves the fix is needed on this TensorFlow (and that it is what makes slim work).
    code = ("import tensorflow as tf, tf_slim as slim\n"
            "tf.compat.v1.disable_eager_execution()\n"
            "slim.batch_norm(tf.compat.v1.placeholder(tf.float32, [1, 2, 2, 3]))\n")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=REPO_ROOT)
    fixed = subprocess.run([sys.executable, "-c", "import nets.tf_slim_compat\n" + code],
                           capture_output=True, text=True, cwd=REPO_ROOT)
    assert fixed.returncode == 0, fixed.stderr
    assert plain.returncode != 0 and "legacy_tf_layers" in plain.stderr


@pytest.mark.slow
def test_import_prints_nothing():
    result = subprocess.run(
        [sys.executable, "-c", "from nets.tf_slim_compat import tf, slim"],
        capture_output=True, text=True, cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if k != "L2CAF_TF_VERBOSE"})
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""
