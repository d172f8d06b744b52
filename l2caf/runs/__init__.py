"""Run folders: everything that reads or writes one, and the jobs that fill them.

    folder        the format: every file name (FILES), shards, heatmap files, results lines,
                  the visualiser's folder (RunFolder), deleting a folder's files under locks
    plan          which images and classes a visualiser run explains
    read          the one reader: a run's config, results lines, scores, failures
    merge         the one shard merge, of results and of faithfulness scores
    visualize     the visualisation job (both visualisers): images in, heatmaps out
    faithfulness  the faithfulness scoring job
    localization  the localisation job: a table row per run (l2caf.evaluation.table)

No TensorFlow is imported here until a job builds a model.
"""
