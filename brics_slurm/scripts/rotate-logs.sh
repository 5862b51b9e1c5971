#!/bin/bash
# rotate-logs MAX_BYTES KEEP FILE...
# Keeps daemon logs from growing without bound. Each FILE larger than MAX_BYTES is copied to
# FILE.1 (FILE.1 moves to FILE.2 and so on; FILE.KEEP is dropped) and then emptied in place.
# In place, because the logs are single files mounted from the slurm_root volume (they cannot be
# renamed) and the daemons keep them open: slurmctld, slurmd and sshd append (O_APPEND), so after
# the truncation they write at the start of the emptied file. Lines written between the copy and the
# truncation are lost (as with logrotate's copytruncate). The copies live beside the logs in the
# container, not on the volume.
set -euo pipefail

if (($# < 3)) || [[ ! $1 =~ ^[1-9][0-9]*$ || ! $2 =~ ^[0-9]+$ ]]; then
  echo "usage: rotate-logs MAX_BYTES KEEP FILE..." >&2
  exit 2
fi
max_bytes=$1
keep=$2
shift 2

for file in "$@"; do
  [[ -f $file ]] || continue
  size=$(stat -c %s -- "$file")
  ((size > max_bytes)) || continue
  if ((keep > 0)); then
    for ((i = keep - 1; i >= 1; i--)); do
      if [[ -e $file.$i ]]; then
        mv -f -- "$file.$i" "$file.$((i + 1))"
      fi
    done
    cp -p -- "$file" "$file.1"
  fi
  : >"$file"
  echo "rotate-logs: $file reached $size bytes; kept $keep older copies" >&2
done
