"""Slim-style network definitions that accept L2-CAF attention filters."""
