#!/bin/bash
# Submits a whole sweep to Slurm: a job array of TASKS GPU tasks (slurm_sweep.sbatch), then
# the merge and the evaluation (slurm_merge_evaluate.sbatch), which starts once every task
# has ended. From the repository root:
#   scripts/cluster/submit_slurm.sh configs/resnet50_v2_fast.yaml data/imagenet/val 8
# Arguments: CONFIG ANNOTATIONS [TASKS (default 8)]. Prints the two job ids.
set -euo pipefail
config=${1:?usage: submit_slurm.sh CONFIG ANNOTATIONS [TASKS]}
annotations=${2:?usage: submit_slurm.sh CONFIG ANNOTATIONS [TASKS]}
tasks=${3:-8}
here=$(dirname "$0")
# The config's output_dir, read as the visualiser reads it (no TensorFlow needed).
output_dir=$(python -c '
import sys
from l2caf import config
values = config.defaults(config.options(config.FAST_DEFAULTS))
values.update(config.read_yaml(sys.argv[1], config.options(config.FAST_DEFAULTS)))
print(values.output_dir)' "$config")
sweep=$(sbatch --parsable --array="0-$((tasks - 1))" "$here/slurm_sweep.sbatch" "$config")
sweep=${sweep%%;*}
evaluate=$(sbatch --parsable --dependency="afterany:$sweep" "$here/slurm_merge_evaluate.sbatch" \
    "$output_dir" "$annotations")
echo "sweep: job array $sweep ($tasks tasks) into $output_dir; merge and evaluation: job ${evaluate%%;*}"
