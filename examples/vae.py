"""Train a variational autoencoder on real digits, report honest numbers, draw the usual pictures.

    python examples/vae.py                      # MLP VAE on the shipped mnist-5k, under a minute
    python examples/vae.py --conv               # the convolutional VAE
    python examples/vae.py --latent-dim 2       # adds Kingma & Welling's 2-D manifold figure
    python examples/vae.py --prior vamp         # a learned prior: 'mixture' or 'vamp'
    python examples/vae.py --data fashion-mnist --epochs 10

Writes to --out (default runs/vae, or runs/vae-conv, runs/vae-z2, runs/vae-vamp...: one folder for
each setting): figures (PNG), metrics.json, history.json and checkpoint.npz. A folder that holds a
run is never replaced: --resume continues it, --overwrite replaces it. `minivae.load_run(folder)`
and `examples/sample.py folder` reload the trained model.
"""
import argparse
import os
import time

import numpy as np

from minivae import cli, data, optim, viz
from minivae.files import write_json
from minivae.metrics import bits_per_dim, encode_all, iwae_report, posterior_stats, prior_mmd
from minivae.models.vae import VAE
from minivae.train import best_epoch, fit

RUN_NAME = "vae"  # runs/vae, and a part for each flag away from its default (cli.run_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k", choices=data.NAMES)
    parser.add_argument("--conv", action="store_true", help="the convolutional VAE")
    parser.add_argument("--epochs", type=cli.positive_int, default=30)
    parser.add_argument("--batch-size", type=cli.positive_int, default=128)
    parser.add_argument("--latent-dim", type=cli.positive_int, default=20)
    parser.add_argument("--lr", type=cli.positive_float, default=1e-3)
    parser.add_argument("--likelihood", default="bernoulli", choices=["bernoulli", "gaussian"])
    parser.add_argument("--c", type=cli.positive_float, default=0.1,
                        help="variance of the Gaussian decoder")
    parser.add_argument("--beta", type=cli.non_negative_float, default=1.0,
                        help="weight of the KL term")
    cli.add_prior_flags(parser)
    cli.add_validation_flag(parser, images=0)
    parser.add_argument("--binarize", action="store_true", help="dynamic binarisation")
    cli.add_iwae_flags(parser)
    cli.add_run_flags(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = cli.parse_run(parser, RUN_NAME, argv, check=contradictions)
    with cli.session(args):
        run(args)


def contradictions(args) -> str:
    """What the flags ask that cannot be done: '' if nothing."""
    if args.likelihood == "bernoulli" and args.c != 0.1:
        return "--c is the Gaussian decoder's variance: it needs --likelihood gaussian"
    return cli.contradictions(args)


def run(args):
    out = args.out
    (x_train, y_train), (x_test, y_test) = data.load(args.data)
    (x_train, y_train), (x_valid, _) = data.hold_out(x_train, y_train, args.validation)
    x_train, x_valid, x_test = map(data.to_float, (x_train, x_valid, x_test))  # (N, 1, 28, 28)
    held = f", {len(x_valid)} validation" if args.validation else ""
    print(f"{args.data}: {len(x_train)} training{held} and {len(x_test)} test images")

    rng = np.random.default_rng(args.seed)
    build = VAE.conv if args.conv else VAE.mlp
    model = build(latent_dim=args.latent_dim, rng=rng, likelihood=args.likelihood, c=args.c,
                  beta=args.beta, prior=args.prior, prior_components=args.prior_components,
                  prior_data=x_train)
    print(model)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    history = fit(model, optimizer, x_train, x_test, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, out=out, resume=args.resume,
                  overwrite=args.overwrite, binarize=args.binarize,
                  x_valid=x_valid if args.validation else None, settings={"dataset": args.data})
    if args.binarize:  # evaluate on the same fixed binarisation the loop used
        x_test = data.binarize(x_test, np.random.default_rng([args.seed, 1]))

    evaluation_start = time.perf_counter()
    last = best_epoch(history)  # the model fit kept: the best on validation, or the last epoch
    metrics = {"data": args.data, "model": "conv-vae" if args.conv else "mlp-vae",
               "latent_dim": args.latent_dim, "likelihood": args.likelihood,
               "prior": args.prior, "prior_components": args.prior_components,
               "test_loss": last["test_loss"], "test_rec": last["test_rec"],
               "test_kl": last["test_kl"], "epoch": last["epoch"], "epochs": len(history),
               "validation": args.validation, "valid_loss": last.get("valid_loss"),
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in history]))}
    metrics.update(iwae_report(model, x_test, args.iwae_k, args.iwae_k_large, args.iwae_images))
    nll = metrics.get("iwae_nll", last["test_loss"])  # -ln p(x), or its bound without IWAE
    metrics["bits_per_dim"] = bits_per_dim(nll)
    metrics.update(posterior_stats(model, x_test))
    metrics.update(prior_mmd(model, x_test, np.random.default_rng(3)))
    print(f"MMD² of the aggregate posterior to the prior {metrics['mmd']:.2e} "
          f"(floor {metrics['mmd_floor']:.2e})")
    nll_name = "-log p(x)" if "iwae_nll" in metrics else "-ELBO (no IWAE: --iwae-k 0)"
    print(f"test -ELBO {metrics['test_loss']:.2f} nats/image = rec {metrics['test_rec']:.2f} "
          f"+ KL {metrics['test_kl']:.2f}; {nll_name} {nll:.2f} = "
          f"{metrics['bits_per_dim']:.4f} bits/dim; active units "
          f"{metrics['active_units']}/{args.latent_dim}")
    metrics["seconds_training"] = float(sum(h["seconds"] for h in history))
    metrics["seconds_evaluation"] = time.perf_counter() - evaluation_start
    print(f"training {metrics['seconds_training']:.0f} s (the epochs' steps), evaluation "
          f"{metrics['seconds_evaluation']:.0f} s")
    write_json(os.path.join(out, "metrics.json"), metrics)
    draw(model, x_test, y_test, history, out)


def draw(model, x_test, y_test, history, out):
    rng = np.random.default_rng(0)
    written = [
        viz.reconstructions(x_test[:16], model.reconstruct(x_test[:16]),
                            os.path.join(out, "reconstructions.png"), n=16,
                            title="test digits (top) and their reconstructions"),
        viz.image_grid(model.sample(64, rng), os.path.join(out, "samples.png"),
                       title=f"samples: z ~ p(z) ({model.config.prior} prior) through the decoder"),
        viz.latent_scatter(encode_all(model, x_test).mu.data, y_test,
                           os.path.join(out, "latent.png"), title="E[z|x] of test digits"),
        viz.interpolations(model.interpolate(x_test[:6], x_test[6:12], steps=10)[:, :, 0],
                           os.path.join(out, "interpolations.png"),
                           title="decoded straight lines between two test digits' codes"),
        viz.loss_curves(history, os.path.join(out, "loss.png"), title="-ELBO, nats per image"),
    ]
    if model.config.latent_dim == 2:
        written.append(viz.manifold(model.generate,
                                    os.path.join(out, "manifold.png"),
                                    title="decoded grid of the 2-D latent space"))
    written += viz.prior_figures(model, x_test, y_test, out)
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
