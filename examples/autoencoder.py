"""Train a plain autoencoder on real digits: reconstructions and the code space, no prior.

    python examples/autoencoder.py              # MLP autoencoder on the shipped mnist-5k
    python examples/autoencoder.py --conv       # the convolutional autoencoder
    python examples/autoencoder.py --latent-dim 2

The loss is the Bernoulli negative log-likelihood of the pixels, nats per image (--loss mse for the
notes' squared error). Writes figures, metrics.json, history.json and checkpoint.npz to --out
(default runs/ae, runs/ae-conv, ...: one folder for each setting).
"""
import argparse
import os

import numpy as np

from minivae import cli, data, optim, viz
from minivae.files import write_json
from minivae.metrics import encode_all
from minivae.models.ae import AE
from minivae.train import fit

RUN_NAME = "ae"  # runs/ae, and a part for each flag away from its default (cli.run_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k", choices=data.NAMES)
    parser.add_argument("--conv", action="store_true", help="the convolutional autoencoder")
    parser.add_argument("--epochs", type=cli.positive_int, default=20)
    parser.add_argument("--batch-size", type=cli.positive_int, default=128)
    parser.add_argument("--latent-dim", type=cli.positive_int, default=20)
    parser.add_argument("--lr", type=cli.positive_float, default=1e-3)
    parser.add_argument("--loss", default="bernoulli", choices=["bernoulli", "mse"])
    cli.add_run_flags(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = cli.parse_run(parser, RUN_NAME, argv)
    with cli.session(args):
        run(args)


def run(args):
    out = args.out
    (x_train, _), (x_test, y_test) = data.load(args.data)
    x_train, x_test = data.to_float(x_train), data.to_float(x_test)
    print(f"{args.data}: {len(x_train)} training and {len(x_test)} test images")

    build = AE.conv if args.conv else AE.mlp
    model = build(latent_dim=args.latent_dim, rng=np.random.default_rng(args.seed), loss=args.loss)
    print(model)
    history = fit(model, optim.Adam(model.parameters(), lr=args.lr), x_train, x_test,
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, out=out,
                  resume=args.resume, overwrite=args.overwrite, settings={"dataset": args.data})
    last = history[-1]
    metrics = {"data": args.data, "model": "conv-ae" if args.conv else "mlp-ae",
               "latent_dim": args.latent_dim, "loss": args.loss,
               "test_loss": last["test_loss"], "test_rec": last["test_rec"], "test_kl": None,
               "epochs": len(history),
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in history]))}
    print(f"test reconstruction loss {metrics['test_loss']:.2f} per image ({args.loss})")
    write_json(os.path.join(out, "metrics.json"), metrics)

    z = encode_all(model, x_test)  # (N, latent)
    written = [
        viz.reconstructions(x_test[:16], model.reconstruct(x_test[:16]),
                            os.path.join(out, "reconstructions.png"), n=16,
                            title="test digits (top) and their reconstructions"),
        viz.latent_scatter(z, y_test, os.path.join(out, "latent.png"),
                           title="autoencoder codes of test digits"),
        viz.loss_curves(history, os.path.join(out, "loss.png"), title="reconstruction loss"),
    ]
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
