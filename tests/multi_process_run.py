"""One process of a 2-process run on this machine (JAX's distributed runtime on CPU).

Run by tests/parallel_test.py, twice at once (process ids 0 and 1), each process with
2 fake CPU devices: the run's mesh has 4 devices. Trains a few steps of the deep MLP
GAN in WORKDIR and prints the digest of the state this process ends with, and which
rows of the training set it read.

Usage: python tests/multi_process_run.py COORDINATOR_ADDRESS PROCESS_ID MNIST_DATA_DIR WORKDIR
"""

import json
import mmap
import sys

import numpy as np

from gan_jax import distributed

ROWS_READ: list[int] = []


def _is_mapped(array: object) -> bool:
    while array is not None:
        if isinstance(array, np.memmap | mmap.mmap):
            return True
        array = getattr(array, "base", None)
    return False


class _RecordingRows(np.ndarray):
    """The training images, recording every row that is read from them."""

    def __getitem__(self, index):
        rows = index[0] if isinstance(index, tuple) else index
        ROWS_READ.extend(np.arange(len(self))[rows].ravel().tolist())
        return np.asarray(self)[index]


def main(address: str, process_id: str, mnist_dir: str, workdir: str) -> None:
    distributed.initialize(address, 2, int(process_id), timeout_s=60)
    import jax

    from experiments import mlp_gan_mnist_deep
    from gan_jax import train
    from gan_jax.checkpoint import state_digest

    load = train.load_training_data

    def load_recording(*args, **kwargs):
        data = load(*args, **kwargs)
        assert _is_mapped(data.examples)  # read from disk only where indexed
        return data._replace(examples=data.examples.view(_RecordingRows))

    train.load_training_data = load_recording
    config = mlp_gan_mnist_deep.config(
        data_dir=mnist_dir, num_examples=400, batch_size=100, num_epochs=2
    )
    state = train.train_and_evaluate(config, workdir)
    devices = len(jax.tree.leaves(state.generator.params)[0].sharding.device_set)
    report = {"digest": state_digest(state), "devices": devices, "step": int(state.step)}
    print(json.dumps({**report, "rows_read": sorted(set(ROWS_READ))}))


if __name__ == "__main__":
    main(*sys.argv[1:])
