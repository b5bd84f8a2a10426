"""A learner's copy of the project, and the grading of its exercises.

`start` copies the files git tracks (or, outside a git checkout, the tree without .git, runs/,
caches and build leftovers), so the copy installs and runs as the original does, and blanks the
chosen exercises' regions. `grade` runs exactly an exercise's grading tests through the numpy door
and reads pytest's JUnit report back into one verdict per property.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from minivae.exercises import regions
from minivae.exercises.registry import EXERCISES, Exercise

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout (or copy) this module is in
SKIPPED = shutil.ignore_patterns(".git", "runs", "__pycache__", "*.egg-info", ".pytest_cache",
                                 ".mypy_cache", ".ruff_cache", "build", "dist")


def copy_project(dest: pathlib.Path, root: pathlib.Path = ROOT) -> None:
    """The project's files into `dest`, which must not exist or be empty: those git tracks, and
    new ones it does not ignore."""
    if not ((root / "setup.cfg").is_file() and (root / "tests").is_dir()):
        raise FileNotFoundError(f"{root} is not a clone of minivae's repository (an installed "
                                f"minivae has no tests to grade with): run this from a clone")
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: choose a new folder for the copy")
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (root / name).is_file():  # a tracked file deleted in the work tree is not
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / name, dest / name)
    else:
        shutil.copytree(root, dest, ignore=SKIPPED, dirs_exist_ok=True)


def blank(root: pathlib.Path, exercise: Exercise) -> None:
    """Replace the exercise's regions under `root` with its NotImplementedError."""
    for name in exercise.files:
        path = root / name
        path.write_text(regions.blank(path.read_text(), exercise.name, exercise.message))


def is_done(root: pathlib.Path, exercise: Exercise) -> bool:
    """No region of the exercise still raises its NotImplementedError."""
    return not any(regions.is_blank((root / f).read_text(), exercise.name) for f in exercise.files)


def start(dest: pathlib.Path, names: list[str]) -> None:
    copy_project(dest)
    for exercise in EXERCISES:
        if exercise.name in names:
            blank(dest, exercise)


def run_tests(root: pathlib.Path, node_ids: list[str]) -> dict[str, str]:
    """Run the tests under `root` through the numpy door, Hypothesis not shrinking a failure
    (tests/conftest.py's 'verdict' profile): node id -> '' when it passed (or skipped), else the
    first line of why it failed. A node id whose file did not collect, or
    that matched no test, maps to why."""
    env = dict(os.environ, MINIVAE_BACKEND="numpy", MPLBACKEND="Agg", HYPOTHESIS_PROFILE="verdict",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.xml"
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"--junitxml={report}", "-o", "junit_family=xunit1", *node_ids],
                             cwd=root, env=env, capture_output=True, text=True)
        cases = list(ET.parse(report).getroot().iter("testcase")) if report.exists() else []
        outcome: dict[str, str] = {}
        for case in cases:
            file = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
            problem = case.find("failure")
            problem = case.find("error") if problem is None else problem
            why = "" if problem is None else _first_line(problem)
            node = f"{file}::{case.get('name')}"
            outcome[node] = outcome.get(node) or why
    results = {}
    for node_id in node_ids:
        matched = [why for node, why in outcome.items()
                   if node == node_id or node.split("[")[0] == node_id]
        if not matched:
            tail = run.stdout.strip().splitlines()[-1:] or ["no output"]
            results[node_id] = f"did not run ({tail[0]})"
        else:
            results[node_id] = next((why for why in matched if why), "")
    return results


def _first_line(problem) -> str:
    """The exercise's NotImplementedError if it was raised anywhere, else the message's first
    line."""
    text = f"{problem.get('message') or ''}\n{problem.text or ''}"
    blank = [line for line in text.splitlines() if "NotImplementedError: exercise " in line]
    lines = [line for line in text.splitlines() if line.strip()] or ["failed"]
    return (blank or lines)[0].strip()[:200]


def verdict(exercise: Exercise, results: dict[str, str]) -> tuple[bool, list[str]]:
    """(all passed, one line per property)."""
    lines = []
    for node_id, prop in exercise.grading:
        why = results[node_id]
        if not why:
            lines.append(f"  ✓ {prop}")
        elif "NotImplementedError" in why and f"exercise {exercise.name}:" in why:
            lines.append(f"  ✗ {prop}: not written yet")
        else:
            lines.append(f"  ✗ {prop}\n      {node_id}\n      {why}")
    return all(not results[n] for n, _ in exercise.grading), lines


def grade(exercise: Exercise, root: pathlib.Path = ROOT) -> tuple[bool, list[str]]:
    return verdict(exercise, run_tests(root, [n for n, _ in exercise.grading]))
