"""The README's table of the house is the import rule: each file imports only its own floor and
the floors listed above it in the table, with one cycle allowed (tensor.py <-> functional.py). The
table is read from the README itself, so the table, the files and their imports cannot drift
apart. And above kernels/, a file imports the kernels' interface (minivae.kernels) only, never a
door's own module (minivae.kernels.fast..., minivae.kernels.numpy...)."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
CYCLE = {"minivae/tensor.py", "minivae/functional.py"}


def floors() -> dict[str, int]:
    """file or folder ('minivae/models/') -> its row in the README's table of the house."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## The house, floor by floor"):].split("\n\n")[2]
    rows = [line for line in table.splitlines() if line.startswith("| `minivae/")]
    floor = {}
    for row, line in enumerate(rows):
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        folder = names[0].rsplit("/", 1)[0] + "/"
        for name in names:
            floor[name if name.startswith("minivae/") else folder + name] = row
    return floor


def floor_of(path: str, floor: dict[str, int]) -> int:
    """The row of the file, or of the nearest folder above it listed whole ('minivae/kernels/')."""
    if path in floor:
        return floor[path]
    parts = path.split("/")[:-1]
    for depth in range(len(parts), 0, -1):
        folder = "/".join(parts[:depth]) + "/"
        if folder in floor:
            return floor[folder]
    raise KeyError(path)


def module_path(module: str) -> str:
    """'minivae.models.vae' -> 'minivae/models/vae.py' (or a package's __init__.py)."""
    path = module.replace(".", "/")
    return path + "/__init__.py" if (ROOT / path).is_dir() else path + ".py"


def imports(path: pathlib.Path) -> set[str]:
    """The minivae files that `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minivae"):
            for alias in node.names:  # `from minivae import nn` imports the file nn.py
                sub = f"{node.module}.{alias.name}"
                found.add(module_path(sub if (ROOT / sub.replace(".", "/")).exists()
                                      or (ROOT / (sub.replace(".", "/") + ".py")).exists()
                                      else node.module))
        elif isinstance(node, ast.Import):
            found |= {module_path(a.name) for a in node.names if a.name.startswith("minivae")}
    return found


def package_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "minivae").rglob("*.py")
                  if p.name != "__init__.py")


def test_the_table_lists_every_file():
    floor = floors()
    unlisted = []
    for path in package_files():
        try:
            floor_of(path, floor)
        except KeyError:
            unlisted.append(path)
    assert not unlisted, f"files missing from the README's table of the house: {unlisted}"
    missing = [name for name in floor if not (ROOT / name).exists()]
    assert not missing, f"the README's table names files that do not exist: {missing}"


def test_each_file_imports_only_its_floor_and_those_below():
    floor = floors()
    upward = []
    for path in package_files():
        for target in imports(ROOT / path):
            if target.endswith("__init__.py") or {path, target} == CYCLE:
                continue
            if floor_of(target, floor) > floor_of(path, floor):
                upward.append(f"{path} imports {target}")
    assert not upward, "imports from a higher floor: " + "; ".join(sorted(upward))


def test_the_rule_finds_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: viz/latents.py importing the models is caught."""
    fake = tmp_path / "viz.py"
    fake.write_text("def f():\n    from minivae.models.pca import PCA\n")
    floor = floors()
    targets = imports(fake)
    assert targets == {"minivae/models/pca.py"}
    assert floor_of("minivae/models/pca.py", floor) > floor_of("minivae/viz/latents.py", floor)


def backend_imports(path: pathlib.Path) -> set[str]:
    """The modules under minivae.kernels (a door, or a file of one) that `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "minivae.kernels":
            found |= {f"minivae.kernels.{a.name}" for a in node.names
                      if (ROOT / "minivae" / "kernels" / a.name).is_dir()
                      or (ROOT / "minivae" / "kernels" / f"{a.name}.py").exists()}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minivae.kernels."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("minivae.kernels.")}
    return found


def test_nothing_above_the_kernels_imports_a_backend_module():
    reaching_in = [f"{path} imports {module}" for path in package_files()
                   if not path.startswith("minivae/kernels/")
                   for module in sorted(backend_imports(ROOT / path))]
    reaching_in += [f"minivae/__init__.py imports {module}"
                    for module in sorted(backend_imports(ROOT / "minivae" / "__init__.py"))]
    assert not reaching_in, "past the kernels' interface: " + "; ".join(reaching_in)


def test_the_rule_finds_a_backend_import(tmp_path):
    """The check itself can fail: each way of reaching into a door is caught, the interface is not."""
    fake = tmp_path / "functional.py"
    fake.write_text("from minivae import kernels\nfrom minivae.kernels import fast\n"
                    "from minivae.kernels.fast.fpenv import flush_subnormals\n"
                    "import minivae.kernels.numpy.dense\n")
    assert backend_imports(fake) == {"minivae.kernels.fast", "minivae.kernels.fast.fpenv",
                                     "minivae.kernels.numpy.dense"}
