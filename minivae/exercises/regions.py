"""Exercise regions: the lines of the real source between a pair of plain comments,

    # exercise NAME: what these lines compute
    ...the lines a learner writes...
    # end exercise

which a learner's copy replaces with `raise NotImplementedError("exercise NAME: <hint>")`. The
markers are comments, so a region changes nothing the code does. One exercise may hold several
regions (a forward and its backward); the markers sit at the indentation of the lines they hold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

START = re.compile(r"^(?P<indent>[ ]*)# exercise (?P<name>[a-z0-9-]+): (?P<what>.+)$")
END = re.compile(r"^[ ]*# end exercise$")
BLANK = 'raise NotImplementedError("exercise {name}: {hint}")'


@dataclass(frozen=True)
class Region:
    name: str
    what: str  # the opening marker's words after the colon
    start: int  # the line index of the opening marker
    end: int  # the line index of `# end exercise`
    indent: str


def find(text: str, where: str = "") -> list[Region]:
    """Every region of `text`, in order; a marker without its partner, a nested region or an
    empty one is an error naming `where` and the line."""
    regions, open_at = [], None
    for i, line in enumerate(text.split("\n")):
        start, end = START.match(line), END.match(line)
        if (start and open_at is not None) or (end and open_at is None):
            raise ValueError(f"{where}:{i + 1}: exercise markers out of pairs")
        if start:
            open_at = i, start
        elif end:
            assert open_at is not None
            at, opening = open_at
            if i == at + 1:
                raise ValueError(f"{where}:{at + 1}: the exercise region holds no line")
            regions.append(Region(opening["name"], opening["what"], at, i, opening["indent"]))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{where}:{open_at[0] + 1}: `# exercise` without `# end exercise`")
    return regions


def body(text: str, region: Region) -> str:
    """The lines between the markers."""
    return "\n".join(text.split("\n")[region.start + 1:region.end])


def blank(text: str, name: str, hint: str) -> str:
    """`text` with every region of `name` holding one line: raise NotImplementedError(hint)."""
    lines = text.split("\n")
    for region in reversed([r for r in find(text) if r.name == name]):
        lines[region.start + 1:region.end] = [region.indent + BLANK.format(name=name, hint=hint)]
    return "\n".join(lines)


def is_blank(text: str, name: str) -> bool:
    """Whether a region of `name` still holds its NotImplementedError (the exercise is to do)."""
    marker = BLANK.format(name=name, hint="")[:-2]  # up to the hint
    return any(body(text, r).strip().startswith(marker) for r in find(text) if r.name == name)


def replace(text: str, name: str, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` inside the regions of `name`, where it must occur once
    (a seeded wrong answer: tools/prove_exercises.py)."""
    lines = text.split("\n")
    inside = [r for r in find(text) if r.name == name and old in body(text, r)]
    if len(inside) != 1 or body(text, inside[0]).count(old) != 1:
        raise ValueError(f"{old!r} occurs {sum(body(text, r).count(old) for r in inside)} times "
                         f"in the regions of {name}, not once")
    region = inside[0]
    lines[region.start + 1:region.end] = body(text, region).replace(old, new).split("\n")
    return "\n".join(lines)
