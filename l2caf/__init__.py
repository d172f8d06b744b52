"""L2-CAF: constrained attention filters that show what a pretrained CNN looks at."""
__version__ = "0.1.0"
