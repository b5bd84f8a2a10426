"""Evaluation of a trained VAE: importance-weighted likelihood, bits per dimension, active units.

    −ln p(x) ≈ −ln (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

is the importance-weighted estimate of Burda, Grosse & Salakhutdinov (2016, "Importance Weighted
Autoencoders"); it is an upper bound on −ln p(x) that tightens as k grows, and equals −ELBO (in
expectation) at k = 1. Active units follow the same paper: dimension u is active when
Cov_x(E_q[z_u | x]) > 0.01.
"""
from __future__ import annotations

import math
import time

import numpy as np

from minivae import checks, functional as F
from minivae.distributions import Normal, kl_normal_standard
from minivae.progress import Progress
from minivae.tensor import Tensor, no_grad


def bits_per_dim(nats_per_image: float, dims: int = 784) -> float:
    """nats / (D · ln 2): nats per image as bits per pixel (784 pixels for a 28×28 image)."""
    dims = checks.integer(dims, "dims", "bits_per_dim")
    return nats_per_image / (dims * math.log(2))


def iwae_nll(model, x: np.ndarray, k: int, rng: np.random.Generator, batch_size: int = 10,
             chunk: int = 250, progress: bool = False) -> float:
    """Mean over x of the k-sample importance-weighted estimate of −ln p(x), in nats per image.

    Any latent model works that has `encode(x)` -> q(z|x), a `Normal`, and `log_joint(x, z)` ->
    ln p(x|z) + ln p(z) per image, (N,): the VAE, the PixelVAE (its PixelCNN teacher-forced, so one
    pass per sample) and any prior. Works in chunks of `chunk` samples, so memory stays at
    batch_size·chunk decoded images (and batch_size·k·d normals).

    The draws do not depend on `batch_size` or `chunk`: image after image takes its k·d normals
    from `rng` in turn, so the number depends on the model, x, k and the generator's state only,
    not on how the work is cut up (to rounding). progress: a progress bar, image by image."""
    k = checks.integer(k, "k", "iwae_nll")
    batch_size = checks.integer(batch_size, "batch_size", "iwae_nll")
    chunk = checks.integer(chunk, "chunk", "iwae_nll")
    if len(x) == 0:
        raise ValueError(f"iwae_nll: no images to score (x has shape {np.shape(x)})")
    total = 0.0
    bar = Progress(len(x), f"-log p(x), k = {k}", unit=lambda n: f"{n} images",
                   quiet=not progress)
    with no_grad():
        for start in range(0, len(x), batch_size):
            xb = Tensor(x[start:start + batch_size])  # (B, 1, H, W)
            q = model.encode(xb)  # q(z|x): mu, log_var (B, d)
            mu, sigma = q.mu.data, q.sigma.data  # (B, d)
            shape = np.broadcast_shapes(mu.shape, sigma.shape)  # (B, d)
            dtype = np.result_type(mu, sigma)
            eps = rng.standard_normal((shape[0], k, shape[1]), dtype=dtype)  # (B, k, d)
            # exercise iwae: ln (1/k) sum_i p(x, z_i) / q(z_i | x)
            log_w = []
            for done in range(0, k, chunk):
                n = min(chunk, k - done)
                z = mu + sigma * eps[:, done:done + n].transpose(1, 0, 2)  # (n, B, d)
                x_rep = np.broadcast_to(xb.data, (n,) + xb.shape).reshape(-1, *xb.shape[1:])
                log_pxz = model.log_joint(x_rep, z.reshape(n * len(xb), -1)).data  # (n·B,)
                log_qz = q.log_prob(z).data.sum(-1)  # (n, B)
                log_w.append(log_pxz.reshape(n, len(xb)) - log_qz)
            log_w = np.concatenate(log_w)  # (k, B): ln p(x, z_i) − ln q(z_i|x)
            log_px = F.logsumexp(Tensor(log_w.astype(np.float64)), axis=0).data - math.log(k)
            # end exercise
            total -= float(log_px.sum())
            bar.update(len(xb))
    bar.close()
    return total / len(x)


def iwae_report(model, x: np.ndarray, k: int, k_large: int = 0, images: int | None = None,
                log=print) -> dict:
    """The examples' estimates of −ln p(x): k samples on the first `images` of x (all by default),
    and, with k_large, k_large samples on the first 100 (the published protocol's larger k, at a
    cost the whole set would not bear). Keys iwae_nll, iwae_k, iwae_images and, with k_large,
    iwae_nll_large, iwae_k_large, iwae_large_images. Fixed seeds, so reruns agree."""
    report = {}
    for key, count, n, seed in [("", k, images, 1), ("_large", k_large, 100, 2)]:
        if not count:
            continue
        subset = x[:n] if n else x
        start = time.perf_counter()
        nll = iwae_nll(model, subset, count, np.random.default_rng(seed), progress=True)
        report.update({f"iwae_nll{key}": nll, f"iwae_k{key}": count,
                       f"iwae{key}_images": len(subset)})
        log(f"-log p(x) by importance sampling, k = {count}, {len(subset)} test images: "
            f"{nll:.2f} nats ({time.perf_counter() - start:.1f}s)")
    return report


def encode_all(model, x: np.ndarray, batch_size: int = 500):
    """model.encode(x) for the whole of x, batch by batch, with no graph: for a VAE's q(z|x) one
    Normal whose mu and log_var are (N, d); for a deterministic encoder (AE, AAE) the codes, an
    array (N, d)."""
    with no_grad():
        parts = [model.encode(Tensor(x[start:start + batch_size]))
                 for start in range(0, len(x), batch_size)]
    if isinstance(parts[0], Normal):
        return Normal(np.concatenate([q.mu.data for q in parts]),
                      np.concatenate([q.log_var.data for q in parts]))
    return np.concatenate([z.data for z in parts])


def posterior_stats(model, x: np.ndarray) -> dict:
    """Per-dimension KL (mean over x), and the active units: Cov_x(E_q[z_u]) > 0.01."""
    q = encode_all(model, x)  # q(z|x): mu, log_var (N, d)
    mu = q.mu.data
    kl = kl_normal_standard(mu, q.log_var.data)  # (N, d)
    activity = mu.astype(np.float64).var(axis=0)  # (d,)
    return {"kl_per_dim": kl.mean(axis=0).tolist(), "activity": activity.tolist(),
            "active_units": int((activity > 0.01).sum())}


def prior_mmd(model, x: np.ndarray, rng: np.random.Generator, n: int = 1000) -> dict:
    """How far the aggregate posterior is from the prior: the squared MMD (`mmd_rbf`) between
    one z ~ q(z|x) for each of the first n images and n samples of `model.prior`, beside its
    floor, the MMD between two independent prior samples of that size. The bandwidth is the median
    heuristic on prior samples, as for the AAE's codes (examples/aae.py)."""
    with no_grad():
        z = encode_all(model, x[:n]).rsample(rng).data  # z ~ q(z|x), one per image
    prior = [model.prior.sample(len(z), rng) for _ in range(3)]
    h = median_heuristic(prior[0])
    return {"mmd": mmd_rbf(z, prior[1], h), "mmd_floor": mmd_rbf(prior[1], prior[2], h)}


# ---------------------------------------------------------------- distance between two samples


def median_heuristic(x: np.ndarray, max_points: int = 1000) -> float:
    """The median Euclidean distance between distinct points of x (N, d): a kernel bandwidth on the
    data's own scale (Gretton et al. 2012, section 8). Beyond `max_points` rows, an evenly spaced
    subset of rows is used (deterministic; the median of 10⁶ distances is already stable)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"median_heuristic: expected points of shape (N, d) with N >= 2, "
                         f"got {x.shape}")
    if len(x) > max_points:
        x = x[np.linspace(0, len(x) - 1, max_points).round().astype(int)]
    squared = _squared_distances(x, x)  # (N, N)
    return float(np.sqrt(np.median(squared[np.triu_indices(len(x), k=1)])))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a_i − b_j‖² = ‖a_i‖² + ‖b_j‖² − 2 a_i·b_j, (N, M), clipped at 0 against round-off."""
    d2 = a @ b.T  # (N, M), then updated in place: these arrays are the big ones
    d2 *= -2
    d2 += (a * a).sum(1)[:, None]
    d2 += (b * b).sum(1)[None, :]
    return np.maximum(d2, 0, out=d2)


def _kernel_sum(a: np.ndarray, b: np.ndarray, bandwidth: float, chunk: int = 1024) -> float:
    """Σ_ij k(a_i, b_j), k(x, y) = exp(−‖x − y‖² / 2h²), over all pairs, a chunk of rows at a
    time, so 10,000 × 10,000 pairs never sit in memory at once."""
    total = 0.0
    for start in range(0, len(a), chunk):
        d2 = _squared_distances(a[start:start + chunk], b)  # (chunk, M)
        d2 *= -0.5 / bandwidth ** 2
        total += np.exp(d2, out=d2).sum()
    return total


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidth: float | None = None,
            unbiased: bool = False) -> float:
    """Squared maximum mean discrepancy between samples a (N, d) and b (M, d), RBF kernel
    k(x, y) = exp(−‖x − y‖² / 2h²).

    By default the biased estimate (the V-statistic, Gretton et al. 2012, eq. 5: every pair, the
    diagonals included)

        MMD²_b = mean_ij k(a_i, a_j) + mean_ij k(b_i, b_j) − 2 mean_ij k(a_i, b_j),

    which is the squared RKHS distance between the two samples' kernel mean embeddings and so
    never negative. Two samples of one distribution still give about (2/n)·(1 − E k) rather
    than 0: compare against that floor, measured as mmd_rbf of two independent samples of the same
    size. With `unbiased=True`, the U-statistic (their eq. 3), which leaves out the diagonals,

        MMD²_u = Σ_i≠j k(a_i, a_j) / N(N−1) + Σ_i≠j k(b_i, b_j) / M(M−1) − 2 mean_ij k(a_i, b_j):

    its mean over draws is exactly MMD² of the two distributions, so 0 when they are one, and a
    single value can be negative. It needs N, M ≥ 2. h defaults to the median heuristic on the
    pooled samples (a symmetric function of the pooled points, which keeps MMD²_u unbiased).

    Reference: A. Gretton, K. Borgwardt, M. Rasch, B. Schölkopf, A. Smola (2012), "A Kernel
    Two-Sample Test", JMLR 13."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"mmd_rbf: expected samples (N, d) and (M, d), got {a.shape} and "
                         f"{b.shape}")
    if unbiased and min(len(a), len(b)) < 2:
        raise ValueError(f"mmd_rbf: the unbiased estimate needs at least 2 points in each "
                         f"sample, got {len(a)} and {len(b)}")
    h = median_heuristic(np.concatenate([a, b])) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"mmd_rbf: the bandwidth must be positive, got {h}")
    N, M = len(a), len(b)
    aa, bb, ab = _kernel_sum(a, a, h), _kernel_sum(b, b, h), _kernel_sum(a, b, h)
    if unbiased:  # k(x, x) = 1: the N and M diagonal terms come off the sums
        return (aa - N) / (N * (N - 1)) + (bb - M) / (M * (M - 1)) - 2 * ab / (N * M)
    mmd2 = aa / N**2 + bb / M**2 - 2 * ab / (N * M)
    return max(mmd2, 0.0)  # ≥ 0 in exact arithmetic; clip the round-off
