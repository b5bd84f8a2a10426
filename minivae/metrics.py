"""Evaluation of a trained VAE: importance-weighted likelihood, bits per dimension, active units.

    −ln p(x) ≈ −ln (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

is the importance-weighted estimate of Burda, Grosse & Salakhutdinov (2016, "Importance Weighted
Autoencoders"); it is an upper bound on −ln p(x) that tightens as k grows, and equals −ELBO (in
expectation) at k = 1. Active units follow the same paper: dimension u is active when
Cov_x(E_q[z_u | x]) > 0.01.
"""
from __future__ import annotations

import math

import numpy as np

from minivae import functional as F
from minivae.distributions import Normal, kl_normal_standard
from minivae.tensor import Tensor, no_grad


def bits_per_dim(nats_per_image: float, dims: int = 784) -> float:
    """nats / (D · ln 2)."""
    return nats_per_image / (dims * math.log(2))


def iwae_nll(model, x: np.ndarray, k: int, rng: np.random.Generator, batch_size: int = 10,
             chunk: int = 250) -> float:
    """Mean over x of the k-sample importance-weighted estimate of −ln p(x), in nats per image.
    Works in chunks of `chunk` samples so memory stays at batch_size·chunk decoded images."""
    total = 0.0
    with no_grad():
        for start in range(0, len(x), batch_size):
            xb = Tensor(x[start:start + batch_size])  # (B, 1, 28, 28)
            q = model.encode(xb)  # q(z|x): mu, log_var (B, d)
            log_w = []
            for done in range(0, k, chunk):
                n = min(chunk, k - done)
                z = q.rsample(rng, sample_shape=(n,))  # (n, B, d)
                f = model.decode(z.reshape(-1, z.shape[-1]))  # (n·B, 1, 28, 28)
                x_rep = np.broadcast_to(xb.data, (n,) + xb.shape).reshape(f.shape)
                log_px_z = model.likelihood(f).log_prob(x_rep).data.reshape(n, len(xb), -1).sum(-1)
                log_pz = Normal(0.0, 0.0).log_prob(z).data.sum(-1)  # (n, B)
                log_qz = q.log_prob(z).data.sum(-1)  # (n, B)
                log_w.append(log_px_z + log_pz - log_qz)
            log_w = np.concatenate(log_w)  # (k, B)
            log_px = F.logsumexp(Tensor(log_w.astype(np.float64)), axis=0).data - math.log(k)
            total -= float(log_px.sum())
    return total / len(x)


def encode_all(model, x: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """mu and log_var of q(z|x) for every image in x, each (N, d)."""
    mus, log_vars = [], []
    with no_grad():
        for start in range(0, len(x), batch_size):
            q = model.encode(Tensor(x[start:start + batch_size]))
            mus.append(q.mu.data)
            log_vars.append(q.log_var.data)
    return np.concatenate(mus), np.concatenate(log_vars)


def posterior_stats(model, x: np.ndarray) -> dict:
    """Per-dimension KL (mean over x), and the active units: Cov_x(E_q[z_u]) > 0.01."""
    mu, log_var = encode_all(model, x)  # (N, d)
    kl = kl_normal_standard(mu, log_var)  # (N, d)
    activity = mu.astype(np.float64).var(axis=0)  # (d,)
    return {"kl_per_dim": kl.mean(axis=0).tolist(), "activity": activity.tolist(),
            "active_units": int((activity > 0.01).sum())}
