"""One process of a 2-process run on this machine (JAX's distributed runtime on CPU).

Run by tests/parallel_test.py, twice at once (process ids 0 and 1), each process with
2 fake CPU devices: the run's mesh has 4 devices. Trains a few steps of the deep MLP
GAN in WORKDIR and prints the digest of the state this process ends with.

Usage: python tests/multi_process_run.py COORDINATOR_ADDRESS PROCESS_ID MNIST_DATA_DIR WORKDIR
"""

import json
import sys

from gan_jax import distributed


def main(address: str, process_id: str, mnist_dir: str, workdir: str) -> None:
    distributed.initialize(address, 2, int(process_id), timeout_s=60)
    import jax

    from experiments import mlp_gan_mnist_deep
    from gan_jax.checkpoint import state_digest
    from gan_jax.train import train_and_evaluate

    config = mlp_gan_mnist_deep.config(
        data_dir=mnist_dir, num_examples=400, batch_size=100, num_epochs=2
    )
    state = train_and_evaluate(config, workdir)
    devices = len(jax.tree.leaves(state.generator.params)[0].sharding.device_set)
    print(json.dumps({"digest": state_digest(state), "devices": devices, "step": int(state.step)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
