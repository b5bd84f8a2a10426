"""minivae's PixelVAE beside a PyTorch twin: the same network, weights, batches and noise.

    python benchmarks/pixelvae_twin.py [--data fashion-mnist] [--epochs 5] [--latent-dim 16]

The twin is minivae's own network translated by `minivae.torch_bridge.to_torch` (the same modules
and state-dict keys: masks as fixed tensors, conv2d with W·mask, the same shift down, gates, z
biases and encoder), with the training objective written here. Both train from the same initial
weights on the same binarised batches with the same eps: the twin draws everything from a NumPy
generator in the order minivae's `train.fit` does, so the two runs differ only by floating-point
rounding. Prints, per epoch, each one's training seconds
(evaluation excluded) and test −ELBO, and at the end the difference and the time ratio at equal
threads. tests/test_pixelvae_twin.py uses `twin` to check logits, loss and gradients agree.
Needs torch (pip install torch); it is never a dependency of minivae.
"""
import argparse
import math
import time

import numpy as np

from minivae import data, get_num_threads, optim
from minivae.models.pixelvae import PixelVAE
from minivae.train import fit


def twin(model: PixelVAE, dtype=None):
    """A torch.nn.Module computing model's loss, with model's weights: its encoder and PixelCNN
    by minivae.torch_bridge, the training objective (KL weight, free bits) written here."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from minivae.torch_bridge import to_torch

    class TwinPixelVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.d = model.config.latent_dim
            if self.d:
                self.encoder = to_torch(model.encoder)
            self.decoder = to_torch(model.decoder)
            if getattr(model, "z_map", None) is not None:  # conditioning 'map': z's maps m(z)
                self.z_map = to_torch(model.z_map)

        def loss(self, x, eps, kl_weight=1.0, free_bits=0.0):
            """(objective, rec, kl) per image, as PixelVAE.loss with the given eps (B, d)."""
            if not self.d:
                rec = F.binary_cross_entropy_with_logits(self.decoder(x), x, reduction="sum")
                rec = rec / len(x)
                return rec, rec, rec * 0
            mu, log_var = self.encoder(x).split(self.d, dim=1)
            z = mu + torch.exp(0.5 * log_var) * eps
            logits = self.decoder(x, self.z_map(z) if hasattr(self, "z_map") else z)
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
            kl_j = 0.5 * (mu ** 2 + torch.expm1(log_var) - log_var).sum(0) / len(x)  # (d,)
            charged = torch.clamp(kl_j, min=free_bits).sum() if free_bits else kl_j.sum()
            return rec + kl_weight * charged, rec, kl_j.sum()

    net = TwinPixelVAE().to(dtype or torch.float32)
    ours = model.state_dict()
    if set(net.state_dict()) != set(ours):
        raise KeyError(f"twin keys differ: {sorted(set(net.state_dict()) ^ set(ours))}")
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in ours.items()})
    return net


def train_twin(net, model, x_train, x_test, epochs, batch_size, lr, seed, log=print):
    """train.fit's loop in PyTorch, drawing from the same NumPy generator in the same order:
    shuffle, binarise, eps; the same warm-up; the same test binarisation and eval draws."""
    import torch
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    x_test = data.binarize(x_test, np.random.default_rng([seed, 1]))
    d, history = model.config.latent_dim, []
    for epoch in range(1, epochs + 1):
        steps = math.ceil(len(x_train) / batch_size)
        start, total_train = time.perf_counter(), 0.0
        for step, x in enumerate(data.batches(x_train, batch_size, rng), start=1):
            model.schedule(epoch - 1 + step / steps)  # the KL weight fit would use
            x = data.binarize(x, rng)
            eps = rng.standard_normal((len(x), d), dtype=np.float32)
            loss = net.loss(torch.from_numpy(x), torch.from_numpy(eps), model.kl_weight,
                            model.config.free_bits)[0]
            total_train += loss.item() * len(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        train_loss = total_train / len(x_train)
        eval_rng, total = np.random.default_rng([seed, 2, epoch]), 0.0
        with torch.no_grad():
            for x in data.batches(x_test, 500):
                eps = eval_rng.standard_normal((len(x), d), dtype=np.float32)
                _, rec, kl = net.loss(torch.from_numpy(x), torch.from_numpy(eps))
                total += (rec + kl).item() * len(x)
        history.append({"seconds": seconds, "train_loss": train_loss, "test_loss": total / len(x_test)})
        log(f"  torch epoch {epoch}: {seconds:.1f}s  test -ELBO {history[-1]['test_loss']:.2f}")
    return history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=data.NAMES)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--free-bits", type=float, default=0.0)
    parser.add_argument("--out", default=None, help="also save minivae's run (checkpoint) here")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(get_num_threads())  # as many threads as minivae's workers
    (x_train, _), (x_test, _) = data.load(args.data)
    x_train, x_test = data.to_float(x_train), data.to_float(x_test)
    print(f"PixelVAE on {args.data}: {len(x_train)} train / {len(x_test)} test, {args.epochs} "
          f"epochs, batch {args.batch_size}, Adam {args.lr}, {get_num_threads()} threads each")

    def build():
        return PixelVAE.gated(args.latent_dim, args.channels, args.layers, warmup=args.warmup,
                              free_bits=args.free_bits,
                              rng=np.random.default_rng(args.seed))

    theirs = train_twin(twin(build()), build(), x_train, x_test, args.epochs, args.batch_size,
                        args.lr, args.seed)
    model = build()
    ours = fit(model, optim.Adam(model.parameters(), lr=args.lr), x_train, x_test,
               epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, binarize=True,
               on_step=model.schedule, out=args.out)
    print("epoch   minivae s   torch s   ratio   minivae -ELBO   torch -ELBO")
    for e, (a, b) in enumerate(zip(ours, theirs), start=1):
        print(f"{e:5d}   {a['seconds']:9.1f}   {b['seconds']:7.1f}   {a['seconds'] / b['seconds']:5.2f}"
              f"   {a['test_loss']:13.2f}   {b['test_loss']:11.2f}")
    diff = ours[-1]["test_loss"] - theirs[-1]["test_loss"]
    ratio = np.mean([h["seconds"] for h in ours]) / np.mean([h["seconds"] for h in theirs])
    print(f"difference minivae − torch: {diff:+.2f} nats (within 1 nat: {abs(diff) <= 1}); "
          f"seconds per epoch ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
