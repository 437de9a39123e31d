"""Training throughput of the experiments' own step loop, one JSON line per setup.

  python benchmarks/train_throughput.py --setup=all [--steps=N]
  python benchmarks/train_throughput.py --setup=dcgan_bf16 --steps=200
  python benchmarks/train_throughput.py --setup=mlp_deep --members=8
  python benchmarks/train_throughput.py --setup=camel --batch_size=256

Setups: dcgan_fp32, dcgan_bf16, mlp_deep, mlp, cgan, gaussian, camel.

Each setup builds its experiment's default config (the document's values), puts a
synthetic data set of the real shape on the device and times `make_run_steps`, the
loop `train_and_evaluate` runs: one warm-up dispatch of `--steps` steps (compiles),
then timed dispatches of `--steps` steps each, metrics read back once per dispatch.
It prints examples/s, steps/s, the step's FLOPs (XLA's cost analysis of the compiled
step), the GFLOP/s that makes and its fraction of the device's rate on a large fp32
matmul (measured in the same run), the device and the jax version. Other arguments are
the experiment's own flags (`--batch_size=64`). `--setup=all` runs every setup in its
own process, so that one setup's compiled programs and memory do not weigh on the next.
With `--members=N` it times a sweep group instead: N members (seeds 0..N-1) stacked
and trained as one vmapped program (`make_run_steps(members=True)`, as `--sweep` runs
them), and reports the aggregate member-steps/s beside steps/s.
"""

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time

# setup: (experiment, its flags, default --steps)
SETUPS = {
    "dcgan_fp32": ("dcgan_pokemon", ["--compute_dtype=float32"], 100),
    "dcgan_bf16": ("dcgan_pokemon", ["--compute_dtype=bfloat16"], 100),
    "mlp_deep": ("mlp_gan_mnist_deep", [], 1000),
    "mlp": ("mlp_gan_mnist", [], 1000),
    "cgan": ("cgan_mnist", [], 5000),
    "gaussian": ("gaussian_2d", [], 2500),
    "camel": ("quickdraw_camel", [], 20),
}
# MNIST setups: 60,000. The camel's 10,000 are what benchmarks/peers/torch_camel_gan.py uses.
_NUM_EXAMPLES = {"dcgan_pokemon": 40_960, "gaussian_2d": 1000, "quickdraw_camel": 10_000}
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(argv: list[str]) -> tuple[str, int | None, int, int, list[str]]:
    setup, steps, repeats, members, rest = "all", None, 3, 0, []
    for arg in argv:
        if arg in ("-h", "--help"):
            sys.exit(__doc__)
        if arg.startswith("--setup="):
            setup = arg.split("=", 1)[1]
        elif arg.startswith("--steps="):
            steps = int(arg.split("=", 1)[1])
        elif arg.startswith("--repeats="):
            repeats = int(arg.split("=", 1)[1])
        elif arg.startswith("--members="):
            members = int(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    if setup != "all" and setup not in SETUPS:
        sys.exit(f"error: --setup must be 'all' or one of {', '.join(SETUPS)}; got {setup!r}")
    if (steps is not None and steps <= 0) or repeats <= 0 or members < 0:
        sys.exit("error: --steps and --repeats must be positive, --members not negative")
    return setup, steps, repeats, members, rest


def measure(setup: str, steps: int, repeats: int, extra_flags: list[str], members: int = 0) -> dict:
    """Times `repeats` dispatches of `steps` training steps of one setup's default config
    (of `members` stacked members of it, when positive)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from absl import flags

    from gan_jax import command, parallel
    from gan_jax.data.pipeline import TrainingData
    from gan_jax.loop import default_loop, make_run_steps
    from gan_jax.schedule import make_schedule
    from gan_jax.state import build_gan, create_state, example_shape, stack_states

    experiment, experiment_flags, _ = SETUPS[setup]
    sys.path.insert(0, _REPO)  # the experiments package
    module = importlib.import_module(f"experiments.{experiment}")
    registry = flags.FlagValues()
    holders = command.define_flags(module.Settings, registry)
    registry([sys.argv[0], *experiment_flags, *extra_flags])
    settings = command.parsed_settings(module.Settings, holders)
    config = module.config(**dataclasses.asdict(settings))

    # Placed on the devices as `train` places a run (`--num_devices`; default all).
    placement = parallel.plan(
        config.num_devices,
        members or config.batch_size,
        f"{members} members" if members else f"batch_size {config.batch_size}",
        members=members > 0,
    )
    gan = dataclasses.replace(build_gan(config), batch_sharding=placement.batch_sharding)
    num_examples = _NUM_EXAMPLES.get(experiment, 60_000)
    rng = np.random.default_rng(0)
    examples = rng.integers(0, 256, (num_examples, *example_shape(gan)), np.uint8)
    labels = rng.integers(0, 10, num_examples).astype(np.int32) if config.num_classes else None
    data = placement.put_data(TrainingData(examples, labels), member_data=False)
    schedule = make_schedule(config, num_examples)
    run = make_run_steps(
        gan,
        num_examples,
        schedule.batches_per_epoch,
        max_steps=steps,
        members=members > 0,
        placement=placement,
    )
    if members:
        state = stack_states([create_state(gan, seed) for seed in range(members)])
    else:
        state = create_state(gan, config.seed)
    state = placement.put_state(state)

    start = time.perf_counter()
    state, metrics = run(state, data, jnp.asarray(steps, jnp.int32))
    jax.device_get(metrics)
    compile_and_first = time.perf_counter() - start
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = run(state, data, jnp.asarray(steps, jnp.int32))
        metrics = jax.device_get(metrics)  # the loop's one read-back per dispatch
        seconds.append(time.perf_counter() - start)
    if not np.all(np.isfinite(metrics["loss_d"])):
        raise FloatingPointError(f"{setup}: non-finite loss")
    best = min(seconds)
    step_flop = _step_flop(build_gan(config), jax.device_get(state), members)
    peak = _matmul_peak_gflops()
    achieved = step_flop * steps / best / 1e9
    return {
        "setup": setup,
        "members": members,
        "member_steps_per_s": max(members, 1) * steps / best,
        "experiment": experiment,
        "batch_size": config.batch_size,
        "compute_dtype": config.compute_dtype,
        "steps": steps,
        "steps_per_s": steps / best,
        "examples_per_s": steps * config.batch_size / best,
        "median_steps_per_s": steps / sorted(seconds)[len(seconds) // 2],
        "first_dispatch_s": compile_and_first,
        # XLA's count for one compiled training step (all members), and what that is
        # per second against a large matmul's rate on the same device in the same run.
        "step_gflop": step_flop / 1e9,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
        "loop": default_loop(gan),
        "devices": placement.num_devices,
        "device": jax.devices()[0].device_kind,
        "platform": jax.default_backend(),
        "jax": jax.__version__,
    }


def _step_flop(gan, state, members: int) -> float:
    """FLOPs of one training step, from XLA's cost analysis of the compiled `train_step`."""
    import jax
    import jax.numpy as jnp

    from gan_jax.state import example_shape, member_state
    from gan_jax.steps import train_step

    config = gan.config
    real = jnp.zeros((config.batch_size, *example_shape(gan)), jnp.float32)
    labels = jnp.zeros((config.batch_size,), jnp.int32) if config.num_classes else None
    if config.d_steps_per_g_step > 1:
        real = (real,) * config.d_steps_per_g_step
        labels = None if labels is None else (labels,) * config.d_steps_per_g_step
    one_state = member_state(state, 0) if members else state
    step = jax.jit(lambda s, x, y: train_step(gan, s, x, y))
    cost = step.lower(one_state, real, labels).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) * max(members, 1)


def _matmul_peak_gflops(size: int = 4096) -> float:
    """The device's fp32 rate on a large jitted matmul (best of 3), in GFLOP/s."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, a).block_until_ready()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    setup, steps, repeats, members, rest = _parse(sys.argv[1:])
    if setup == "all":
        for name in SETUPS:
            command = [sys.executable, __file__, f"--setup={name}", f"--repeats={repeats}"]
            command += [f"--members={members}"]
            command += [f"--steps={steps}"] if steps else []
            subprocess.run(command + rest, check=True)
        return
    result = measure(setup, steps or SETUPS[setup][2], repeats, rest, members)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
