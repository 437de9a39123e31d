#!/usr/bin/env bash
# The CPU table of BENCHMARKS.md: our MLP GAN, deep MLP GAN and cGAN steps against the
# PyTorch peers on the same CPU, one after the other.
#
#   PEER_PYTHON=/path/to/venv-with-torch/bin/python bash benchmarks/cpu_suite.sh
# PEER_PYTHON needs torch (CPU build) and numpy; PEER_DIR holds ../shared/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
peer_python=${PEER_PYTHON:?set PEER_PYTHON to a Python with torch}
peer_dir=${PEER_DIR:-../shared/bench}
nproc
python -c "import jax; print('jax', jax.__version__, jax.devices())"
for setup in mlp_deep mlp cgan; do
  python benchmarks/train_throughput.py --setup=$setup
done
"$peer_python" "$peer_dir/torch_mlp_gan.py" --device cpu
"$peer_python" "$peer_dir/torch_cgan.py" --device cpu
# Foster's camel GAN at batch 64 and 256 (the peer is in this repository), ours then theirs.
for batch in 64 256; do
  python benchmarks/train_throughput.py --setup=camel --batch_size=$batch --steps=10
  "$peer_python" benchmarks/peers/torch_camel_gan.py --device cpu --batch $batch
done
