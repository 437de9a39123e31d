# Sourced by the GPU scripts: the wheels of .whl/ on top of the GPU image's packages.
# .gpu_site/ is git-ignored, so it stays on the device between calls while it is warm.
if [ ! -f .gpu_site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target .gpu_site .whl/*.whl && touch .gpu_site/.done || exit 1
fi
export PYTHONPATH=$PWD/.gpu_site:$PWD TFDS_DATA_DIR=$PWD/.gpu_data
