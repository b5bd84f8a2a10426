"""The speed tables of README.md and benchmarks/README.md are benchmarks/roofline.py's output, as
measured in benchmarks/roofline.json, not figures typed by hand (issue 23)."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def roofline():
    path = os.path.join(ROOT, "benchmarks", "roofline.py")
    spec = importlib.util.spec_from_file_location("roofline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("readme", ["README.md", os.path.join("benchmarks", "README.md")])
def test_the_speed_table_is_the_roofline_scripts_output(readme):
    script = roofline()
    with open(os.path.join(ROOT, "benchmarks", "roofline.json")) as f:
        table = script.render(json.load(f))
    text = open(os.path.join(ROOT, readme)).read()
    assert f"{script.BEGIN}\n{table}\n{script.END}" in text, (
        f"{readme}'s speed table differs from benchmarks/roofline.json: run python "
        f"benchmarks/roofline.py --render (or without --render to measure anew)")
