"""The numpy door's step of the PixelCNN's cached sampler: one row of pixels, drawn one by one
through the horizontal stacks and the head (models/pixelcnn.py has the network and its equations).

At pixel (r, c), for each layer l = 0 .. L−1, with (i, j) the taps of its horizontal mask and
p_l its padding:

    h_pre = b + Σ_(k, i, j) W[:, k, i, j] · h_in_l[k, r + i, c + j] + s_l[r, c] + c_l^h(y)[r, c]
    u     = g(h_pre) = tanh(a) ⊙ σ(b)                         h_pre = (a ‖ b)
    h_l   = u (l = 0),  h_in_l[:, r + p_l, c + p_l] + O_l u + o_l (l ≥ 1)    into h_in_(l+1)
    logit = P g(Q h_(L−1) + q + c^o(y)[r, c]) + p,   x[r, c] = [u_rc < σ(logit)]    into h_in_0 = x

The vertical stacks and the links s_l of row r are the caller's (they need only rows < r). The
fast door's `sample_row` computes the same in one compiled loop.
"""
import numpy as np

from minivae.kernels.numpy.dense import gated_tanh, sigmoid


def sample_row(r, h_in, link, cond, horizontal, out, head, noise):
    """Row r of the sample, pixel by pixel: the logits (n, W), and in place every h_in[l][:, :,
    r + p_l, c + p_l], x (= h_in[0]) included.

    h_in: L arrays (n, C_l, H + 2p_l, W + 2p_l), each layer's horizontal input, padded.
    link: L arrays (n, 2C, W), each layer's s_l at row r.  cond: L + 1 arrays (n, 2C, W),
    c_l^h(y) then the head's c^o(y) at row r.  horizontal: L triples (W (2C, C_l·T), b (2C,),
    taps (T, 2)), W's columns ordered (k, t).  out: L − 1 pairs (O (C, C), o (C,)), layers 1 .. L−1.
    head: (Q (2C, C), q (2C,), P (1, C), p (1,)).  noise: (n, W) uniforms."""
    n, W = noise.shape
    logits = np.empty((n, W), h_in[0].dtype)
    pad = [(x.shape[3] - W) // 2 for x in h_in]
    for c in range(W):
        for l, (w, b, taps) in enumerate(horizontal):
            patches = h_in[l][:, :, r + taps[:, 0], c + taps[:, 1]].reshape(n, -1)  # (n, C_l·T)
            u = gated_tanh(patches @ w.T + b + link[l][:, :, c] + cond[l][:, :, c])[0]  # (n, C)
            if l > 0:  # the first layer has no residual
                w_out, b_out = out[l - 1]
                u = h_in[l][:, :, r + pad[l], c + pad[l]] + (u @ w_out.T + b_out)  # (n, C)
            if l + 1 < len(h_in):
                h_in[l + 1][:, :, r + pad[l + 1], c + pad[l + 1]] = u
        w_hidden, b_hidden, w_logit, b_logit = head
        hidden = gated_tanh(u @ w_hidden.T + b_hidden + cond[-1][:, :, c])[0]  # (n, C)
        logit = (hidden @ w_logit.T + b_logit)[:, 0]  # (n,)
        h_in[0][:, 0, r + pad[0], c + pad[0]] = noise[:, c] < sigmoid(logit)
        logits[:, c] = logit
    return logits
