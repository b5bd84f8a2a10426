"""Train a PixelVAE (a VAE with a gated PixelCNN decoder) on binarised digits; sample it, fast.

    python examples/pixelvae.py                        # mnist-5k, 30 epochs
    python examples/pixelvae.py --latent-dim 0         # the PixelCNN alone: what does z add?
    python examples/pixelvae.py --data fashion-mnist --epochs 5
    python examples/pixelvae.py --warmup 0 --free-bits 0   # the plain ELBO: z collapses
    python examples/pixelvae.py --prior vamp           # a learned prior: 'mixture' or 'vamp'
    python examples/pixelvae.py --conditioning bias    # z as one bias per gate (the paper's MNIST)

Training binarises every batch afresh (dynamic binarisation); the test set is binarised once with
the seed that `examples/vae.py --binarize` uses, so the two examples' NLLs are comparable. The last
--validation training images (500) are held out: the epoch with the lowest validation −ELBO is
kept and reported, so the test set chooses nothing. Prints and writes to metrics.json the test
−ELBO with its rec and KL terms (always with β = 1 and no free
bits), −ln p(x) by importance sampling, bits/dim, the active units, seconds per epoch, and the
seconds to draw --time-samples images with the cached sampler and the naive one. Figures in --out
(default runs/pixelvae, runs/pixelvae-z0 for the PixelCNN alone, ...: one folder for each
setting; --resume continues a run, --overwrite replaces it): samples, decompressions of test
digits, one z with several pixel-noise draws, and the loss curves.
"""
import argparse
import os
import time

import numpy as np

from minivae import cli, data, optim, viz
from minivae.files import write_json
from minivae.metrics import bits_per_dim, iwae_report, posterior_stats, prior_mmd
from minivae.models.pixelvae import CONDITIONINGS, PixelVAE
from minivae.train import best_epoch, fit

RUN_NAME = "pixelvae"  # runs/pixelvae, and a part for each flag away from its default (cli.run_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k", choices=data.NAMES)
    parser.add_argument("--epochs", type=cli.positive_int, default=30)
    parser.add_argument("--batch-size", type=cli.positive_int, default=100)
    parser.add_argument("--latent-dim", type=cli.non_negative_int, default=16,
                        help="0: the PixelCNN alone")
    parser.add_argument("--channels", type=cli.positive_int, default=16,
                        help="PixelCNN feature maps")
    parser.add_argument("--layers", type=cli.non_negative_int, default=5,
                        help="gated layers after the first")
    # 'map' lets z say where: with one bias per gate (the PixelVAE paper's MNIST variant) z
    # carries ~4 nats and loses to the PixelCNN alone on mnist-5k (README, The PixelVAE)
    parser.add_argument("--conditioning", default="map", choices=CONDITIONINGS,
                        help="how z reaches the gates: feature maps m(z) at the image's size, "
                             "one bias per pixel, or 'bias', one per gate, the same everywhere")
    parser.add_argument("--lr", type=cli.positive_float, default=1e-3)
    parser.add_argument("--beta", type=cli.non_negative_float, default=1.0,
                        help="weight of the KL term")
    # Without these the KL collapses to ~0.2 nats on mnist-5k: the PixelCNN models the digits
    # alone and z carries nothing. With them all 16 latent units stay in use (README, Numbers).
    parser.add_argument("--warmup", type=cli.non_negative_float, default=5.0,
                        help="epochs over which the KL weight rises linearly to beta")
    parser.add_argument("--free-bits", type=cli.non_negative_float, default=0.25,
                        help="nats of KL per latent dimension charged at least (training only)")
    cli.add_prior_flags(parser)
    cli.add_validation_flag(parser, images=500)
    cli.add_iwae_flags(parser, k=100, images=100)
    parser.add_argument("--time-samples", type=cli.non_negative_int, default=8,
                        help="images to draw when timing the cached and naive samplers (the "
                             "README's figure: 64); 0 = skip")
    cli.add_run_flags(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = cli.parse_run(parser, RUN_NAME, argv, check=contradictions)
    with cli.session(args):
        run(args)


def contradictions(args) -> str:
    """What the flags ask that cannot be done: '' if nothing."""
    if not args.latent_dim:
        for flag, value, default in [("--prior", args.prior, "standard"),
                                     ("--prior-components", args.prior_components, 10),
                                     ("--iwae-k-large", args.iwae_k_large, 0)]:
            if value != default:
                return f"{flag} needs a latent: --latent-dim 0 is the PixelCNN alone"
    return cli.contradictions(args)


def run(args):
    (x_train, y_train), (x_test, y_test) = data.load(args.data)
    (x_train, y_train), (x_valid, _) = data.hold_out(x_train, y_train, args.validation)
    x_train, x_valid, x_test = map(data.to_float, (x_train, x_valid, x_test))  # (N, 1, 28, 28)
    print(f"{args.data}: {len(x_train)} training, {len(x_valid)} validation and {len(x_test)} "
          f"test images, binarised")

    rng = np.random.default_rng(args.seed)
    model = PixelVAE.gated(args.latent_dim, args.channels, args.layers, beta=args.beta,
                           conditioning=args.conditioning,
                           warmup=args.warmup, free_bits=args.free_bits, prior=args.prior,
                           prior_components=args.prior_components, prior_data=x_train, rng=rng)
    print(model)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    history = fit(model, optimizer, x_train, x_test, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, out=args.out, resume=args.resume,
                  overwrite=args.overwrite, binarize=True, on_step=model.schedule,
                  x_valid=x_valid if args.validation else None, settings={"dataset": args.data})
    x_test = data.binarize(x_test, np.random.default_rng([args.seed, 1]))  # as fit evaluated it

    evaluation_start = time.perf_counter()
    last = best_epoch(history)  # the model fit kept: the best on validation, or the last epoch
    metrics = {"data": args.data, "model": "pixelvae" if args.latent_dim else "pixelcnn",
               "latent_dim": args.latent_dim, "channels": args.channels, "layers": args.layers,
               "warmup": args.warmup, "free_bits": args.free_bits, "prior": args.prior,
               "prior_components": args.prior_components,
               "test_loss": last["test_loss"], "test_rec": last["test_rec"],
               "test_kl": last["test_kl"], "epoch": last["epoch"], "epochs": len(history),
               "validation": args.validation, "valid_loss": last.get("valid_loss"),
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in history]))}
    if args.latent_dim:
        metrics.update(iwae_report(model, x_test, args.iwae_k, args.iwae_k_large,
                                   args.iwae_images))
    elif args.iwae_k:  # no z: one sample's bound is the exact -ln p(x), on the images IWAE uses
        metrics.update(iwae_report(model, x_test, 1, 0, args.iwae_images), iwae_k="exact")
        print("(exactly: the PixelCNN alone has no latent)")
    nll = metrics.get("iwae_nll", last["test_loss"])
    metrics["bits_per_dim"] = bits_per_dim(nll)
    if args.latent_dim:
        metrics.update(posterior_stats(model, x_test))
        metrics.update(prior_mmd(model, x_test, np.random.default_rng(3)))
    if args.time_samples:
        metrics.update(time_samplers(model, args.time_samples))
    nll_name = "-log p(x)" if "iwae_nll" in metrics else "-ELBO (no IWAE: --iwae-k 0)"
    units = (f"; active units {metrics['active_units']}/{args.latent_dim}" if args.latent_dim
             else "")
    print(f"test -ELBO {metrics['test_loss']:.2f} nats/image = rec {metrics['test_rec']:.2f} "
          f"+ KL {metrics['test_kl']:.2f}; {nll_name} {nll:.2f} = "
          f"{metrics['bits_per_dim']:.4f} bits/dim{units}")
    metrics["seconds_training"] = float(sum(h["seconds"] for h in history))
    metrics["seconds_evaluation"] = time.perf_counter() - evaluation_start
    print(f"training {metrics['seconds_training']:.0f} s (the epochs' steps), evaluation "
          f"{metrics['seconds_evaluation']:.0f} s")
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    draw(model, x_test, y_test, history, args.out)


def time_samplers(model, n: int) -> dict:
    """Seconds to draw n images by each sampler, from the same z and pixel noise; the images must
    be the same."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((n, model.config.latent_dim))
    noise = rng.random((n,) + model.image_shape)
    seconds, images = {}, {}
    for name, cached in [("cached", True), ("naive", False)]:
        start = time.perf_counter()
        images[name] = model.generate(z, None, noise=noise, cached=cached, progress=not cached)
        seconds[name] = time.perf_counter() - start
    same = bool(np.array_equal(images["cached"], images["naive"]))
    print(f"{n} samples: cached {seconds['cached']:.2f}s, naive {seconds['naive']:.1f}s "
          f"({seconds['naive'] / seconds['cached']:.0f}x faster), identical images: {same}")
    return {"samples_timed": n, "sample_seconds_cached": seconds["cached"],
            "sample_seconds_naive": seconds["naive"], "samplers_identical": same}


def draw(model, x_test, y_test, history, out):
    rng = np.random.default_rng(0)
    title = (f"samples: z ~ p(z) ({model.config.prior}), then x ~ p(x|z) pixel by pixel"
             if model.config.latent_dim else "samples of the PixelCNN alone, pixel by pixel")
    written = [viz.image_grid(model.sample(64, rng), os.path.join(out, "samples.png"),
                              title=title),
               viz.loss_curves(history, os.path.join(out, "loss.png"),
                               title="-ELBO, nats per image")]
    if model.config.latent_dim:
        written.append(viz.reconstructions(
            x_test[:16], model.reconstruct(x_test[:16], rng), os.path.join(out, "decompressions.png"),
            n=16, title="test digits (top) and decompressions: z ~ q(z|x), x' ~ p(x|z)"))
        z = np.repeat(rng.standard_normal((8, model.config.latent_dim)), 8, axis=0)  # 8 z, 8 each
        written.append(viz.image_grid(model.generate(z, rng), os.path.join(out, "fixed_z.png"),
                                      nrow=8, title="each row one z, each column new pixel noise"))
    written += viz.prior_figures(model, x_test, y_test, out)
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
