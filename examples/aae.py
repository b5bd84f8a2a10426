"""Train an adversarial autoencoder on real digits: encoded digits filling a prior of any shape.

    python examples/aae.py                          # Gaussian prior on mnist-5k, about two minutes
    python examples/aae.py --prior radial           # or swiss-roll, or supervised
    python examples/aae.py --prior all              # each prior in turn, then one table
    python examples/aae.py --data fashion-mnist --epochs 10

For each prior, writes to --out (default runs/aae, runs/aae-radial, ...; with --prior all, to
runs/aae-all/<prior>): latent.png (encoded test digits over prior samples), samples.png (decoded
prior samples), reconstructions.png, loss.png, adversarial.png, mmd.png, vae_latent.png,
metrics.json, history.json and checkpoint.npz; --resume continues an interrupted run from its
checkpoint, --overwrite replaces a run.

How close the codes come to the prior is one number, the squared MMD (RBF kernel, bandwidth by
the median heuristic on prior samples) between encoded test digits and as many prior samples,
printed beside its floor: the same MMD between two independent prior samples. For comparison the
script also trains an MLP VAE of the same latent size (train.fit) and reports the MMD of its
aggregate posterior — one z ~ q(z|x) per test digit — against N(0, I) with the same recipe.
"""
import argparse
import os

import numpy as np

from minivae import cli, data, optim, samplers, viz
from minivae.distributions import Normal
from minivae.files import write_json
from minivae.metrics import encode_all, median_heuristic, mmd_rbf
from minivae.models.aae import AAE
from minivae.models.vae import VAE
from minivae.train import fit, linear_decay

MMD_ESTIMATOR = ("biased (V-statistic) squared MMD, RBF kernel, bandwidth = median pairwise "
                 "distance of a separate prior sample of the same size")

RUN_NAME = "aae"  # runs/aae, and a part for each flag away from its default (cli.run_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k", choices=data.NAMES)
    parser.add_argument("--prior", default="gaussian", choices=[*samplers.NAMES, "all"])
    parser.add_argument("--epochs", type=cli.positive_int, default=60)
    parser.add_argument("--batch-size", type=cli.positive_int, default=128)
    parser.add_argument("--latent-dim", type=cli.positive_int, default=2, help="2 for the pictures")
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"],
                        help="the default rates suit Adam; SGD with momentum needs far larger "
                             "ones (the paper used 0.01 and 0.1)")
    parser.add_argument("--lr-rec", type=cli.positive_float, default=4e-4,
                        help="encoder and decoder")
    parser.add_argument("--lr-disc", type=cli.positive_float, default=4e-4, help="discriminator")
    parser.add_argument("--lr-gen", type=cli.positive_float, default=4e-4, help="encoder against D")
    parser.add_argument("--lr-decay", type=cli.positive_float, default=0.1,
                        help="the rates fall linearly to this fraction by the last epoch")
    parser.add_argument("--mmd-n", type=cli.int_at_least(2), default=2000,
                        help="test codes in the MMD")
    parser.add_argument("--vae-epochs", type=cli.non_negative_int, default=None,
                        help="epochs of the comparison VAE (default --epochs; 0 = skip it)")
    cli.add_run_flags(parser)
    return parser


def main(argv=None):
    parser = make_parser()
    args = cli.parse_run(parser, RUN_NAME, argv, skip=("vae_epochs",))
    chosen = list(samplers.NAMES) if args.prior == "all" else [args.prior]
    for name in chosen:  # refuse a prior that does not fit before training anything
        try:
            samplers.make(name, args.latent_dim)
        except ValueError as e:
            parser.error(str(e))
        cli.run_folder(parser, args, out_folder(args, name))  # every one, before any training
    with cli.session(args):
        run_all(args, chosen)


def run_all(args, chosen: list[str]):
    (x_train, y_train), (x_test, y_test) = data.load(args.data)
    x_train, x_test = data.to_float(x_train), data.to_float(x_test)  # (N, 1, 28, 28) in [0, 1]
    print(f"{args.data}: {len(x_train)} training and {len(x_test)} test images")

    vae = train_vae(args, x_train, x_test, y_test)
    rows = []
    for name in chosen:
        rows.append(run(args, name, out_folder(args, name), x_train, y_train, x_test, y_test, vae))
    if len(rows) > 1:
        print_table(rows, args.data)


def out_folder(args, prior) -> str:
    """The run's folder (runs/aae, runs/aae-radial, ... by default), or with --prior all its
    subfolder for each prior (runs/aae-all/gaussian, ...)."""
    return os.path.join(args.out, prior) if args.prior == "all" else args.out


def run(args, prior, out, x_train, y_train, x_test, y_test, vae) -> dict:
    """Train one AAE, write its metrics and figures; return its metrics."""
    print(f"\n=== AAE, {prior} prior, {args.latent_dim}-D latent -> {out}")
    model = AAE.mlp(latent_dim=args.latent_dim, prior=prior,
                    rng=np.random.default_rng(args.seed), optimizer=args.optimizer,
                    lr_rec=args.lr_rec, lr_disc=args.lr_disc, lr_gen=args.lr_gen,
                    lr_decay=args.lr_decay, mmd_n=args.mmd_n)
    print(model)
    optimizers = model.optimizers()  # one per phase of the step
    history = fit(model, optimizers, x_train, x_test, y_train=y_train, y_test=y_test,
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, out=out,
                  resume=args.resume, overwrite=args.overwrite, step=model.step,
                  evaluation=model.evaluate, settings={"dataset": args.data},
                  on_step=linear_decay(optimizers, model.config.lr_decay, args.epochs))
    last = history[-1]
    metrics = {"data": args.data, "model": "mlp-aae", "prior": prior,
               "latent_dim": args.latent_dim, "loss": "bernoulli",
               "test_loss": last["test_loss"], "test_rec": last["test_rec"], "test_kl": None,
               "epochs": len(history),
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])),
               "disc_accuracy": last["test_disc_accuracy"],
               "mmd": last["test_mmd"], "mmd_floor": last["test_mmd_floor"],
               "mmd_n": last["test_mmd_n"], "mmd_bandwidth": last["test_mmd_bandwidth"],
               "mmd_estimator": MMD_ESTIMATOR,
               "optimizer": args.optimizer, "lr_rec": args.lr_rec, "lr_disc": args.lr_disc,
               "lr_gen": args.lr_gen, "lr_decay": args.lr_decay,
               **{k: v for k, v in (vae or {}).items() if not k.startswith("_")}}
    print(f"test reconstruction {metrics['test_rec']:.2f} nats/image; discriminator accuracy "
          f"{metrics['disc_accuracy']:.3f}; MMD² to the prior {metrics['mmd']:.2e} "
          f"(floor {metrics['mmd_floor']:.2e}, n = {metrics['mmd_n']})")
    if vae:
        print(f"VAE ({vae['vae_epochs']} epochs): test -ELBO {vae['vae_test_loss']:.2f}, rec "
              f"{vae['vae_test_rec']:.2f}; MMD² of its aggregate posterior to N(0, I) "
              f"{vae['vae_mmd']:.2e} (floor {vae['vae_mmd_floor']:.2e}; of E[z|x]: "
              f"{vae['vae_mmd_mean']:.2e})")
    write_json(os.path.join(out, "metrics.json"), metrics)
    draw(model, x_test, y_test, history, out, vae)
    return metrics


def train_vae(args, x_train, x_test, y_test) -> dict | None:
    """A 784-400-(d, d) MLP VAE with the same latent size, trained by train.fit; the MMD of its
    aggregate posterior against N(0, I), measured exactly as the AAE's. Adds the codes to draw."""
    epochs = args.epochs if args.vae_epochs is None else args.vae_epochs
    if epochs <= 0:
        return None
    print(f"\n=== VAE for comparison, {args.latent_dim}-D latent, {epochs} epochs")
    model = VAE.mlp(latent_dim=args.latent_dim, rng=np.random.default_rng(args.seed))
    history = fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train, x_test, epochs=epochs,
                  batch_size=args.batch_size, seed=args.seed)
    rng = np.random.default_rng([args.seed, 4])
    q = encode_all(model, x_test)  # q(z|x) of every test image: mu, log_var (N, d)
    mu = q.mu.data
    # one z ~ q(z|x) per image, drawn in float64, in which the MMD is computed
    z = Normal(mu.astype(np.float64), q.log_var.data.astype(np.float64)).rsample(rng).data
    n = min(args.mmd_n, len(z))
    gaussian = samplers.make("gaussian", args.latent_dim)  # N(0, I), as the AAE's gaussian prior
    h = median_heuristic(gaussian.sample(n, rng))
    return {"vae_epochs": epochs, "vae_test_loss": history[-1]["test_loss"],
            "vae_test_rec": history[-1]["test_rec"],
            "vae_mmd": mmd_rbf(z[:n], gaussian.sample(n, rng), h),
            "vae_mmd_mean": mmd_rbf(mu[:n], gaussian.sample(n, rng), h),
            "vae_mmd_floor": mmd_rbf(gaussian.sample(n, rng), gaussian.sample(n, rng), h),
            "vae_mmd_of": "z ~ q(z|x), one per test image (vae_mmd_mean: E[z|x])",
            "_vae_z": z}


def draw(model, x_test, y_test, history, out, vae):
    rng = np.random.default_rng(0)
    z = encode_all(model, x_test)  # (N, latent)
    # 5000 prior samples, enough for their faint grey to show the prior's shape (the supervised
    # prior's drawn with the test labels, so each component gets as many as its digits)
    prior_z = model.sample_prior(5000, rng, labels=y_test[np.arange(5000) % len(y_test)])
    labels = np.repeat(np.arange(10), 10)  # a row per label, for the supervised prior
    supervised = model.prior.conditional
    pick = lambda h, keys: [{k: r[k] for k in ("epoch", *keys)} for r in h]
    written = [
        viz.latent_scatter(z, y_test, os.path.join(out, "latent.png"), prior=prior_z,
                           title=f"AAE, {model.config.prior} prior: encoded test images "
                                 f"over prior samples (grey)"),
        viz.image_grid(model.sample(100, rng, labels=labels), os.path.join(out, "samples.png"),
                       nrow=10, title="decoded z ~ p(z | label), one row per label"
                       if supervised else "decoded prior samples, z ~ p(z)"),
        viz.reconstructions(x_test[:16], model.reconstruct(x_test[:16]),
                            os.path.join(out, "reconstructions.png"), n=16,
                            title="test digits (top) and their reconstructions"),
        viz.loss_curves(pick(history, ("train_rec", "test_rec")), os.path.join(out, "loss.png"),
                        title="reconstruction loss, nats per image"),
        viz.loss_curves(pick(history, ("train_disc", "train_gen", "train_disc_accuracy",
                                       "test_disc_accuracy")),
                        os.path.join(out, "adversarial.png"),
                        title="discriminator and generator losses (ln 2 = 0.69: a coin toss), "
                              "accuracy"),
        viz.loss_curves(pick(history, ("test_mmd", "test_mmd_floor")),
                        os.path.join(out, "mmd.png"),
                        title="squared MMD of test codes to the prior, and its floor"),
    ]
    if vae:
        written.append(viz.latent_scatter(
            vae["_vae_z"], y_test, os.path.join(out, "vae_latent.png"),
            prior=np.random.default_rng(1).standard_normal((5000, vae["_vae_z"].shape[1])),
            title="VAE: z ~ q(z|x) of test images over N(0, I) samples (grey)"))
    print("wrote " + ", ".join(written))


def print_table(rows, data_name):
    print(f"\n{data_name}, {rows[0]['latent_dim']}-D latent, {rows[0]['epochs']} epochs: "
          f"squared MMD to the prior (floor: two prior samples), reconstruction in nats/image")
    print("| prior | test rec | MMD² | floor | D accuracy | VAE MMD² to N(0, I) | VAE floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        vae = (f"{r['vae_mmd']:.2e} | {r['vae_mmd_floor']:.2e}" if "vae_mmd" in r else "- | -")
        print(f"| {r['prior']} | {r['test_rec']:.1f} | {r['mmd']:.2e} | {r['mmd_floor']:.2e} | "
              f"{r['disc_accuracy']:.2f} | {vae} |")


if __name__ == "__main__":
    main()
