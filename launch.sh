#!/usr/bin/env bash
# Launches gan_jax experiments.
#
#   ./launch.sh run EXPERIMENT [FLAGS...]          one run, e.g. ./launch.sh run gaussian_2d --seed=3
#   ./launch.sh seeds EXPERIMENT "0 1 2" [FLAGS...] one run per seed, workdir runs/EXPERIMENT/seed_N
#   ./launch.sh sweep EXPERIMENT SPEC [FLAGS...]   a sweep, e.g. sweep gaussian_2d 'lr_d=0.02,0.05;seed=0:8'
#   ./launch.sh local N EXPERIMENT [FLAGS...]      one run as N processes on this machine (jax.distributed)
#   ./launch.sh slurm EXPERIMENT [FLAGS...]        one run across the job's nodes (srun, a task per node)
#
# A run uses every device of its processes (data parallel; see the README's "Many devices").
# EXPERIMENT is a file name under experiments/ without .py. Every run resumes from
# its workdir's latest checkpoint, so rerunning a command continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
mode=$1
if [ "$mode" = local ]; then
  [ $# -ge 3 ] || usage
  processes=$2 experiment=$3
  shift 3
else
  experiment=$2
  shift 2
fi
script="experiments/${experiment}.py"
[ -f "$script" ] || { echo "error: no experiment '$experiment' (have: $(ls experiments | sed -n 's/\.py$//p' | tr '\n' ' '))" >&2; exit 2; }
python=${PYTHON:-python3}

case "$mode" in
  run)
    exec "$python" "$script" "$@" ;;
  seeds)
    [ $# -ge 1 ] || usage
    seeds=$1
    shift
    for seed in $seeds; do
      echo "== $experiment seed $seed" >&2
      "$python" "$script" --seed="$seed" --workdir="runs/${experiment}/seed_${seed}" "$@"
    done ;;
  sweep)
    [ $# -ge 1 ] || usage
    spec=$1
    shift
    exec "$python" "$script" --sweep="$spec" --workdir="runs/${experiment}_sweep" "$@" ;;
  slurm)
    command -v srun >/dev/null || { echo "error: srun not found (not on a SLURM cluster?)" >&2; exit 2; }
    # The tasks join one run: gan_jax.distributed reads SLURM's environment.
    exec srun --ntasks-per-node=1 "$python" "$script" "$@" ;;
  local)
    port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    join=(--coordinator_address="127.0.0.1:$port" --num_processes="$processes")
    others=()
    for ((i = 1; i < processes; i++)); do
      "$python" "$script" "${join[@]}" --process_id="$i" "$@" &
      others+=($!)
    done
    status=0
    "$python" "$script" "${join[@]}" --process_id=0 "$@" || status=$?
    for pid in "${others[@]}"; do wait "$pid" || status=$?; done
    exit "$status" ;;
  *)
    usage ;;
esac
