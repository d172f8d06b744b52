"""What each network expects of RGB images 0..255, in one place.

A network's input ("the network input") is its preprocessing applied to the RGB image:

    inception          x / 255 - 0.5, times 2 (-1..1): the slim InceptionV1 and ResNet-V2
    imagenet_mean_std  (x / 255 - mean) / std, ImageNet's mean and std: the slim DenseNets
    none               x as it is: Keras models that preprocess inside themselves
    tf                 x / 127.5 - 1 (-1..1): keras.applications' 'tf' mode
    caffe              BGR, minus ImageNet's BGR means: keras.applications' 'caffe' mode
    torch              (x / 255 - mean) / std: keras.applications' 'torch' mode

`preprocess` takes numpy arrays and TensorFlow tensors alike (the same operations on both),
`unpreprocess` inverts it on numpy arrays. The network input's zero (what deletion sets
pixels to, what Score-CAM's and Average Drop's masks multiply towards) is the preprocessing's
zero: mid-grey for inception and tf, the ImageNet mean colour for the others, black for none.
No TensorFlow here.
"""
import numpy as np

SLIM_PREPROCESSING = ("inception", "imagenet_mean_std")
KERAS_PREPROCESSING = ("none", "tf", "caffe", "torch")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)


def preprocess(images, preprocessing):
    """RGB images, float 0..255, [..., 3] -> the network input (numpy array or tensor)."""
    if preprocessing == "inception":
        return (images / 255.0 - 0.5) * 2.0
    if preprocessing in ("imagenet_mean_std", "torch"):
        return (images / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    if preprocessing == "tf":
        return images / 127.5 - 1.0
    if preprocessing == "caffe":
        return images[..., ::-1] - CAFFE_BGR_MEAN
    if preprocessing == "none":
        return images
    raise ValueError("unknown preprocessing %r" % (preprocessing,))


def unpreprocess(inputs, preprocessing):
    """The network input -> RGB images, float32 0..255 (numpy): `preprocess` inverted."""
    inputs = np.asarray(inputs, np.float32)
    if preprocessing == "inception":
        return (inputs / 2.0 + 0.5) * 255.0
    if preprocessing in ("imagenet_mean_std", "torch"):
        return (inputs * IMAGENET_STD + IMAGENET_MEAN) * 255.0
    if preprocessing == "tf":
        return (inputs + 1.0) * 127.5
    if preprocessing == "caffe":
        return np.ascontiguousarray((inputs + CAFFE_BGR_MEAN)[..., ::-1])
    if preprocessing == "none":
        return inputs
    raise ValueError("unknown preprocessing %r" % (preprocessing,))
