"""Fit PCA to digit images and draw what it finds: eigen-images, explained variance, codes.

    python examples/pca.py                          # mnist-5k, 50 components: a few seconds
    python examples/pca.py --data fashion-mnist --latent-dim 20   # runs/pca-fashion-mnist-z20

PCA is the linear autoencoder of the lecture notes, solved in closed form (minivae/models/pca.py):
z = W (x − m), x̂ = Wᵀ z + m with W the leading eigenvectors of the training covariance. The
script fits it on the training images (flattened to 784 pixels in [0, 1]), prints the fraction of
variance explained by 10, 50 and 100 components and the test reconstruction error — a squared
error summed over the 784 pixels, averaged over images; PCA has no likelihood, so these are not
nats — and writes figures, metrics.json and checkpoint.npz (minivae.load_run reloads the fitted
PCA) to --out.
"""
import argparse
import os
import time

import numpy as np

from minivae import checkpoint, cli, data, optim
from minivae.files import write_json
from minivae.models.pca import PCA, LinearAutoencoder, largest_principal_angle
from minivae.train import fit

RUN_NAME = "pca"  # runs/pca, and a part for each flag away from its default (cli.run_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k",
                        choices=["mnist-5k", "mnist", "fashion-mnist"])
    parser.add_argument("--latent-dim", type=cli.positive_int, default=50,
                        help="number of principal components")
    parser.add_argument("--linear-ae-steps", type=cli.non_negative_int, default=0,
                        help="also train the gradient-descent twin (LinearAutoencoder, full-batch "
                             "Adam) for this many steps and compare it with PCA (slow: ~0.1 s a "
                             "step on mnist-5k; 300 steps reach PCA's error to 4 digits)")
    parser.add_argument("--epochs", type=cli.positive_int, default=None,
                        help="unused: PCA is fitted in closed form (accepted for uniformity "
                             "with the other examples)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=None,
                        help="unused: PCA is fitted in closed form (accepted for uniformity "
                             "with the other examples)")
    cli.add_run_flags(parser, resumable=False)  # --seed picks the test images shown and the linear AE's start
    return parser


def main(argv=None):
    parser = make_parser()
    args = cli.parse_run(parser, RUN_NAME, argv, skip=("batch_size",))
    with cli.session(args):
        run(args)


def run(args):
    rng = np.random.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = data.load(args.data)   # uint8 (N, 28, 28)
    x_train = data.to_float(x_train).reshape(len(x_train), -1)     # (N, 784) in [0, 1]
    x_test = data.to_float(x_test).reshape(len(x_test), -1)        # (M, 784)
    print(f"{args.data}: {len(x_train)} training and {len(x_test)} test images")

    start = time.perf_counter()
    pca = PCA(args.latent_dim).fit(x_train)
    fit_seconds = time.perf_counter() - start
    k = pca.n_components

    # The fit keeps all 784 eigenvalues, so the variance explained by any number of components
    # comes from this one fit.
    cumulative = np.cumsum(pca.eigenvalues_) / pca.eigenvalues_.sum()  # (784,)
    explained = {j: float(cumulative[j - 1]) for j in (10, 50, 100)}
    train_rec = pca.reconstruction_error(x_train)   # = the sum of the discarded eigenvalues
    test_rec = pca.reconstruction_error(x_test)
    print(f"fitted {k} components in {fit_seconds:.2f} s")
    for j, fraction in explained.items():
        print(f"  variance explained by {j:3d} components: {fraction:.4f}")
    print(f"reconstruction error with {k} components (squared error per image, summed over "
          f"784 pixels): train {train_rec:.3f}, test {test_rec:.3f}")

    if args.linear_ae_steps > 0:
        compare_linear_autoencoder(pca, x_train, x_test, args.linear_ae_steps, rng, args.seed)

    os.makedirs(args.out, exist_ok=True)
    checkpoint.save_model(os.path.join(args.out, "checkpoint.npz"), pca,  # for runs.load_run
                          {"settings": {"model": "PCA", "config": pca.config,
                                        "dataset": args.data, "seed": args.seed}})
    metrics = {
        "model": "pca", "data": args.data, "latent_dim": k,
        "test_loss": test_rec, "test_rec": test_rec, "test_kl": None, "train_rec": train_rec,
        "loss_units": "squared error per image (sum over pixels of images in [0, 1])",
        "epochs": None, "seconds_per_epoch": fit_seconds,
        **{f"explained_variance_{j}": fraction for j, fraction in explained.items()},
    }
    path = os.path.join(args.out, "metrics.json")
    write_json(path, metrics)
    print(f"wrote {path}")
    draw(pca, x_test, y_test, args.out, rng)


def compare_linear_autoencoder(pca: PCA, x_train, x_test, steps: int, rng, seed: int):
    """Gradient descent on the notes' objective mean_n ‖WᵀW x̄_n − x̄_n‖² finds PCA's subspace
    (not its basis: any rotation of the components within it is as good). Trained by train.fit,
    the whole training set one batch, so an epoch is one step."""
    ae = LinearAutoencoder(x_train.shape[1], pca.n_components, rng=rng).center(x_train)
    start = time.perf_counter()
    history = fit(ae, optim.Adam(ae.parameters(), lr=1e-2), x_train, x_test, epochs=steps,
                  batch_size=len(x_train), seed=seed, log=lambda *_: None)
    angle = largest_principal_angle(ae.weight.data, pca.components_)
    print(f"linear autoencoder, {steps} Adam steps in {time.perf_counter() - start:.1f} s: "
          f"train {history[-1]['train_loss']:.3f}, test {history[-1]['test_loss']:.3f}; largest "
          f"principal angle to the PCA subspace {angle:.3g} rad")


def draw(pca: PCA, x_test: np.ndarray, y_test: np.ndarray, out: str, rng: np.random.Generator):
    try:
        from minivae import viz
        shown = rng.choice(len(x_test), size=16, replace=False)
        x = x_test[shown]                                            # (16, 784)
        x_hat = pca.decode(pca.encode(x))                            # (16, 784)
        z = pca.encode(x_test)                                       # (M, k)
        k = pca.n_components
        paths = [
            viz.eigen_images(pca.components_, os.path.join(out, "eigen_images.png"), n=16,
                             mean=pca.mean_),
            viz.explained_variance(pca.eigenvalues_ / pca.eigenvalues_.sum(),
                                   os.path.join(out, "explained_variance.png")),
            viz.reconstructions(x.reshape(-1, 28, 28), x_hat.reshape(-1, 28, 28),
                                os.path.join(out, "reconstructions.png"), n=16,
                                title=f"test images and their PCA reconstructions, k = {k}"),
        ]
        if k >= 2:
            paths.append(viz.latent_scatter(
                z[:, :2], y_test, os.path.join(out, "latent_scatter.png"),
                title="test images on the first two principal components (z₁, z₂)"))
    except ImportError as error:
        print(f"no figures: {error}")
        return
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
