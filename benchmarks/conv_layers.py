"""Forward + backward time of each convolution layer of D2L's DCGAN and Foster's camel
GAN, in each formulation of `gan_jax.models.conv_layers`, one JSON line per layer.

  python benchmarks/conv_layers.py [--batch=64] [--repeats=3]

For each layer it times `jax.grad` of sum(sin(layer(x))) with respect to input and
kernel (best of `--repeats` after one compiling call) with Flax's layer ('xla') and
with the reformulation ('phases' for 4x4 stride-2 transposed convolutions, 'patches'
otherwise), and says which one `formulation='auto'` picks on this backend. These
timings are what the rules in conv_layers.py were chosen from.
"""

import json
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conv_layers

PAD1 = ((1, 1), (1, 1))
# name: (input (H, W, C_in), layer class, features, kernel, stride, padding)
LAYERS = {
    "d2l_g_4to8": ((4, 4, 512), "transpose", 256, 4, 2, conv_layers.PHASE_PADDING),
    "d2l_g_8to16": ((8, 8, 256), "transpose", 128, 4, 2, conv_layers.PHASE_PADDING),
    "d2l_g_16to32": ((16, 16, 128), "transpose", 64, 4, 2, conv_layers.PHASE_PADDING),
    "d2l_g_32to64": ((32, 32, 64), "transpose", 3, 4, 2, conv_layers.PHASE_PADDING),
    "d2l_d_64to32": ((64, 64, 3), "conv", 64, 4, 2, PAD1),
    "d2l_d_32to16": ((32, 32, 64), "conv", 128, 4, 2, PAD1),
    "d2l_d_16to8": ((16, 16, 128), "conv", 256, 4, 2, PAD1),
    "d2l_d_8to4": ((8, 8, 256), "conv", 512, 4, 2, PAD1),
    "camel_g_14": ((14, 14, 64), "conv", 128, 5, 1, "SAME"),
    "camel_g_28": ((28, 28, 128), "conv", 64, 5, 1, "SAME"),
    "camel_d_14to7": ((14, 14, 64), "conv", 64, 5, 2, "SAME"),
    "camel_d_7to4": ((7, 7, 64), "conv", 128, 5, 2, "SAME"),
    "camel_d_4": ((4, 4, 128), "conv", 128, 5, 1, "SAME"),
}


def _time(layer: nn.Module, x: jax.Array, repeats: int) -> float:
    variables = layer.init(jax.random.key(0), x)

    def loss(params, x):
        return jnp.sum(jnp.sin(layer.apply({"params": params}, x)))

    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    jax.block_until_ready(step(variables["params"], x))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(variables["params"], x))
        seconds.append(time.perf_counter() - start)
    return min(seconds) * 1e3


def main() -> None:
    batch, repeats = 64, 3
    for arg in sys.argv[1:]:
        if arg.startswith("--batch="):
            batch = int(arg.split("=", 1)[1])
        elif arg.startswith("--repeats="):
            repeats = int(arg.split("=", 1)[1])
        else:
            sys.exit(__doc__)
    for name, (shape, kind, features, kernel, stride, padding) in LAYERS.items():
        x = jax.random.normal(jax.random.key(1), (batch, *shape))
        layer_class = conv_layers.ConvTranspose if kind == "transpose" else conv_layers.Conv
        other = "phases" if kind == "transpose" else "patches"
        times = {}
        for formulation in ("xla", other):
            layer = layer_class(
                features, (kernel, kernel), (stride, stride), padding, formulation=formulation
            )
            times[formulation] = _time(layer, x, repeats)
        auto = layer_class(features, (kernel, kernel), (stride, stride), padding)
        picks_other = auto.uses_phases(x) if kind == "transpose" else auto.uses_patches(x)
        record = {
            "layer": name,
            "batch": batch,
            "xla_ms": round(times["xla"], 1),
            f"{other}_ms": round(times[other], 1),
            "auto": other if picks_other else "xla",
            "platform": jax.default_backend(),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
