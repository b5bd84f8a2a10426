"""minivae's VAE against a PyTorch twin: same network, same recipe, same data, one run.

    python benchmarks/vae_quality.py [--data fashion-mnist] [--epochs 10] [--conv] [--iwae-k 1000]

The recipe is pytorch/examples' VAE: Adam 1e-3, batch 128, pixels in [0, 1], Bernoulli
likelihood, one z sample per image; the published figure is about 105.5 nats test loss on MNIST
after 10 epochs. Prints test −ELBO (nats per image) and seconds per epoch for both, and the
difference, which should stay within 1 nat. Needs torch (pip install torch); minivae's half runs
without it.
"""
import argparse
import time

import numpy as np

from minivae import data, get_num_threads, optim
from minivae.metrics import iwae_nll
from minivae.models.vae import VAE
from minivae.train import fit
from twins import torch_vae, train_epoch_vae  # the PyTorch twin, shared with the other benchmarks


def train_torch(x_train, x_test, epochs, batch_size, latent_dim, conv, seed):
    import torch
    torch.manual_seed(seed)
    model = torch_vae(latent_dim, conv)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch_vae(model, optimizer, x_train, batch_size, rng)
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        test = sum(model.loss(torch.from_numpy(x_test[i:i + 500])).item() * len(x_test[i:i + 500])
                   for i in range(0, len(x_test), 500)) / len(x_test)
    return test, float(np.mean(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=data.NAMES)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--conv", action="store_true")
    parser.add_argument("--iwae-k", type=int, default=0, help="also -log p(x) with k samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, _), (x_test, _) = data.load(args.data)
    x_train, x_test = data.to_float(x_train), data.to_float(x_test)
    name = "conv VAE" if args.conv else "MLP VAE"
    print(f"{name}, {args.data}: {len(x_train)} train / {len(x_test)} test, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam 1e-3, Bernoulli likelihood")

    rng = np.random.default_rng(args.seed)
    model = (VAE.conv if args.conv else VAE.mlp)(latent_dim=args.latent_dim, rng=rng)
    history = fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train, x_test,
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    ours, ours_s = history[-1]["test_loss"], float(np.mean([h["seconds"] for h in history]))
    print(f"minivae  test -ELBO {ours:8.2f} nats/image   {ours_s:6.1f} s/epoch")
    if args.iwae_k:
        nll = iwae_nll(model, x_test, args.iwae_k, np.random.default_rng(1))
        print(f"minivae  -log p(x), IWAE k = {args.iwae_k}: {nll:.2f} nats/image")
    try:
        import torch
    except ImportError:
        print("torch not installed: no twin (pip install torch)")
        return
    torch.set_num_threads(get_num_threads())  # as many threads as minivae's workers
    theirs, theirs_s = train_torch(x_train, x_test, args.epochs, args.batch_size,
                                   args.latent_dim, args.conv, args.seed)
    print(f"PyTorch  test -ELBO {theirs:8.2f} nats/image   {theirs_s:6.1f} s/epoch "
          f"({torch.get_num_threads()} threads)")
    print(f"difference minivae − PyTorch: {ours - theirs:+.2f} nats "
          f"(within 1 nat: {abs(ours - theirs) <= 1}); time ratio {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()
