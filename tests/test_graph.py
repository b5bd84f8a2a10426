"""viz.graph: the DOT text of the graph backward() walks, and its rendering by Graphviz's dot."""
import re
import shutil
from collections import Counter

import numpy as np
import pytest

from minivae import nn, viz
from minivae.models.vae import VAE
from minivae.tensor import Tensor

NODE = re.compile(r'^\s*(n\d+) \[label="(.*?)"', re.M)
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);", re.M)


def parse(source: str) -> tuple[dict, Counter]:
    """{node id: label} and the edges as a multiset of (source label, target label)."""
    nodes = NODE.findall(source)
    labels = dict(nodes)
    assert len(labels) == len(nodes), "a node is declared twice"
    edges = Counter((labels[a], labels[b]) for a, b in EDGE.findall(source))
    return labels, edges


def test_a_small_expression_gives_exactly_its_nodes_and_edges():
    x = Tensor(np.ones(3), requires_grad=True)  # a leaf that wants a gradient, unnamed
    w = nn.Parameter(np.ones(3))
    y = (x * x + (w.exp() - 2.0)).sum()  # the constant 2.0 needs no gradient: no node
    labels, edges = parse(viz.graph(y, names={"w": w}))
    assert len(set(labels.values())) == len(labels)  # so the edges by labels say everything
    assert sorted(labels.values()) == sorted([
        r"leaf\n(3,)", r"w\n(3,)", r"Mul\n(3,)", r"Exp\n(3,)", r"Sub\n(3,)", r"Add\n(3,)",
        r"Sum\n()"])
    assert edges == Counter({
        (r"leaf\n(3,)", r"Mul\n(3,)"): 2,  # x * x reads x twice
        (r"w\n(3,)", r"Exp\n(3,)"): 1, (r"Exp\n(3,)", r"Sub\n(3,)"): 1,
        (r"Mul\n(3,)", r"Add\n(3,)"): 1, (r"Sub\n(3,)", r"Add\n(3,)"): 1,
        (r"Add\n(3,)", r"Sum\n()"): 1})
    output = [line for line in viz.graph(y).splitlines() if "penwidth" in line]
    assert len(output) == 1 and r'"Sum\n()"' in output[0]  # the tensor itself stands out


def test_a_leaf_alone_is_one_node():
    w = nn.Parameter(np.zeros((2, 5)))
    labels, edges = parse(viz.graph(w, names=[("w", w)]))
    assert list(labels.values()) == [r"w\n(2, 5)"] and not edges


@pytest.mark.parametrize("build", ["mlp", "conv", "mlp-vamp"])
def test_every_parameter_of_the_vae_loss_appears_once_by_its_state_dict_name(build):
    rng = np.random.default_rng(0)
    x = (rng.random((3, 1, 28, 28)) < 0.5).astype(np.float32)
    if build == "mlp-vamp":  # the encoder runs twice: on x and on the pseudo-inputs
        model = VAE.mlp(latent_dim=2, hidden=8, prior="vamp", prior_components=2,
                        prior_data=x, rng=rng)
    else:
        model = getattr(VAE, build)(latent_dim=2, rng=rng)
    loss, _ = model.loss(Tensor(x), rng)
    labels, _ = parse(viz.graph(loss, names=model))
    leaves = Counter(label.split(r"\n")[0] for label in labels.values()
                     if not label.split(r"\n")[0][0].isupper())  # ops are CamelCase classes
    assert leaves == Counter(dict(model.state_dict()).keys())
    for name, p in model.named_parameters():
        assert f"{name}\\n{tuple(p.shape)}" in labels.values()


def test_a_dot_path_gets_the_text_and_a_picture_needs_dot(tmp_path, monkeypatch):
    w = nn.Parameter(np.ones(2))
    source = viz.graph((w * w).sum(), tmp_path / "g.dot", names={"w": w})
    assert (tmp_path / "g.dot").read_text() == source
    with pytest.raises(ValueError, match="must end in"):
        viz.graph(w, tmp_path / "g.txt")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        viz.graph(w, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_dot_renders_svg_and_png(tmp_path):
    model = VAE.mlp(latent_dim=2, hidden=8, rng=np.random.default_rng(0))
    x = np.zeros((2, 1, 28, 28), np.float32)
    loss, _ = model.loss(Tensor(x), np.random.default_rng(1))
    viz.graph(loss, tmp_path / "loss.svg", model)
    viz.graph(loss, tmp_path / "loss.png", model)
    svg = (tmp_path / "loss.svg").read_text()
    assert "<svg" in svg and "encoder.1.weight" in svg and "KLStandardNormal" in svg
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
