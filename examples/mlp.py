"""Train a small MLP classifier on two interleaved moons with minivae's own autodiff.

    python examples/mlp.py            # about ten seconds on a laptop CPU
    python examples/mlp.py --epochs 5 --out runs/mlp

The data are generated here, so the script runs offline. It prints the loss and accuracy per
epoch and, when matplotlib is installed, draws the learned decision boundary.
"""
import argparse
import os
import time

import numpy as np

import minivae
from minivae import functional as F
from minivae import cli, nn, optim


def two_moons(n: int, noise: float, rng: np.random.Generator):
    """n points on two interleaved half circles, labels 0 and 1."""
    t = rng.uniform(0, np.pi, size=n)
    y = rng.integers(0, 2, size=n)
    x = np.where(y[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    x += noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), y.astype(np.float32)  # (n, 2), (n,)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=cli.positive_int, default=30)
    parser.add_argument("--batch-size", type=cli.positive_int, default=64)
    parser.add_argument("--lr", type=cli.positive_float, default=1e-2)
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument("--out", default="runs/mlp", help="folder for the figure and weights")
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback of an error, not one line")
    cli.show_defaults(parser)
    args = parser.parse_args(argv)
    cli.output_folder(parser, args.out)
    with cli.session(args):
        run(args)


def run(args):
    rng = np.random.default_rng(args.seed)
    x_train, y_train = two_moons(2000, 0.15, rng)
    x_test, y_test = two_moons(500, 0.15, rng)
    model = nn.Sequential(nn.Linear(2, 64, rng=rng), nn.ReLU(),
                          nn.Linear(64, 64, rng=rng), nn.ReLU(),
                          nn.Linear(64, 1, rng=rng))
    print(model)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(1, args.epochs + 1):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            logits = model(minivae.Tensor(x_train[idx]))  # (B, 1)
            loss = F.binary_cross_entropy_with_logits(logits, y_train[idx, None])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with minivae.no_grad():
            test_logits = model(minivae.Tensor(x_test)).data[:, 0]
        accuracy = np.mean((test_logits > 0) == (y_test == 1))
        print(f"epoch {epoch:3d}  train loss {np.mean(losses):.4f}  "
              f"test accuracy {accuracy:.3f}  {time.perf_counter() - start:.2f}s")

    os.makedirs(args.out, exist_ok=True)
    minivae.save(model, os.path.join(args.out, "mlp.npz"))
    draw_boundary(model, x_test, y_test, os.path.join(args.out, "decision_boundary.png"))


def draw_boundary(model, x, y, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install '.[examples]')")
        return
    g0, g1 = np.meshgrid(np.linspace(-1.5, 2.5, 200), np.linspace(-1.0, 1.5, 200))
    grid = np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)  # (40000, 2)
    with minivae.no_grad():
        p = F.sigmoid(model(minivae.Tensor(grid))).data.reshape(g0.shape)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.contourf(g0, g1, p, levels=20, cmap="RdBu_r", alpha=0.6)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", s=6, edgecolors="k", linewidths=0.2)
    ax.set_title("two moons: p(class 1 | x) learned by a minivae MLP")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
