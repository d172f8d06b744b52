"""Pictures of run folders: comparison figures, the curves beside an evaluation table, and a
report page. matplotlib (on an Agg canvas, no display, pyplot never imported) and plain
HTML with a small script; no TensorFlow. Run folders are read through l2caf.runs.

  pictures  a run folder as the pictures read it: one Entry per heatmap, with its box and IoU
  figure    comparison figures (scripts/make_figure.py)
  curves    MaxBoxAcc against the threshold; mean deletion and insertion curves
  page      the report page (scripts/make_report.py)
  drawing   the shared matplotlib settings: figures, colour maps, box colours, saving
  browser   a page as headless Chromium shows it: screenshot, DOM (tests, benchmarks)
"""
