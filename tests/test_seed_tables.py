"""The README's PixelVAE and prior tables are tools/seed_tables.py's output, mean ± sd over seeds
as docs/seed_tables.json records each run's numbers (issue 25), and a difference is called real
only beyond the spread."""
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script():
    spec = importlib.util.spec_from_file_location("seed_tables",
                                                  os.path.join(ROOT, "tools", "seed_tables.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_tables_are_what_the_script_renders_from_the_runs():
    with open(os.path.join(ROOT, "docs", "seed_tables.json")) as f:
        tables = json.load(f)
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert script().render_readme(readme, tables) == readme, (
        "README.md's seed tables differ from docs/seed_tables.json: run python "
        "tools/seed_tables.py --render (or without --render to read the runs anew)")


def test_a_difference_is_real_only_beyond_the_sum_of_the_spreads():
    row = lambda *losses: {"seeds": {str(i): {"test_loss": v} for i, v in enumerate(losses)}}  # noqa: E731
    verdict = script().verdict
    assert verdict(row(100.0, 102.0), row(104.0, 106.0)) == "-4.00, beyond the spread"
    assert verdict(row(100.0, 102.0), row(102.0, 104.0)) == "-2.00, within it"


def test_a_seed_that_stopped_is_named_in_its_row_not_hidden():
    seed = {"test_loss": 92.0, "test_rec": 87.0, "test_kl": 5.0, "iwae_nll": 90.0,
            "iwae_images": 100, "active_units": 16, "mmd": 1e-3, "epoch": 30,
            "seconds_training": 600.0}
    control = {"command": "c", "seeds": {"0": {**seed, "test_loss": 99.0},
                                         "1": {**seed, "test_loss": 99.5}}}
    row = {"command": "r", "seeds": {"0": seed}, "stopped": ["seed 1 stopped after epoch 1"]}
    text = script().render({"T": {"nll": "n", "against": ["PixelCNN alone"],
                                  "rows": {"PixelCNN alone": control, "PixelVAE": row}}})
    assert "PixelVAE, 1 seed (seed 1 stopped after epoch 1)" in text
    assert "2 seeds each" in text
