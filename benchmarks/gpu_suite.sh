#!/usr/bin/env bash
# GPU call 1 (after benchmarks/gpu_carry.sh on the development machine):
#   run(command="bash benchmarks/gpu_suite.sh", carry=[".peer", ".whl", ".gpu_mnist"])
# Our training throughput for every setup, then the PyTorch peer references, on the
# same machine (the GPU table of BENCHMARKS.md); then MNIST prepared from the carried
# wheel and a full 100-epoch run of the lecture's deep MLP GAN, timed end to end.
set -uo pipefail
cd "$(dirname "$0")/.."
. benchmarks/gpu_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"
python3 benchmarks/train_throughput.py --setup=all
# Sweeps: 64 deep MLP GAN members in one program against one run.
python3 benchmarks/train_throughput.py --setup=mlp_deep --members=64
python3 benchmarks/train_throughput.py --setup=gaussian --members=64
python3 .peer/torch_d2l_dcgan.py --variant eager
python3 .peer/torch_d2l_dcgan.py --variant amp_cl
python3 .peer/torch_mlp_gan.py
python3 .peer/torch_cgan.py
python3 -m gan_jax.data.prepare mnist --cache_dir=.gpu_mnist
start=$(date +%s)
python3 experiments/mlp_gan_mnist_deep.py --workdir=.gpu_data/runs/mlp_gan_mnist_deep 2>&1 | grep -E "epoch (1|100)/|error"
echo "mlp_gan_mnist_deep 100 epochs: $(( $(date +%s) - start )) s end to end"
cp .gpu_data/runs/mlp_gan_mnist_deep/samples/epoch_0100.png "${OUT:-/tmp}/mlp_gan_mnist_deep_gpu.png"
