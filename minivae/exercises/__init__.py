"""Exercises graded by minivae's own tests: write the pieces, let the properties say when they hold.

Regions of the real source between `# exercise NAME: ...` and `# end exercise` (regions.py) are
the lines a learner writes; `registry.py` lists the exercises in order with their hints, grading
tests and one wrong answer each; `workbook.py` makes a learner's copy and grades it. The command
line: `python -m minivae.exercises start DIR | check NAME | list` (__main__.py). The path through
them: docs/exercises.md.
"""
