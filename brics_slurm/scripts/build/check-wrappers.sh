#!/bin/sh
# check-wrappers.sh <bin_dir>
# The slurmspawner_wrappers console scripts in <bin_dir> exist, and the query and cancel wrappers
# start and refuse to run without SLURMSPAWNER_JOB_ID (their only input), which proves they run
# their own code without touching Slurm. sbatch is not run here (it would submit a job); the
# install step already checked that its script imports.
set -eu
bin=$1
for s in sbatch squeue scancel; do
  if [ ! -x "$bin/slurmspawner_$s" ]; then
    echo "check-wrappers: FAILED: slurmspawner_wrappers: $bin/slurmspawner_$s is missing" >&2
    exit 1
  fi
done
for s in squeue scancel; do
  if out=$(env -u SLURMSPAWNER_JOB_ID "$bin/slurmspawner_$s" </dev/null 2>&1); then
    echo "check-wrappers: FAILED: slurmspawner_wrappers: slurmspawner_$s ran without SLURMSPAWNER_JOB_ID: $out" >&2
    exit 1
  fi
  case "$out" in
    *SLURMSPAWNER_JOB_ID*) echo "check-wrappers: slurmspawner_$s starts and asks for SLURMSPAWNER_JOB_ID" ;;
    *)
      echo "check-wrappers: FAILED: slurmspawner_wrappers: slurmspawner_$s did not start: $out" >&2
      exit 1
      ;;
  esac
done
