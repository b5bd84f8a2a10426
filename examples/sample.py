"""Draw from a trained model without training: samples, reconstructions, the 2-D manifold.

    python examples/sample.py runs/vae                    # any example's run folder
    python examples/sample.py --pretrained pixelvae       # a model that ships with minivae
    python examples/sample.py runs/pixelvae --n 16 --naive    # the naive sampler, for contrast

The model comes back through `minivae.load_run(folder)`: rebuilt from the settings its run
recorded, its last checkpoint's parameters loaded. Writes to --out (default RUN_DIR/sampled, or
runs/pretrained-NAME): samples.png (z ~ p(z) through the decoder; for the PixelVAE x ~ p(x|z)
pixel by pixel), reconstructions.png (the first test images of the run's data set and their
reconstructions; for the PixelVAE decompressions, z ~ q(z|x) then x ~ p(x|z)), and for a 2-D
latent manifold.png. PCA and the plain autoencoder have no prior to sample: they get the
reconstructions only.
"""
import argparse
import os
import time

import numpy as np

import minivae
from minivae import cli, runs, viz
from minivae.models.pixelvae import PixelVAE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a run folder written by an example")
    parser.add_argument("--pretrained", choices=runs.PRETRAINED,
                        help="a shipped model instead of a run folder")
    parser.add_argument("--n", type=cli.positive_int, default=64, help="samples to draw")
    parser.add_argument("--naive", action="store_true",
                        help="the PixelVAE's naive sampler (one full pass per pixel), not the "
                             "cached one")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback of an error, not one line")
    cli.show_defaults(parser)
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (args.pretrained is None):
        parser.error("give a run folder or --pretrained NAME (one of them)")
    run_dir = args.run_dir or runs.pretrained_dir(args.pretrained)
    args.out = args.out or (os.path.join("runs", f"pretrained-{args.pretrained}")
                            if args.pretrained else os.path.join(run_dir, "sampled"))
    with cli.session(args, done="the pictures are in"):
        draw(args, run_dir)


def draw(args, run_dir: str):
    start = time.perf_counter()
    settings = runs.read_settings(run_dir)
    model = minivae.load_run(run_dir)
    print(f"{run_dir}: {settings['model']} after {settings['epochs_done']} epochs, loaded in "
          f"{time.perf_counter() - start:.1f}s")
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    x = runs.test_images(settings, 16)
    written = []

    if hasattr(model, "sample"):
        start = time.perf_counter()
        if isinstance(model, PixelVAE):
            images = model.sample(args.n, rng, cached=not args.naive, progress=True)
        elif getattr(getattr(model, "prior", None), "conditional", False):  # supervised AAE
            images = model.sample(args.n, rng, labels=np.arange(args.n) % 10)
        else:
            images = model.sample(args.n, rng)
        print(f"{args.n} samples in {time.perf_counter() - start:.1f}s")
        written.append(viz.image_grid(images, os.path.join(args.out, "samples.png"),
                                      title=f"{args.n} samples of {settings['model']}"))

    if isinstance(model, PixelVAE) and model.config.latent_dim:
        x_hat = model.reconstruct(x, rng, cached=not args.naive)
        title = "test images (top) and decompressions: z ~ q(z|x), x' ~ p(x|z)"
    elif isinstance(model, PixelVAE):
        x_hat = None  # the PixelCNN alone has no code to reconstruct from
    elif isinstance(model, runs.PCA):
        flat = x.reshape(len(x), -1).astype(np.float64)  # (16, 784)
        x_hat = model.decode(model.encode(flat)).reshape(x.shape)
        title = f"test images (top) and their projection on {model.n_components} components"
    else:
        x_hat = model.reconstruct(x)
        title = "test images (top) and their reconstructions"
    if x_hat is not None:
        written.append(viz.reconstructions(x, x_hat, os.path.join(args.out,
                                                                  "reconstructions.png"),
                                           n=len(x), title=title))

    if getattr(getattr(model, "config", None), "latent_dim", None) == 2 and \
            hasattr(model, "generate"):
        written.append(viz.manifold(model.generate, os.path.join(args.out, "manifold.png"),
                                    title="decoded grid of the 2-D latent space"))
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
