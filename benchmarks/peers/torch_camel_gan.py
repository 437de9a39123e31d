"""Peer reference: Foster's convolutional GAN on Quick, Draw! camels (PyTorch), timed.

Foster, *Generative Deep Learning* ch. 4 (seed 000, Keras), as our
`experiments/quickdraw_camel.py` configures it:
- D: Conv2D filters [64, 64, 128, 128], kernel 5, strides [2, 2, 2, 1], padding
  'same', each followed by ReLU and Dropout(0.4), no BatchNorm; Flatten ->
  Dense(1). The sigmoid is in the loss (BCEWithLogitsLoss, mean).
- G: z (100, N(0, 1)) -> Dense(7*7*64) -> BatchNorm -> ReLU -> reshape to 64x7x7;
  UpSampling2D + Conv2D(128, 5), UpSampling2D + Conv2D(64, 5), Conv2DTranspose(64, 5,
  stride 1), Conv2DTranspose(1, 5, stride 1), each but the last followed by
  BatchNorm + ReLU, tanh out. BatchNorm as Keras': momentum 0.9 (PyTorch's 0.1),
  epsilon 1e-3.
- Kernels N(0, 0.02), biases zero (Keras' RandomNormal and defaults).
- RMSprop with Keras' update, g / (sqrt(v) + eps), which is PyTorch's too: alpha
  (Keras' rho) 0.9, eps 1e-7, lr 0.0008 for D and 0.0004 for G.
- One step: D on a random real batch (target 1), then D on a fake batch (target 0),
  two optimizer steps as Keras' two `train_on_batch` calls; then G through the frozen
  D on fresh latents (target 1); frozen means requires_grad off, so no D weight
  gradients are computed, as in Keras and ours. G makes D's fake batch in training
  mode (batch statistics), as ours does; Keras' `predict` uses the moving averages.

Keras' padding 'same' puts the odd padding pixel after: D's first two (stride-2)
convolutions pad 1 before and 2 after, done here by a ZeroPad2d in front of an unpadded
Conv2d, so D computes what Keras' D and ours compute. `--padding symmetric` uses PyTorch's
usual `padding=2` instead: the same output sizes and multiply-adds, the stride-2
windows shifted by one pixel. PyTorch's ConvTranspose2d flips its kernel as Keras'
Conv2DTranspose does; Flax's ConvTranspose (ours) does not, so the same weights load
into ours spatially flipped (the same layer up to that relabelling).

The data is synthetic: uniform noise in [-1, 1] of the camels' shape (1x28x28),
10,000 examples kept on the device, each step's real batch drawn with replacement
(the book's np.random.randint), so the figure is training throughput alone.

Usage: python torch_camel_gan.py [--device cpu|cuda] [--batch 64] [--steps N] [--warmup N]
Prints one JSON line with examples_per_s and steps_per_s (one step = the three updates).
"""

import argparse
import json
import time

import torch
from torch import nn

Z_DIM = 100
IMAGE_SIZE = 28
POOL = 10_000


def same_padding(size, kernel, stride):
    """Keras' padding 'same' along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_discriminator(
    filters=(64, 64, 128, 128), kernels=(5, 5, 5, 5), strides=(2, 2, 2, 1), dropout=0.4, pad="keras"
):
    layers, channels, size = [], 1, IMAGE_SIZE
    for width, kernel, stride in zip(filters, kernels, strides, strict=True):
        before, after = same_padding(size, kernel, stride)
        if pad == "symmetric":
            layers.append(nn.Conv2d(channels, width, kernel, stride, padding=kernel // 2))
        elif before == after:
            layers.append(nn.Conv2d(channels, width, kernel, stride, padding=before))
        else:
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            layers.append(nn.Conv2d(channels, width, kernel, stride))
        layers += [nn.ReLU(), nn.Dropout(dropout)]
        channels, size = width, -(-size // stride)
    layers += [nn.Flatten(), nn.Linear(channels * size * size, 1)]
    return nn.Sequential(*layers)


def batch_norm(features, dims=2):
    # Keras' momentum 0.9 keeps 0.9 of the running value; PyTorch's momentum is the rest.
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return bn(features, eps=1e-3, momentum=0.1)


def build_generator(initial=(64, 7, 7), filters=(128, 64, 64, 1), kernel=5):
    c, h, w = initial
    return nn.Sequential(
        nn.Linear(Z_DIM, c * h * w),
        batch_norm(c * h * w, dims=1),
        nn.ReLU(),
        nn.Unflatten(1, (c, h, w)),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c, filters[0], kernel, padding=kernel // 2),
        batch_norm(filters[0]),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(filters[0], filters[1], kernel, padding=kernel // 2),
        batch_norm(filters[1]),
        nn.ReLU(),
        nn.ConvTranspose2d(filters[1], filters[2], kernel, stride=1, padding=kernel // 2),
        batch_norm(filters[2]),
        nn.ReLU(),
        nn.ConvTranspose2d(filters[2], filters[3], kernel, stride=1, padding=kernel // 2),
        nn.Tanh(),
    )


def init_like_keras(module):
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


def count(net):
    return sum(p.numel() for p in net.parameters())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--padding", default="keras", choices=["keras", "symmetric"])
    a = p.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    D = build_discriminator(pad=a.padding)
    G = build_generator()
    D.apply(init_like_keras)
    G.apply(init_like_keras)
    D, G = D.to(dev).train(), G.to(dev).train()
    opt_d = torch.optim.RMSprop(D.parameters(), lr=0.0008, alpha=0.9, eps=1e-7)
    opt_g = torch.optim.RMSprop(G.parameters(), lr=0.0004, alpha=0.9, eps=1e-7)
    bce = nn.BCEWithLogitsLoss()
    pool = torch.rand((POOL, 1, IMAGE_SIZE, IMAGE_SIZE), device=dev) * 2 - 1
    ones = torch.ones((a.batch, 1), device=dev)
    zeros = torch.zeros((a.batch, 1), device=dev)

    def step():
        x = pool[torch.randint(0, POOL, (a.batch,), device=dev)]
        with torch.no_grad():
            fake = G(torch.randn(a.batch, Z_DIM, device=dev))
        # D: train_on_batch(real, 1), then train_on_batch(fake, 0).
        opt_d.zero_grad()
        loss_real = bce(D(x), ones)
        loss_real.backward()
        opt_d.step()
        opt_d.zero_grad()
        loss_fake = bce(D(fake), zeros)
        loss_fake.backward()
        opt_d.step()
        # G through the frozen D (still in training mode: dropout on) on fresh latents.
        D.requires_grad_(False)
        opt_g.zero_grad()
        loss_g = bce(D(G(torch.randn(a.batch, Z_DIM, device=dev))), ones)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        return ((loss_real + loss_fake) / 2).detach(), loss_g.detach()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss_d, loss_g = step()
    sync()
    dt = time.perf_counter() - t0
    result = {
        "peer": "foster_camel_gan_torch",
        "batch": a.batch,
        "steps": a.steps,
        "warmup": a.warmup,
        "padding": a.padding,
        "examples_per_s": round(a.steps * a.batch / dt, 1),
        "steps_per_s": round(a.steps / dt, 3),
        "loss_d": float(loss_d),
        "loss_g": float(loss_g),
        "params_g": count(G),
        "params_d": count(D),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
