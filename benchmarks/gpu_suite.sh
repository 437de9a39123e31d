#!/usr/bin/env bash
# The GPU table of BENCHMARKS.md in one device call: our training throughput for every
# setup, then the PyTorch peer references, on the same machine.
#
# Before the call (on the development machine, repo root):
#   mkdir -p .peer .whl && cp ../shared/bench/*.py .peer/
#   pip download --no-deps --only-binary=:all: -d .whl tensorboardX   # not in the GPU image
#   (.peer/ and .whl/ are listed in .git/info/exclude)
# The call:  run(command="bash benchmarks/gpu_suite.sh", carry=[".peer", ".whl"])
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"
python3 benchmarks/train_throughput.py --setup=all
python3 .peer/torch_d2l_dcgan.py --variant eager
python3 .peer/torch_d2l_dcgan.py --variant amp_cl
python3 .peer/torch_mlp_gan.py
python3 .peer/torch_cgan.py
