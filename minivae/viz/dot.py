"""The computation graph behind a tensor: every op with its output shape, every parameter under
its state_dict name, as Graphviz DOT text, rendered to SVG/PNG/PDF when `dot` is installed.

    graph(tensor, path, names)
"""
from __future__ import annotations

import os

from minivae.tensor import Tensor, graph_inputs, topological_order

_RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def graph(tensor: Tensor, path=None, names=None) -> str:
    """The graph that produced `tensor`, as Graphviz DOT text: one node per op, labelled with the
    op's Function and its output shape, one per leaf that requires a gradient (a parameter by its
    `state_dict` name when `names` is given: a Module, or a dict or pairs of name -> Tensor), and
    an edge from each input to the op that read it (twice for x * x). These are the nodes and
    edges `backward()` walks; constants and data that need no gradient are left out.

    With `path`, also write it: '.dot' or '.gv' the text itself (no dependency), '.svg', '.png' or
    '.pdf' rendered by Graphviz's `dot` program (apt-get install graphviz; without it a
    RuntimeError says so). Returns the DOT text."""
    if hasattr(names, "named_parameters"):
        names = names.named_parameters()
    elif isinstance(names, dict):
        names = names.items()
    name_of = {id(t): name for name, t in (names or ())}

    order = topological_order(tensor)  # inputs before the ops that read them, as backward()
    ids = {id(node): f"n{i}" for i, node in enumerate(order)}

    lines = ["digraph minivae {", '  node [fontname="Helvetica", fontsize=10];']
    for node in order:
        shape = str(tuple(node.shape))
        if node._ctx is None:  # a leaf: a parameter, or another tensor that wants a gradient
            label = f"{name_of.get(id(node), 'leaf')}\\n{shape}"
            style = 'shape=box, style=filled, fillcolor="lightblue"'
        else:
            label = f"{node._fn.__name__}\\n{shape}"
            style = 'shape=ellipse'
        if node is tensor:
            style += ', penwidth=2'
        lines.append(f'  {ids[id(node)]} [label="{_dot_escape(label)}", {style}];')
    for node in order:
        lines += [f"  {ids[id(x)]} -> {ids[id(node)]};" for x in graph_inputs(node)]
    lines.append("}")
    source = "\n".join(lines) + "\n"
    if path is not None:
        _write_graph(source, path)
    return source


def _dot_escape(label: str) -> str:
    return label.replace('"', '\\"')


def _write_graph(source: str, path) -> None:
    import shutil
    import subprocess

    from minivae import files

    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".dot", ".gv"):
        payload = source.encode()
    elif suffix in _RENDERED:
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(f"graph: rendering {path} needs Graphviz's `dot` program "
                               f"(apt-get install graphviz); a '.dot' path needs nothing")
        payload = subprocess.run([dot, f"-T{_RENDERED[suffix]}"], input=source.encode(),
                                 capture_output=True, check=True).stdout
    else:
        raise ValueError(f"graph: path must end in .dot, .gv, .svg, .png or .pdf, got {path!r}")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with files.atomic_write(path) as f:
        f.write(payload)
