"""The README's table of the house is the import rule: each file imports only its own floor and
the floors listed above it in the table, with one cycle allowed (tensor.py <-> functional.py). The
table is read from the README itself, so the table, the files and their imports cannot drift
apart."""
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
    if path in floor:
        return floor[path]
    return floor[path.rsplit("/", 1)[0] + "/"]  # a file of a folder listed whole


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
    """The check itself can fail: viz.py importing the models is caught."""
    fake = tmp_path / "viz.py"
    fake.write_text("def f():\n    from minivae.models.pca import PCA\n")
    floor = floors()
    targets = imports(fake)
    assert targets == {"minivae/models/pca.py"}
    assert floor_of("minivae/models/pca.py", floor) > floor_of("minivae/viz.py", floor)
