#!/usr/bin/env bash
# The CPU tables of BENCHMARKS.md: our MLP GANs, cGAN and conv GANs against the PyTorch
# peers on the same CPU, one after the other.
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
# The conv GANs at batch 64 and 256, ours then the peer: D2L's DCGAN and Foster's camel
# GAN (its peer is in this repository); then each conv layer in each formulation.
for batch in 64 256; do
  python benchmarks/train_throughput.py --setup=dcgan_fp32 --batch_size=$batch --steps=2 --repeats=2
  "$peer_python" "$peer_dir/torch_d2l_dcgan.py" --device cpu --batch $batch --steps 3 --warmup 1
  python benchmarks/train_throughput.py --setup=camel --batch_size=$batch --steps=10 --repeats=2
  "$peer_python" benchmarks/peers/torch_camel_gan.py --device cpu --batch $batch
done
python benchmarks/conv_layers.py --batch=64
