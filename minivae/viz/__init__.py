"""Pictures of models and training runs, written to PNG files, and the graph behind a loss.

Every figure function takes plain numpy arrays and a `path`, writes one PNG at `DPI` dots per inch
and returns the path it wrote. Images are (N, H, W) or (N, 1, H, W) with values in [0, 1] (28 × 28
for MNIST); values outside [0, 1] — a PCA reconstruction, say — are clipped for display.

    image_grid(images, path)              samples in a grid
    reconstructions(x, x_hat, path)       inputs above their reconstructions
    latent_scatter(z, labels, path)       codes coloured by class (PCA-projected if dim z > 2)
    prior_density(z, labels, priors, path) 2-D codes over contours of one or more priors' density
    manifold(decode, path)                Kingma & Welling (2014), Figure 4: decoded latent grid
    interpolations(rows, path)            image sequences, one per row
    loss_curves(history, path)            train/test losses per epoch
    eigen_images(components, path)        PCA components as images
    explained_variance(ratio, path)       cumulative explained variance of PCA
    graph(tensor, path, names)            the ops and parameters that produced a tensor: Graphviz
                                          DOT text, rendered to SVG/PNG when `dot` is installed

One job a file: canvas.py the plumbing they share (the figure, saving, mosaics), images.py the
mosaics of images, latents.py the latent space, curves.py the curves, dot.py the graph.

matplotlib is imported only when a function runs (it is an optional dependency). The figures are
`matplotlib.figure.Figure` objects drawn by the Agg canvas directly, never through pyplot: nothing
switches the global backend of a user's session, and no figure stays open in pyplot's registry
(each one is freed when the function returns).

The manifold's inverse normal CDF is written in NumPy (`normal_ppf`, latents.py): minivae needs
no scipy.
"""
from minivae.viz.canvas import DPI
from minivae.viz.curves import explained_variance, loss_curves
from minivae.viz.dot import graph
from minivae.viz.images import eigen_images, image_grid, interpolations, reconstructions
from minivae.viz.latents import (latent_scatter, manifold, normal_ppf, prior_density,
                                 prior_figures)

__all__ = ["DPI", "explained_variance", "loss_curves", "graph", "eigen_images", "image_grid",
           "interpolations", "reconstructions", "latent_scatter", "manifold", "normal_ppf",
           "prior_density", "prior_figures"]
