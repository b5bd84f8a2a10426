"""The exercises' tool: every region belongs to an exercise of the registry and every exercise has
its regions; a blanked region raises its hint; the registry's tests, wrong answers and docs fit the
source. (That blanking each exercise fails its grading and each wrong answer is caught is proven by
tools/prove_exercises.py, in CI.)"""
import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

from minivae.exercises import regions, workbook
from minivae.exercises.registry import CANARIES, EXERCISES

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (ROOT / "minivae").rglob("*.py")  # the tool's docstrings show markers
                 if "exercises" not in p.relative_to(ROOT).parts)


def test_every_region_belongs_to_an_exercise_and_every_exercise_has_its_regions():
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        name = str(path.relative_to(ROOT))
        for region in regions.find(path.read_text(), name):
            found.setdefault(region.name, set()).add(name)
    assert set(found) == {e.name for e in EXERCISES}
    for exercise in EXERCISES:
        assert found[exercise.name] == set(exercise.files), exercise.name


def test_markers_are_whole_comment_lines_and_regions_pair_up():
    with pytest.raises(ValueError, match="out of pairs"):
        regions.find("    # end exercise\n", "f.py")
    with pytest.raises(ValueError, match="without"):
        regions.find("    # exercise a: x\n    y = 1\n", "f.py")
    with pytest.raises(ValueError, match="holds no line"):
        regions.find("    # exercise a: x\n    # end exercise\n", "f.py")
    for path in SOURCES:
        for line in path.read_text().splitlines():
            if "# exercise " in line or "# end exercise" in line:
                assert regions.START.match(line) or regions.END.match(line), (path, line)


def test_a_blanked_region_is_one_raise_at_its_indentation_and_the_code_still_parses():
    for exercise in EXERCISES:
        for name in exercise.files:
            text = regions.blank((ROOT / name).read_text(), exercise.name, exercise.message)
            ast.parse(text)
            assert regions.is_blank(text, exercise.name)
            assert not regions.is_blank((ROOT / name).read_text(), exercise.name)
            assert f'("exercise {exercise.name}: {exercise.hint} (docs/' in text


def test_hints_point_at_a_section_and_hold_no_line_of_the_answer():
    derivations = (ROOT / "docs/derivations.md").read_text()
    guide = (ROOT / "docs/exercises.md").read_text()
    for exercise in EXERCISES:
        doc, section = re.fullmatch(r"docs/(\w+)\.md §(\d+)", exercise.reference).groups()
        text = derivations if doc == "derivations" else guide
        assert re.search(rf"^## {section}\. ", text, re.M), exercise.reference
        for name in exercise.files:
            source = (ROOT / name).read_text()
            for region in regions.find(source):
                if region.name == exercise.name:
                    for line in regions.body(source, region).splitlines():
                        code = line.split("#")[0].strip()
                        assert len(code) < 12 or code not in exercise.hint, (exercise.name, code)


def test_the_guide_lists_the_exercises_in_the_registrys_order():
    guide = (ROOT / "docs/exercises.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `([a-z0-9-]+)` \|", guide, re.M)
    assert [name for _, name in rows] == [e.name for e in EXERCISES]
    for number, name in rows:
        assert f"## {number}. `{name}`" in guide


def test_grading_dependent_and_canary_tests_exist():
    for exercise in EXERCISES:
        ids = [n for n, _ in exercise.grading] + list(exercise.dependents)
        assert len(ids) == len(set(ids)), exercise.name
        for node_id in ids + list(CANARIES):
            file, test = node_id.split("::")
            assert re.search(rf"^def {re.escape(test.split('[')[0])}\(",
                             (ROOT / file).read_text(), re.M), node_id


def test_each_wrong_answer_falls_once_inside_its_exercises_regions_and_changes_only_them():
    for exercise in EXERCISES:
        name, right, wrong, _ = exercise.wrong
        assert name in exercise.files and right != wrong
        source = (ROOT / name).read_text()
        seeded = regions.replace(source, exercise.name, right, wrong)
        assert seeded != source
        outside = lambda text: [line for i, line in enumerate(text.split("\n"))
                                if not any(r.start < i < r.end for r in regions.find(text))]
        assert outside(seeded) == outside(source), exercise.name
    with pytest.raises(ValueError, match="not once"):
        regions.replace("    # exercise a: x\n    y = 1\n    # end exercise\n", "a", "z", "w")


def test_start_writes_a_copy_whose_list_and_check_see_the_blank(tmp_path):
    copy = tmp_path / "copy"
    cli = [sys.executable, "-m", "minivae.exercises"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(cli + ["start", str(copy), "--only", "unbroadcast"], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (copy / "tests/test_engine.py").exists() and (copy / "docs/exercises.md").exists()
    assert not (copy / ".git").exists()
    env = dict(os.environ, PYTHONPATH=str(copy))
    listing = subprocess.run(cli + ["list"], cwd=copy, env=env, capture_output=True, text=True)
    statuses = dict(re.findall(r"^\s*\d+\. (\S+)\s+(to do|done)", listing.stdout, re.M))
    assert statuses == {e.name: "to do" if e.name == "unbroadcast" else "done" for e in EXERCISES}
    check = subprocess.run(cli + ["check", "unbroadcast"], cwd=copy, env=env, capture_output=True,
                           text=True)
    assert check.returncode == 1, check.stdout + check.stderr
    for _, prop in EXERCISES[0].grading:
        assert f"✗ {prop}: not written yet" in check.stdout
    again = subprocess.run(cli + ["start", str(copy)], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_copy_without_git_skips_runs_caches_and_build_leftovers(tmp_path):
    source = tmp_path / "project"
    (source / "tests").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="not a clone"):  # an installed minivae, say
        workbook.copy_project(tmp_path / "copy", source)
    for name in ["minivae/a.py", "runs/vae/checkpoint.npz", "minivae/__pycache__/a.pyc",
                 "minivae.egg-info/PKG-INFO", "tests/test_a.py", "setup.cfg"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x")
    workbook.copy_project(tmp_path / "copy", source)
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*")
                    if p.is_file())
    assert copied == ["minivae/a.py", "setup.cfg", "tests/test_a.py"]
