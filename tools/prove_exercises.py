"""Prove that the exercises' grading is real (CI runs this; minivae/exercises/registry.py lists
them).

In a fresh learner's copy of this checkout (the files git tracks), through the numpy door:

  0. untouched, every selected test passes: all exercises' grading tests, their dependents and
     the canaries (registry.CANARIES);
  for each exercise, in order:
  1. blanked as `start` blanks it, each of its grading tests fails and the verdict names each
     property as failing, while every canary it does not declare as a dependent passes (and each
     declared dependent fails);
  2. restored, its files are byte for byte as in step 0 (and at the end, every exercise
     restored, the selected tests pass again);
  3. with its seeded wrong answer (the registry's text replacement, which must fall inside its
     regions), at least one grading test fails; the verdict shows which.

    python tools/prove_exercises.py [NAME ...]      (default: every exercise)
"""
from __future__ import annotations

import pathlib
import sys
import tempfile
import time

from minivae.exercises import regions, workbook
from minivae.exercises.registry import BY_NAME, CANARIES, EXERCISES, Exercise


def wrong_answer(root: pathlib.Path, exercise: Exercise) -> None:
    """Put the exercise's seeded wrong answer into its region, where it must occur once."""
    name, right, wrong, _ = exercise.wrong
    path = root / name
    path.write_text(regions.replace(path.read_text(), exercise.name, right, wrong))


def prove(root: pathlib.Path, exercise: Exercise) -> list[str]:
    """Steps 1 to 3 for one exercise; the problems found (none: proven)."""
    problems = []
    grading = [n for n, _ in exercise.grading]
    originals = {name: (root / name).read_bytes() for name in exercise.files}

    workbook.blank(root, exercise)
    selected = grading + list(exercise.dependents) + [c for c in CANARIES if c not in grading]
    results = workbook.run_tests(root, list(dict.fromkeys(selected)))
    _, lines = workbook.verdict(exercise, results)
    print("\n".join(f"   blank {line.strip()}" for line in lines if line.strip().startswith("✗")))
    for node_id, prop in exercise.grading:
        if not results[node_id]:
            problems.append(f"blank: {node_id} passed")
        if not any(line.strip().startswith(f"✗ {prop}") for line in lines):
            problems.append(f"blank: the verdict does not name {prop!r} as failing")
    for node_id in CANARIES:
        if node_id not in exercise.dependents and node_id not in grading and results[node_id]:
            problems.append(f"blank: {node_id}, not declared a dependent, failed: {results[node_id]}")
    for node_id in exercise.dependents:
        if not results[node_id]:
            problems.append(f"blank: {node_id}, declared a dependent, passed")

    for name, data in originals.items():
        (root / name).write_bytes(data)
    if any((root / name).read_bytes() != data for name, data in originals.items()):
        problems.append("restore: the files differ from the proven ones")

    wrong_answer(root, exercise)
    results = workbook.run_tests(root, grading)
    failing = [n for n in grading if results[n]]
    print(f"   wrong ({exercise.wrong[3]}): caught by "
          f"{', '.join(n.split('::')[1] for n in failing) or 'NOTHING'}")
    if not failing:
        problems.append(f"wrong answer ({exercise.wrong[3]}): every grading test passed")
    for name, data in originals.items():
        (root / name).write_bytes(data)
    return problems


def main(names: list[str]) -> int:
    chosen = [BY_NAME[n] for n in names] if names else list(EXERCISES)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "copy"
        workbook.copy_project(root)
        selected = [n for e in chosen for n in [g for g, _ in e.grading] + list(e.dependents)]
        results = workbook.run_tests(root, list(dict.fromkeys(selected + list(CANARIES))))
        failed = {n: why for n, why in results.items() if why}
        print(f"prove: untouched, {len(results) - len(failed)} of {len(results)} selected tests pass")
        if failed:
            for node_id, why in failed.items():
                print(f"  {node_id}: {why}")
            return 1
        problems = {}
        for exercise in chosen:
            t = time.perf_counter()
            print(f"prove: {exercise.name}")
            problems[exercise.name] = prove(root, exercise)
            print(f"   {'proven' if not problems[exercise.name] else 'NOT PROVEN'} "
                  f"({time.perf_counter() - t:.0f} s)")
        again = workbook.run_tests(root, list(results))
    broken = {n: why for n, why in again.items() if why}
    print(f"prove: every exercise restored, {len(again) - len(broken)} of {len(again)} pass again")
    for node_id, why in broken.items():
        print(f"  {node_id}: {why}")
    for name, found in problems.items():
        for problem in found:
            print(f"prove: {name}: {problem}")
    bad = [n for n, found in problems.items() if found]
    print(f"prove: {len(chosen) - len(bad)} of {len(chosen)} exercises proven "
          f"in {time.perf_counter() - began:.0f} s")
    return 1 if bad or broken else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
