"""Speed and memory of the explanation modes against the forward pass: benchmarks/run.py."""
