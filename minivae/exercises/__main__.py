"""python -m minivae.exercises start DIR [--only NAME ...] | check NAME | list

    start DIR   a copy of the project in DIR with the exercises' regions blanked (all of them, or
                the --only ones): each raises NotImplementedError with a hint and its derivation
    check NAME  run, in the copy, exactly the tests that grade NAME; one verdict per property
    list        the exercises in order, each done or to do in this tree

The path through them, and what each teaches: docs/exercises.md.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from minivae.exercises import workbook
from minivae.exercises.registry import BY_NAME, EXERCISES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minivae.exercises",
                                     description="exercises graded by minivae's own tests "
                                                 "(docs/exercises.md)")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="write a learner's copy with the exercises blanked")
    start.add_argument("dir", type=pathlib.Path)
    start.add_argument("--only", nargs="+", metavar="NAME", choices=list(BY_NAME),
                       help="blank only these (default: all)")
    check = commands.add_parser("check", help="run the tests that grade one exercise")
    check.add_argument("name", choices=list(BY_NAME), metavar="NAME")
    commands.add_parser("list", help="the exercises in order, done or to do")
    args = parser.parse_args(argv)

    if args.command == "start":
        names = args.only or list(BY_NAME)
        try:
            workbook.start(args.dir, names)
        except (FileExistsError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{len(names)} exercise(s) blanked in {args.dir}. Next:\n"
              f"  cd {args.dir} && export PYTHONPATH=$PWD     (or pip install -e . in a fresh venv)\n"
              f"  python -m minivae.exercises list\n"
              f"  python -m minivae.exercises check {names[0]}\n"
              f"The path and what each teaches: docs/exercises.md")
        return 0
    if args.command == "list":
        for i, exercise in enumerate(EXERCISES, 1):
            status = "done " if workbook.is_done(workbook.ROOT, exercise) else "to do"
            print(f"{i:2}. {exercise.name:22} {status}  {', '.join(exercise.files)}")
        return 0
    exercise = BY_NAME[args.name]
    print(f"{exercise.name}: {len(exercise.grading)} properties, through the numpy door")
    passed, lines = workbook.grade(exercise)
    print("\n".join(lines))
    print(f"{exercise.name}: {'passed' if passed else 'not yet'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
