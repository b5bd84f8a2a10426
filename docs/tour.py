# %% [markdown]
# # A tour of minivae, in the order it is built
#
# This file builds up minivae the way its floors stand on each other, and runs the real code of
# each piece right after showing it: the engine (a Tensor, a Function, `backward()`, a gradient
# check), a Numba kernel beside its NumPy twin, layers and an optimiser, the probability core of a
# VAE, the VAE's loss line by line and a few epochs of training, then masked convolutions, the
# PixelCNN, the PixelVAE and a learned prior. It ends with what minivae leaves out compared with a
# full framework, where each piece lives in PyTorch, and the bridge that carries a model there.
# (The idea is JAX's autodidax: a system taught in dependency order, each piece run as it comes.)
#
#     python docs/tour.py                      # the whole tour, a few minutes on two cores
#     MINIVAE_TOUR_FAST=1 python docs/tour.py  # shorter training cells, for CI
#
# It is also a notebook: the `# %%` lines are cells, the comment blocks under `# %% [markdown]`
# are text (VS Code runs the cells as they are; `jupytext --to notebook docs/tour.py` makes an
# .ipynb). Figures go to `tour_figures/` beside this file, or to `$MINIVAE_TOUR_OUT`; nothing is
# written into the package. Every claim below is checked where it is made, with an `assert`.

# %%
import inspect
import math
import os
import re
import shutil
import sys
import time

import numpy as np

import minivae
from minivae import Function, Tensor, data, nn, optim, viz
from minivae import functional as F

FAST = os.environ.get("MINIVAE_TOUR_FAST", "") not in ("", "0")
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
OUT = os.environ.get("MINIVAE_TOUR_OUT") or os.path.join(HERE, "tour_figures")
os.makedirs(OUT, exist_ok=True)
TESTS = os.path.join(os.path.dirname(HERE), "tests")  # the repository's tests, when they are there
START = time.perf_counter()


def run_as_script(path: str) -> None:
    """`python docs/tour.py`: run the cells in order and print each text cell before the code it
    introduces (a notebook shows the text itself). Line numbers stay those of this file."""
    source = open(path).read()
    starts = [m.start() for m in re.finditer(r"^# %%", source, flags=re.M)] + [len(source)]
    for start, end in zip(starts, starts[1:]):
        cell, line = source[start:end], source.count("\n", 0, start)
        if cell.startswith("# %% [markdown]"):
            text = [row[2:] for row in cell.splitlines()[1:] if row.startswith("#")]
            print("\n" + "\n".join(text).strip() + "\n", flush=True)
        else:
            exec(compile("\n" * line + cell, path, "exec"), globals())


if __name__ == "__main__" and not globals().get("AS_SCRIPT"):  # a script: the prose too
    AS_SCRIPT = True
    run_as_script(__file__)
    raise SystemExit


def show_source(obj) -> None:
    """Print the source of a minivae function or class, with the file it lives in (relative to
    the repository, or to the installed package's folder)."""
    obj = inspect.unwrap(getattr(obj, "py_func", obj))  # a Numba kernel's Python source
    file = os.path.abspath(inspect.getsourcefile(obj))
    root = os.path.dirname(HERE)  # the repository, when the tour runs from a clone
    path = os.path.relpath(file, root if file.startswith(root + os.sep) else
                           os.path.dirname(os.path.dirname(minivae.__file__)))
    print(f"# {path}, line {inspect.getsourcelines(obj)[1]}")
    print(inspect.getsource(obj))


def show(path: str) -> str:
    """Report a written figure (and display it when running inside Jupyter)."""
    print(f"wrote {path}")
    if "IPython" in sys.modules:
        from IPython import get_ipython
        from IPython.display import SVG, Image, display
        if get_ipython() is not None:
            display(SVG(filename=path) if path.endswith(".svg") else Image(filename=path))
    return path


def picture(name: str) -> str:
    return os.path.join(OUT, name)


print(f"minivae {minivae.__version__}; figures in {OUT}; fast: {FAST}")

# %% [markdown]
# ## 1. The engine: a Tensor, a Function, backward(), gradcheck
#
# A `Tensor` is an ndarray (`.data`) plus what reverse-mode autodiff needs: `.grad`, and for a
# tensor an op made, the op (`_fn`, a `Function` class) and what it saved (`_ctx`). That pair is
# the whole computation graph: every tensor points back at its inputs.

# %%
x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
y = (x * x).sum()  # y = Σ x²
y.backward()
print("x.grad =", x.grad, " (dy/dx = 2x)")
assert np.array_equal(x.grad, 2 * x.data)
print("the op that made x * x:", (x * x)._fn.__name__)
show_source((x * x)._fn)

# %% [markdown]
# Each op is one `Function`: `forward(ctx, *arrays)` computes the value and saves what
# `backward(ctx, y_bar)` needs; `backward` receives the cotangent y_bar = dL/dy and returns one
# gradient per input. `Tensor.backward()` sorts the graph topologically (iteratively, so any depth
# works) and walks it once in reverse, adding each op's gradients into its inputs':

# %%
show_source(Tensor.backward)

# %% [markdown]
# A new op is a new Function. minivae has no sine, so here is one: the derivative sits beside the
# forward, as in every op of `minivae/functional.py`.

# %%
class Sin(Function):
    """y = sin(x);  x_bar = y_bar · cos(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved
        return y_bar * np.cos(x)


x = Tensor(np.array([0.3, 1.2, -2.0]), requires_grad=True)
y = (Sin.apply(x) * x).sum()  # y = Σ x·sin x, so dy/dx = sin x + x·cos x
y.backward()
assert np.allclose(x.grad, np.sin(x.data) + x.data * np.cos(x.data))
print("dy/dx =", x.grad)

# %% [markdown]
# `viz.graph` draws the graph `backward()` walks: one node per op with its output shape, one per
# leaf that wants a gradient. Here it is as Graphviz DOT text (rendered further down, where `dot`
# is installed).

# %%
print(viz.graph(y))

# %% [markdown]
# How do we know a backward rule is right? `minivae.gradcheck` compares it, in float64, with
# central finite differences entry by entry, and runs HIPS/autograd's dot-product test
# ⟨v, Jᵀu⟩ = ⟨u, J v⟩ with a random cotangent u. A backward with a sign slip fails it loudly:

# %%
rng = np.random.default_rng(0)
print("largest error, Sin:", minivae.gradcheck(lambda x: Sin.apply(x) * x, rng.standard_normal(5)))


class SinWithASlip(Sin):
    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved
        return -y_bar * np.cos(x)  # wrong sign


try:
    minivae.gradcheck(lambda x: SinWithASlip.apply(x), rng.standard_normal(5))
    raise AssertionError("gradcheck should have failed")
except minivae.GradcheckError as error:
    print("caught:", "\n".join(str(error).splitlines()[:3]))

# %% [markdown]
# ## 2. The kernels: one interface, two doors
#
# The floor below the engine, `minivae/kernels/`, never sees a Tensor: ndarrays in, ndarrays out.
# The ops call it through one interface, `kernels.linear(x, w, b, "relu", slope)` and a dozen more
# (kernels/__init__.py lists them), and behind it stand two doors with the same functions: `numpy`,
# each function the few NumPy lines of its equation, and `fast` (the default), Numba loops, BLAS
# and worker threads. Here is a Linear layer, y = act(x @ Wᵀ + b), through each door.

# %%
from minivae.kernels import fast
from minivae.kernels.fast import dense
from minivae.kernels.numpy import dense as numpy_dense

show_source(numpy_dense.linear)
show_source(numpy_dense.activate)
show_source(fast.linear)
show_source(dense.bias_act_forward)

# %%
a = rng.standard_normal((128, 400)).astype(np.float32)  # (B, 400): a hidden layer's x @ Wᵀ
b = rng.standard_normal(400).astype(np.float32)
x_np = np.random.default_rng(1).standard_normal((128, 784)).astype(np.float32)  # (B, 784)
w_np = (np.random.default_rng(2).standard_normal((400, 784)) / 28).astype(np.float32)  # (400, 784)
expected = numpy_dense.linear(x_np, w_np, b, "relu")  # (B, 400)
np.testing.assert_allclose(fast.linear(x_np, w_np, b, "relu"), expected, rtol=1e-5, atol=1e-5,
                           err_msg="fast vs numpy")


def best_of(fn, repeat=20) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e6


print(f"bias + ReLU: NumPy {best_of(lambda: numpy_dense.activate(a + b, 'relu')):.0f} µs, "
      f"Numba {best_of(lambda: dense.bias_act_forward(a.copy(), b, dense.ACTIVATIONS['relu'], 0.01)):.0f} µs "
      f"(the kernel's time includes a copy of a)")

# %% [markdown]
# ### Stepping through an op in plain NumPy
#
# `minivae.set_backend("numpy")`, or `MINIVAE_BACKEND=numpy` before minivae is imported, opens the
# numpy door for every op: no Numba is imported and no thread started, and pdb steps from a
# model's loss down to the NumPy line that multiplies. For example:
#
#     MINIVAE_BACKEND=numpy python -m pdb examples/vae.py --epochs 1
#     (Pdb) import minivae.kernels.numpy.dense as door
#     (Pdb) break door.linear
#     (Pdb) continue
#
# stops at the encoder's first Linear, `where` shows how it got there. The same layer through each
# door, here: the same numbers, to float32's rounding.

# %%
x_t = Tensor(x_np)
first = nn.Linear(784, 400, rng=np.random.default_rng(0), activation="relu")
door = minivae.get_backend()  # 'fast', unless MINIVAE_BACKEND says otherwise
minivae.set_backend("fast")
y_fast = first(x_t).data
minivae.set_backend("numpy")
print("the function behind every Linear now:", minivae.kernels.linear.__module__)
y_numpy = first(x_t).data
minivae.set_backend(door)
np.testing.assert_allclose(y_numpy, y_fast, rtol=1e-5, atol=1e-5)
print("numpy and fast doors agree; max difference", float(np.abs(y_numpy - y_fast).max()))

# %% [markdown]
# Each fast kernel is also pinned to its numpy twin by a test, which draws shapes and values with
# Hypothesis (every activation, float32 and float64) and says "mine vs reference" when they part. It lives in
# `tests/test_dense_kernels.py`; here it is, and here it runs, when the tests are beside this
# file and Hypothesis is installed. (tests/test_doors.py proves the two doors equal op by op and
# model by model.)

# %%
import importlib.util

test_file = os.path.join(TESTS, "test_dense_kernels.py")
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(OUT, ".hypothesis"))  # caches
try:
    import hypothesis
    import pytest  # noqa: F401  (the test module imports it)
except ImportError:
    hypothesis = None
if hypothesis is None or not os.path.exists(test_file):
    print("skipped: the tests or Hypothesis are not here (pip install '.[test]' in a clone)")
else:
    hypothesis.settings.register_profile("tour", database=None, derandomize=True, deadline=None)
    hypothesis.settings.load_profile("tour")  # the same examples every run, none remembered
    spec = importlib.util.spec_from_file_location("test_dense_kernels", test_file)
    test_dense_kernels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_dense_kernels)
    test = test_dense_kernels.test_bias_act_forward_matches_reference
    show_source(test)
    for activation in dense.ACTIVATIONS:
        test(activation=activation, dtype=np.float32)
    print("test_bias_act_forward_matches_reference passed for", ", ".join(dense.ACTIVATIONS))

# %% [markdown]
# ## 3. Layers, a two-layer network, an optimiser step
#
# `nn.Linear` holds W (out, in) and b and computes y = x @ Wᵀ + b, PyTorch's convention, and
# initialises them as PyTorch does; `activation="relu"` applies a ReLU in the same op. A `Module`
# finds its parameters by walking its attributes, and names them as PyTorch would (`0.weight`): a
# layer with an activation takes two places in a `Sequential`, as Linear and ReLU do in PyTorch.

# %%
layer = nn.Linear(3, 2, rng=rng)
x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))  # (B, 3)
y = layer(x)  # (B, 2)
np.testing.assert_allclose(y.data, x.data @ layer.weight.data.T + layer.bias.data, rtol=1e-6)

net = nn.Sequential(nn.Linear(2, 32, rng=rng, activation="relu"), nn.Linear(32, 1, rng=rng))
print(net)
print("state_dict keys:", list(net.state_dict()))

# %% [markdown]
# One step of gradient descent by hand, checked against `optim.SGD`: p ← p − lr·∂L/∂p. The data:
# the XOR of two signs, which no linear model can fit.

# %%
x_np = rng.standard_normal((256, 2)).astype(np.float32)  # (B, 2)
t_np = (x_np[:, :1] * x_np[:, 1:] > 0).astype(np.float32)  # (B, 1): 1 where the signs agree
loss = F.binary_cross_entropy_with_logits(net(Tensor(x_np)), t_np)
before = {name: p.data.copy() for name, p in net.named_parameters()}
sgd = optim.SGD(net.parameters(), lr=0.5)
sgd.zero_grad()
loss.backward()
sgd.step()
for name, p in net.named_parameters():
    np.testing.assert_allclose(p.data, before[name] - 0.5 * p.grad, rtol=1e-6, atol=1e-7)
print(f"one SGD step: loss {loss.item():.4f} -> "
      f"{F.binary_cross_entropy_with_logits(net(Tensor(x_np)), t_np).item():.4f}")

adam = optim.Adam(net.parameters(), lr=1e-2)
for step in range(300):
    loss = F.binary_cross_entropy_with_logits(net(Tensor(x_np)), t_np)
    adam.zero_grad()
    loss.backward()
    adam.step()
accuracy = ((net(Tensor(x_np)).data > 0) == (t_np > 0)).mean()
print(f"after 300 Adam steps: loss {loss.item():.4f}, training accuracy {accuracy:.1%}")
assert accuracy > 0.9

# %% [markdown]
# Its graph, parameters named by their state_dict keys: the first Linear's ReLU is inside its op
# (`F.linear` with the activation), so that layer is one node.

# %%
print(viz.graph(loss, names=net))

# %% [markdown]
# ## 4. The probability core
#
# A VAE's encoder outputs q(z|x) = N(mu, diag σ²) as `mu` and `log_var`, the log of the
# *variance*: σ = exp(½·log_var). One `Normal` object both samples and computes the KL, so the two
# cannot disagree about what exp(log_var) means (numpy-ml's VAE sampled with exp(log_var) as σ and
# took the KL with it as σ²).
#
# The reparameterised sample z = mu + σ·eps, eps ~ N(0, I), is a Function whose backward is derived
# by hand: mu_bar = z_bar and log_var_bar = ½·z_bar·σ·eps.

# %%
from minivae.distributions import Normal

mu = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
log_var = Tensor(np.array([-0.4, 0.3, -2.0]), requires_grad=True)
z = Normal(mu, log_var).rsample(np.random.default_rng(7))  # (3,)
show_source(z._fn)

# %% [markdown]
# Checked three ways: against autodiff of the same formula written with primitive ops (the same
# eps), against finite differences, and through its moments (variance exp(log_var), not its square).

# %%
z.backward(np.array([1.0, -2.0, 0.5]))
hand = mu.grad.copy(), log_var.grad.copy()
mu2, log_var2 = Tensor(mu.data, requires_grad=True), Tensor(log_var.data, requires_grad=True)
eps = np.random.default_rng(7).standard_normal(3)  # the draw rsample made
(mu2 + F.exp(0.5 * log_var2) * eps).backward(np.array([1.0, -2.0, 0.5]))
np.testing.assert_allclose(hand[0], mu2.grad, rtol=1e-12)
np.testing.assert_allclose(hand[1], log_var2.grad, rtol=1e-12)
print("hand-derived = autodiff:", hand[1], log_var2.grad)
minivae.gradcheck(lambda m, v: Normal(m, v).rsample(np.random.default_rng(7)), mu, log_var)

draws = Normal(0.5, math.log(4.0)).rsample(np.random.default_rng(1), (200_000,)).data
print(f"200,000 draws of N(0.5, σ² = 4): mean {draws.mean():.3f}, standard deviation {draws.std():.3f}")
assert abs(draws.mean() - 0.5) < 0.02 and abs(draws.std() - 2.0) < 0.02

# %% [markdown]
# The KL term has a closed form, KL(N(mu, σ²) ‖ N(0, 1)) = ½(mu² + σ² − ln σ² − 1) per dimension
# (derived in `docs/derivations.md`, section 7). Is it right? Integrate ∫ q ln(q/p) dz numerically,
# right here, with Simpson's rule on a fine grid:

# %%
def kl_by_quadrature(mu: float, sigma: float, n: int = 20001) -> float:
    """∫ q ln(q/p) dz, q = N(mu, σ²), p = N(0, 1), by Simpson's rule over mu ± 12σ."""
    z = np.linspace(mu - 12 * sigma, mu + 12 * sigma, n)  # n odd: an even number of intervals
    log_q = -0.5 * np.log(2 * np.pi * sigma**2) - (z - mu) ** 2 / (2 * sigma**2)
    log_p = -0.5 * np.log(2 * np.pi) - z**2 / 2
    f = np.exp(log_q) * (log_q - log_p)
    h = z[1] - z[0]
    return h / 3 * (f[0] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum() + f[-1])


cases = [(0.0, 1.0), (1.5, 0.3), (-2.0, 3.0), (0.2, 0.05)]
for m, s in cases:
    closed = Normal(m, 2 * math.log(s)).kl_standard().item()
    numeric = kl_by_quadrature(m, s)
    print(f"mu {m:5.2f}, σ {s:4.2f}: closed form {closed:.10f}, quadrature {numeric:.10f}")
    assert abs(closed - numeric) < 1e-9 * max(1.0, numeric)

# %% [markdown]
# The course notes this derivation follows end with Σ(−½ ln σ² + ½mu² + ½σ² **+ ½**). The same
# check, run on the notes' formula, fails: at q = p (mu = 0, σ = 1) a KL must be 0, and the notes
# give 1 per dimension: a sign slipped one line earlier (docs/derivations.md, section 7, and
# `tests/test_math.py::test_notes_closing_formula_has_a_sign_slip`).

# %%
def kl_in_the_notes(mu, sigma):
    return -0.5 * np.log(sigma**2) + 0.5 * mu**2 + 0.5 * sigma**2 + 0.5


try:
    for m, s in cases:
        np.testing.assert_allclose(kl_in_the_notes(m, s), kl_by_quadrature(m, s), rtol=1e-6,
                                   err_msg=f"the notes' KL at mu {m}, σ {s}")
    raise AssertionError("the notes' formula should have failed")
except AssertionError as error:
    print("caught:", "\n".join(str(error).strip().splitlines()[:2]))
print(f"at q = p: the notes say {kl_in_the_notes(0.0, 1.0)}, the quadrature {kl_by_quadrature(0.0, 1.0)}")
for m, s in cases:  # ... and they are off by exactly 1 everywhere
    assert abs(kl_in_the_notes(m, s) - 1 - kl_by_quadrature(m, s)) < 1e-9 * max(1, m * m + s * s)
print("the notes' formula minus the quadrature, in every case: 1")

# %% [markdown]
# The KL's gradient is derived by hand too (mu_bar = KL_bar·mu, log_var_bar = ½·KL_bar·(σ² − 1)),
# and checked the same way as everything else:

# %%
print("largest error, KL:", minivae.gradcheck(lambda m, v: Normal(m, v).kl_standard(),
                                              rng.standard_normal(4), rng.standard_normal(4)))

# %% [markdown]
# ## 5. The VAE's loss, line by line; a few epochs on real digits
#
# The model (Kingma & Welling, 2014), as pytorch/examples builds it: an MLP encoder 784-400-(20, 20)
# and decoder 20-400-784, Bernoulli pixels. The loss is −ELBO in nats per image:
#
#     −ELBO(x) = E_q(z|x)[−ln p(x|z)] + KL(q(z|x) ‖ p(z)) = rec + kl

# %%
from minivae.models.latent import LatentVariableModel
from minivae.models.vae import VAE

(x_train, y_train), (x_test, y_test) = data.load("mnist-5k")  # shipped with the package
x_train, x_test = data.to_float(x_train), data.to_float(x_test)  # (N, 1, 28, 28) in [0, 1]
print(f"mnist-5k: {len(x_train)} training and {len(x_test)} test images")
model = VAE.mlp(rng=np.random.default_rng(0))
show_source(LatentVariableModel.elbo)  # the VAE's and the PixelVAE's (models/latent.py)
show_source(VAE.loss)

# %% [markdown]
# The same lines, run one at a time with their shapes, give the same number:

# %%
x = Tensor(x_train[:128])  # (B, 1, 28, 28)
B = x.shape[0]
step_rng = np.random.default_rng(1)
q = model.encode(x)  # q(z|x): mu, log_var (B, 20)
z = q.rsample(step_rng)  # z = mu + σ·eps, (B, 20)
px = model.likelihood(model.decode(z))  # p(x|z): Bernoulli logits (B, 1, 28, 28)
rec = -px.log_prob(x).sum() / B  # E_q[−ln p(x|z)], one sample per image
kl = model.prior.kl(q, z).sum() / B  # KL(q(z|x) ‖ N(0, I)), closed form
loss = rec + kl
print(f"mu {q.mu.shape}, z {z.shape}, logits {px.logits.shape}: rec {rec.item():.2f} + "
      f"kl {kl.item():.4f} = {loss.item():.2f} nats per image")
assert loss.item() == model.loss(x, np.random.default_rng(1))[0].item()

# %% [markdown]
# And its graph, every parameter under its state_dict name (this picture is in the README):

# %%
viz.graph(loss, picture("vae_loss_graph.dot"), model)  # the text: no dependency
if shutil.which("dot"):
    viz.graph(loss, picture("vae_loss_graph.svg"), model)  # rendered by Graphviz
    show(picture("vae_loss_graph.svg"))
else:
    print("Graphviz's dot is not installed (apt-get install graphviz): wrote only the DOT text, "
          + picture("vae_loss_graph.dot"))

# %% [markdown]
# Training is `minivae.train.fit`: shuffled minibatches, an optimiser step each, the test −ELBO
# after each epoch. The full tour trains 10 epochs on the 4,000 training digits; the fast one a
# single epoch on 1,000.

# %%
from minivae.train import fit

n_train, epochs = (1000, 1) if FAST else (len(x_train), 10)
history = fit(model, optim.Adam(model.parameters(), lr=1e-3), x_train[:n_train], x_test,
              epochs=epochs, batch_size=128, seed=0)
print(f"test −ELBO after {epochs} epoch(s): {history[-1]['test_loss']:.2f} nats per image")

# %% [markdown]
# A bound on −ln p(x) tighter than the ELBO, by importance sampling (Burda et al., 2016), and the
# usual pictures: test digits over their reconstructions, and samples z ~ N(0, I) decoded.

# %%
from minivae.metrics import iwae_nll

k = 10 if FAST else 100
nll = iwae_nll(model, x_test[:100], k, np.random.default_rng(1))
print(f"first 100 test digits: −ln p(x) ≤ {nll:.2f} nats (IWAE, k = {k})")
show(viz.reconstructions(x_test[:16], model.reconstruct(x_test[:16]),
                         picture("vae_reconstructions.png"), n=16,
                         title="test digits (top) and their reconstructions"))
show(viz.image_grid(model.sample(64, np.random.default_rng(2)), picture("vae_samples.png"),
                    title="z ~ N(0, I) through the decoder"))

# %% [markdown]
# ## 6. Masked convolutions, the PixelCNN, the PixelVAE and a learned prior
#
# A PixelCNN (van den Oord et al., 2016) models p(x) = Π_i p(x_i | x_<i) over the pixels in raster
# order. One convolution pass computes every conditional at once provided that output pixel i sees
# only input pixels before i: the kernel is masked. minivae's `MaskedConv2d` keeps the mask as
# `.mask`; 'A' hides the centre (the first layer), 'B' keeps it, and the gated PixelCNN's two
# stacks use 'V' (the rows above and the centre row) and 'HA' / 'HB' (the pixels to the left).

# %%
masks = {t: nn.MaskedConv2d(1, 1, 5, t, rng=rng).mask for t in ("A", "B", "V", "HA", "HB")}
print("    ".join(f"{t:<9}" for t in masks))
for row in range(5):
    print("    ".join(" ".join("■" if m[row, col] else "·" for col in range(5)) for m in masks.values()))

# %% [markdown]
# Causality, shown by a gradient: the derivative of one output logit with respect to every input
# pixel is non-zero exactly where that logit can see. A plain stack of 'A' and 'B' masked layers
# sees only pixels before the target, but misses a wedge above and to its right (the blind spot);
# the gated PixelCNN, whose vertical stack reaches the horizontal one through a one-row shift,
# sees the whole window above.

# %%
from minivae.models.pixelcnn import PixelCNN

H = W = 15
r0, c0 = 10, 7  # the target pixel
image = Tensor((rng.random((1, 1, H, W)) < 0.5).astype(np.float32), requires_grad=True)
one_hot = np.zeros((1, 1, H, W), np.float32)
one_hot[0, 0, r0, c0] = 1  # the cotangent that picks logit (r0, c0)
kw = dict(rng=np.random.default_rng(3))
plain = nn.Sequential(nn.MaskedConv2d(1, 8, 7, "A", **kw), nn.Tanh(),
                      *[m for _ in range(3) for m in (nn.MaskedConv2d(8, 8, 3, "B", **kw), nn.Tanh())],
                      nn.MaskedConv2d(8, 1, 1, "B", **kw))
gated = PixelCNN((1, H, W), channels=8, layers=3, **kw)
seen = {}
for name, network in [("a stack of 'A' and 'B' masks", plain), ("the gated PixelCNN", gated)]:
    image.grad = None
    network(image).backward(one_hot)
    seen[name] = np.abs(image.grad[0, 0]) > 0  # (H, W)
    after = np.arange(H * W).reshape(H, W) >= r0 * W + c0  # pixel (r0, c0) and all after it
    assert not seen[name][after].any(), f"{name} sees the future"
    print(f"{name}: sees {seen[name].sum()} of the {r0 * W + c0} pixels before the target, "
          "none at or after it")
blind = ~seen["a stack of 'A' and 'B' masks"] & seen["the gated PixelCNN"]
print(f"pixels only the gated PixelCNN sees (the blind spot): {blind.sum()}")
assert blind.sum() > 0


def draw_receptive_fields(seen: dict, path: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(3.2 * len(seen), 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, mask) in enumerate(seen.items()):
        ax = fig.add_subplot(1, len(seen), i + 1)
        ax.imshow(mask, cmap="Blues", vmin=0, vmax=1.4)
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), 1, 1, color="crimson"))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("pixels with d logit(red) / d pixel ≠ 0", fontsize=10)
    fig.savefig(path)
    return path


show(draw_receptive_fields(seen, picture("pixelcnn_receptive_fields.png")))

# %% [markdown]
# Sampling is sequential: pixel i needs the pixels before it. The oracle runs the whole network
# once per pixel (H·W passes); minivae's cached sampler keeps every layer's feature maps and
# computes only what each new pixel changes. Both follow x_i = [u_i < σ(logit_i)] with uniform
# noise u, so the same noise must give the same image, bit for bit:

# %%
side = 14 if FAST else 28
pixelcnn = PixelCNN((1, side, side), channels=8, layers=2, rng=np.random.default_rng(4))
noise = np.random.default_rng(5).random((4, 1, side, side))
start = time.perf_counter()
cached = pixelcnn.sample(4, noise=noise, cached=True)
t_cached = time.perf_counter() - start
start = time.perf_counter()
naive = pixelcnn.sample(4, noise=noise, cached=False)
t_naive = time.perf_counter() - start
assert np.array_equal(cached, naive)
print(f"4 samples of {side}×{side}: cached {t_cached:.2f} s, one pass per pixel {t_naive:.2f} s, "
      "the same images")

# %% [markdown]
# The PixelVAE (Gulrajani et al., 2016) puts that PixelCNN under a VAE: the conv VAE's encoder
# gives q(z|x), and z biases every gate of the PixelCNN, p(x|z) = Π_i p(x_i | x_<i, z): here with
# one bias per gate, the same at every pixel (`conditioning="bias"`, the paper's MNIST model; the
# example's default, "map", turns z into feature maps first, so its bias can differ per pixel). Its loss
# is the VAE's, with ln p(x|z) exact from one teacher-forced pass. The pixels are binary here:
# each batch is a fresh Bernoulli draw of the grey levels (dynamic binarisation).

# %%
from minivae.models.pixelvae import PixelVAE

pixelvae = PixelVAE.gated(latent_dim=8, channels=8, layers=2, rng=np.random.default_rng(0))
x = Tensor(data.binarize(x_train[:64], np.random.default_rng(6)))  # (B, 1, 28, 28) of 0/1
B = x.shape[0]
q = pixelvae.encode(x)  # q(z|x): (B, 8) each
z = q.rsample(np.random.default_rng(1))  # (B, 8)
rec = -pixelvae.log_likelihood(x, z).sum() / B  # −ln p(x|z), teacher-forced
kl = pixelvae.prior.kl(q, z).sum() / B
pixelvae.eval()  # the true −ELBO: no KL weight, no free bits
assert math.isclose((rec + kl).item(), pixelvae.loss(x, np.random.default_rng(1))[0].item(),
                    rel_tol=1e-6)  # the model sums the KL per dimension first: float32 rounding
pixelvae.train()
print(f"PixelVAE before training: rec {rec.item():.1f} + kl {kl.item():.3f} nats per image")

n_train, epochs = (300, 1) if FAST else (len(x_train), 3)
# Adam at 3e-3 and batch 50 (the example: 1e-3, 100, 30 epochs), so that three epochs make digits
history = fit(pixelvae, optim.Adam(pixelvae.parameters(), lr=3e-3), x_train[:n_train],
              x_test[:200 if FAST else 1000], epochs=epochs, batch_size=50, seed=0, binarize=True)
print(f"test −ELBO after {epochs} epoch(s): {history[-1]['test_loss']:.2f}, of which KL "
      f"{history[-1]['test_kl']:.2f}")
show(viz.image_grid(pixelvae.sample(16, np.random.default_rng(2)), picture("pixelvae_samples.png"),
                    title="PixelVAE: z ~ N(0, I), then x ~ p(x|z) pixel by pixel"))

# %% [markdown]
# Watch the KL term: a decoder this strong can model the digits without z, and the KL falls
# towards 0 as training goes on (posterior collapse). `examples/pixelvae.py` has the usual
# counters, a KL warm-up (`--warmup`) and free bits (`--free-bits`), and its `--latent-dim 0` is
# the PixelCNN alone, the control that shows what z adds.
#
# The example's default PixelVAE, trained for its 30 epochs, ships inside the package.
# `minivae.load_pretrained` rebuilds it from the settings its run recorded (the same call,
# `minivae.load_run(folder)`, reloads any example's run), and the cached sampler draws from it in
# seconds. Decompressions show what z keeps of a digit: z ~ q(z|x), then every pixel anew from
# p(x|z). Its z carries about 5 nats, seen at every pixel through feature maps m(z): the
# decompressions keep a digit's place, slant and rough shape, not always its class, and samples
# from N(0, I) are strokes and some digits (the README's PixelVAE section has the numbers, over
# seeds, against the PixelCNN alone).

# %%
trained = minivae.load_pretrained("pixelvae")
print(trained.config)
start = time.perf_counter()
digits = data.binarize(x_test[:8], np.random.default_rng(4))  # (8, 1, 28, 28) of 0/1
again = [trained.reconstruct(digits, np.random.default_rng(5 + i)) for i in range(3)]
print(f"3 × 8 decompressions by the pretrained PixelVAE in {time.perf_counter() - start:.1f} s")
show(viz.image_grid(np.concatenate([digits, *again]), picture("pixelvae_pretrained.png"), nrow=8,
                    title="test digits (top), then three decompressions of each"))

# %% [markdown]
# A learned prior. N(0, I) is not the best p(z) for a trained encoder: the best is the aggregate
# posterior q(z) = (1/N) Σ_n q(z|x_n). `minivae.priors` has a learned mixture of Gaussians and the
# VampPrior (Tomczak & Welling, 2018). Their KL has no closed form, so the loss uses the one-sample
# estimate ln q(z|x) − ln p(z) at the z the reconstruction used. An unbiased estimate, checked on
# the spot: a mixture with one component at N(0, I) is the standard prior, and the estimate's mean
# over many z is the closed form.

# %%
from minivae import priors

one = priors.MixturePrior(latent_dim=3, components=1, rng=rng, dtype=np.float64)
one.means.data[:] = 0  # m = 0, log σ² = 0: N(0, I)
q = Normal(np.array([[0.5, -1.0, 0.2]]), np.array([[-0.5, 0.3, 0.0]]))
z = q.rsample(np.random.default_rng(8), (100_000,))  # (100000, 1, 3)
estimates = one.kl(q, z.reshape(-1, 3)).data  # (100000, 1)
closed = q.kl_standard().sum().item()
standard_error = estimates.std() / math.sqrt(len(estimates))
print(f"one-sample estimate, mean of 100,000: {estimates.mean():.4f} ± {standard_error:.4f}; "
      f"closed form {closed:.4f}")
assert abs(estimates.mean() - closed) < 4 * standard_error

# %% [markdown]
# A 2-D VAE with a learned mixture of ten Gaussians as its prior, and its codes over both densities:

# %%
from minivae.metrics import encode_all

mixture_vae = VAE.mlp(latent_dim=2, prior="mixture", prior_components=10,
                      rng=np.random.default_rng(0))
n_train, epochs = (1000, 1) if FAST else (len(x_train), 10)
fit(mixture_vae, optim.Adam(mixture_vae.parameters(), lr=1e-3), x_train[:n_train], x_test,
    epochs=epochs, batch_size=128, seed=0)
show(viz.prior_density(encode_all(mixture_vae, x_test).mu.data, y_test,
                       {"N(0, I)": priors.StandardPrior(2), "learned mixture": mixture_vae.prior},
                       picture("learned_prior.png"), title="E[z|x] of test digits over p(z)"))

# %% [markdown]
# ## 7. What minivae leaves out, and where each piece lives in PyTorch
#
# minivae is small because it leaves out what a framework must have:
#
# - one device (the CPU) and two dtypes (float32, float64); no GPU, no mixed precision;
# - the graph is Python objects and `backward()` returns plain arrays, so there are no gradients of
#   gradients (no double backward), no in-place ops with version counters, no views that share
#   gradients, no hooks;
# - no compiler: speed comes from a handful of Numba kernels and BLAS, and ops are fused only where
#   minivae fuses them by hand (a layer with its activation, σ with the BCE, the PixelCNN's gate);
# - one process: minivae's own worker threads share out convolutions, products and the Adam update,
#   but there is no distributed training, no data-loader workers;
# - a few dozen ops, each with its derivative beside it, instead of thousands.
#
# | minivae | in PyTorch |
# | --- | --- |
# | `Tensor`, `Function.forward/backward`, `ctx.save_for_backward` | `torch.Tensor`, `torch.autograd.Function` (the same names) |
# | `Tensor.backward()`, `no_grad()` | the C++ autograd engine, `torch.no_grad()` |
# | `minivae.gradcheck` | `torch.autograd.gradcheck` |
# | `viz.graph` | `torchviz.make_dot` (a separate package) |
# | `kernels/`: the `fast` door (Numba) and the `numpy` door | ATen's CPU and CUDA kernels, oneDNN, cuDNN |
# | `kernels/fast/threads.py`, `set_num_threads` | `torch.set_num_threads`, the intra-op thread pool |
# | `kernels/fast/fpenv.py` (subnormals flushed to zero) | `torch.set_flush_denormal(True)` |
# | `nn.Linear`, `Conv2d`, `ConvTranspose2d`, `Sequential` | `torch.nn`, the same names, shapes and keys |
# | `nn.MaskedConv2d` | none built in: a Conv2d with weight · mask (the bridge's) |
# | `optim.SGD`, `optim.Adam` | `torch.optim.SGD`, `torch.optim.Adam` (the same update rules) |
# | `distributions.Normal.rsample`, `kl_standard` | `torch.distributions.Normal.rsample`, `kl_divergence` |
# | `distributions.Bernoulli` | `torch.distributions.Bernoulli(logits=...)` |
# | `train.fit` | your own loop, or PyTorch Lightning |
# | `minivae.save` / `load` (.npz) | `torch.save(model.state_dict())` |
#
# The way there is `minivae.torch_bridge`: `to_torch(model)` builds the same network from torch.nn
# modules, with the same state_dict keys and weights, so a model understood (or trained) here
# continues in PyTorch, on a GPU or on many, without retraining; `from_torch` brings it back.

# %%
try:
    import torch
except ImportError:
    torch = None
if torch is None:
    print("skipped: torch is not installed (pip install torch; minivae never needs it)")
else:
    from minivae.torch_bridge import from_torch, to_torch

    twin = to_torch(model)  # the VAE trained above
    print(twin)
    x = x_test[:100]
    eps = np.random.default_rng(9).standard_normal((100, 20), dtype=np.float32)  # rsample's draw
    ours = model.loss(Tensor(x), np.random.default_rng(9))[0].item()
    with torch.no_grad():
        theirs = twin.loss(torch.from_numpy(x), torch.from_numpy(eps))[0].item()
    print(f"the same −ELBO at the same noise: minivae {ours:.4f}, PyTorch {theirs:.4f}")
    assert abs(ours - theirs) < 1e-3
    back = from_torch(twin.state_dict(), VAE.mlp(rng=np.random.default_rng(1)))
    assert all(np.array_equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    print("and back into minivae, bit for bit")

# %% [markdown]
# That is the whole house, bottom to top. Each floor has its tests in `tests/`, its derivations
# in `docs/derivations.md`, and its examples in `examples/`.
#
# Next, write it yourself: `docs/exercises.md` is a path of exercises through the same floors (the
# backward rules, the topological sort, Adam, im2col, PCA, the reparameterised sample, the KL, the
# ELBO and IWAE, the AAE's losses, the PixelCNN's masks and sampler, the learned priors), each a
# region of the real source that `python -m minivae.exercises start DIR` blanks in a copy, and
# each graded by the tests that prove its properties: `python -m minivae.exercises check NAME`.

# %%
print(f"the tour took {time.perf_counter() - START:.0f} s; figures in {OUT}")
