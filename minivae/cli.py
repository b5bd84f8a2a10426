"""The examples' command-line checks, in one place: argparse types that refuse a bad value with
the flag named, and the output folder made sure of before any work starts.

    parser.add_argument("--epochs", type=cli.positive_int, default=30)
    parser.add_argument("--iwae-k", type=cli.non_negative_int, default=100)   # 0 = skip
    parser.add_argument("--lr", type=cli.positive_float, default=1e-3)
    args = parser.parse_args()
    cli.output_folder(parser, out)   # created and writable, or `--out: ...` and exit status 2

A bad value exits with argparse's usage line and, for example,
`argument --epochs: must be an integer ≥ 1, got '0'`.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import time

from minivae import priors
from minivae.files import check_writable
from minivae.train import check_run_folder, epochs_saved


def int_at_least(minimum: int):
    """An argparse type: an integer ≥ minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer ≥ {minimum}"  # what argparse calls the type in its messages
    return parse


def float_above(low: float, inclusive: bool = False):
    """An argparse type: a finite number > low (≥ low with `inclusive`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value >= low if inclusive else value > low)):
            raise argparse.ArgumentTypeError(f"must be a finite number {'≥' if inclusive else '>'}"
                                             f" {low:g}, got {text!r}")
        return value
    parse.__name__ = f"number {'≥' if inclusive else '>'} {low:g}"
    return parse


positive_int = int_at_least(1)  # epochs, batch size, latent size
non_negative_int = int_at_least(0)  # seed; sample counts where 0 means skip
positive_float = float_above(0)  # learning rates, variances
non_negative_float = float_above(0, inclusive=True)  # weights such as β


def output_folder(parser: argparse.ArgumentParser, path: str) -> str:
    """Create `path` if need be and make sure a file can be written into it, before any work;
    otherwise exit through parser.error, with the path in the message."""
    try:
        check_writable(path)
    except OSError as e:
        parser.error(f"--out: {e}")
    return path


# ---------------------------------------------------------------- one folder per run

NOT_NAMED = {"out", "resume", "overwrite", "debug", "epochs", "iwae_k", "iwae_k_large",
             "iwae_images", "time_samples"}  # flags that change no model: resume may change them
SHORT = {"latent_dim": "z", "prior_components": "k", "batch_size": "batch", "seed": "seed"}


def add_run_flags(parser: argparse.ArgumentParser, resumable: bool = True) -> None:
    """--seed, --out, --resume (where a run can be resumed) / --overwrite and --debug: every
    example's that writes a run."""
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", default=None,
                        help="the run's folder (default: runs/ and a name made of the flags "
                             "that differ from their defaults, e.g. runs/vae-conv-vamp-k50)")
    again = parser.add_mutually_exclusive_group()
    if resumable:
        again.add_argument("--resume", action="store_true",
                           help="continue the run in the folder from its last checkpoint")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in the folder (without it a run is never replaced)")
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback of an error, not one line")


def run_name(parser: argparse.ArgumentParser, args: argparse.Namespace, base: str,
             skip: tuple = ()) -> str:
    """base, then one part for each flag set away from its default, in the parser's order: the
    flag for a switch ('conv'), the value for a choice ('fashion-mnist', 'vamp'), a short name
    and the number otherwise ('z2', 'k50', 'lr0.01'). So runs that differ in their model or data
    never share a folder; --epochs is left out, as --resume may lengthen a run."""
    parts = [base]
    for dest, value in vars(args).items():
        if dest in NOT_NAMED or dest in skip or value == parser.get_default(dest):
            continue
        if isinstance(value, bool):
            parts.append(dest.replace("_", "-"))
        elif isinstance(value, str):
            parts.append(value)
        else:
            parts.append(f"{SHORT.get(dest, dest.replace('_', '-'))}{value:g}")
    return "-".join(parts)


def parse_run(parser: argparse.ArgumentParser, base: str, argv=None, skip: tuple = (),
              check=None) -> argparse.Namespace:
    """parse_args, refuse contradictory flags (`check(args)` says what contradicts, '' for
    nothing: argparse's usage and error, status 2), then settle the run's folder before any
    work: args.out (default runs/<run_name>) is writable and holds no run that this one would
    replace (see train.check_run_folder), or the program ends with one `error: ...` line,
    status 2."""
    show_defaults(parser)
    args = parser.parse_args(argv)
    contradiction = check(args) if check else ""
    if contradiction:
        parser.error(contradiction)
    args.out = args.out or os.path.join("runs", run_name(parser, args, base, skip))
    run_folder(parser, args, args.out)
    return args


def run_folder(parser: argparse.ArgumentParser, args: argparse.Namespace, path: str) -> str:
    """`path` is writable and holds no run that this one would replace (train.check_run_folder),
    or the program ends with one `error: ...` line, status 2."""
    try:
        check_writable(path)
    except OSError as e:
        parser.exit(2, f"error: --out: {e}\n")
    try:
        check_run_folder(path, getattr(args, "resume", False), args.overwrite,
                         resumable=hasattr(args, "resume"))
    except (OSError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    return path


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """--help gives every flag's default: '(default: 30)' after its help, or alone."""
    for action in parser._actions:  # argparse keeps its flags in this (documented) list
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help
                                                                                  or ""):
            continue
        action.help = f"{action.help} (default: %(default)s)" if action.help else \
            "default: %(default)s"


# ---------------------------------------------------------------- errors, Ctrl-C, run time

EXPECTED = (OSError, ValueError, FloatingPointError)  # what a user's mistake or data can raise


@contextlib.contextmanager
def session(args: argparse.Namespace, argv: list[str] | None = None,
            done: str = "the run is in"):
    """Around an example's work: an error a user can cause ends in one `error: ...` line (exit
    status 2), Ctrl-C in one line saying what is kept and the command that resumes it (130);
    --debug shows the traceback instead. At the end, the run's time."""
    start, started = time.perf_counter(), time.time()
    try:
        yield
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\ninterrupted: {_kept(args.out, argv or sys.argv, started)}", file=sys.stderr)
        sys.exit(130)
    except EXPECTED as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"done in {time.perf_counter() - start:.0f} s; {done} {args.out}")


def _kept(out: str, argv: list[str], started: float) -> str:
    """What an interrupted run leaves, and the command that continues it."""
    path = os.path.join(out, "checkpoint.npz")
    try:
        done, planned = epochs_saved(path)
    except (OSError, ValueError):
        return f"no epoch was saved in {out}; run the same command to start again"
    if os.path.getmtime(path) < started:  # --overwrite, and no epoch of this run ended
        return (f"no epoch of this run was saved; {out} holds the earlier run's checkpoint, as "
                f"it was")
    if planned is None:  # fitted in closed form: nothing to resume
        return f"{out} holds the finished run's checkpoint"
    command = shlex.join(["python", *[a for a in argv if a not in ("--resume", "--overwrite")],
                          "--resume"])
    what = "resume it" if done < planned else "evaluate it again"
    return (f"{out} keeps the checkpoint of epoch {done} of {planned}; {what} with:\n"
            f"  {command}")


def add_validation_flag(parser: argparse.ArgumentParser, images: int) -> None:
    """--validation: training images held out to choose the epoch by (train.fit's x_valid)."""
    parser.add_argument("--validation", type=non_negative_int, default=images,
                        help="the last N training images held out; the epoch with the lowest "
                             "validation loss is kept and its test numbers reported (0 = none: "
                             "the last epoch)")


def add_prior_flags(parser: argparse.ArgumentParser) -> None:
    """--prior and --prior-components, for the examples whose model takes a learned p(z)."""
    parser.add_argument("--prior", default="standard", choices=priors.PRIORS,
                        help="p(z): N(0, I), a learned mixture of Gaussians, or the VampPrior")
    parser.add_argument("--prior-components", type=positive_int, default=10,
                        help="components K of a learned prior")


def contradictions(args: argparse.Namespace) -> str:
    """The prior and IWAE flags' contradictions ('' for none): a learned prior's size for N(0, I),
    IWAE images without IWAE samples. An example adds its own and passes them to parse_run."""
    if getattr(args, "prior", None) == "standard" and args.prior_components != 10:
        return "--prior-components is for a learned prior (--prior mixture or vamp)"
    if getattr(args, "iwae_images", None) is not None and not args.iwae_k:
        return "--iwae-images chooses the images for --iwae-k, which is 0"
    return ""


def add_iwae_flags(parser: argparse.ArgumentParser, k: int = 100,
                   images: int | None = None) -> None:
    """--iwae-k, --iwae-k-large and --iwae-images: the estimates of -ln p(x) (metrics.iwae_report),
    with the example's defaults (chosen to take a small part of its training time)."""
    parser.add_argument("--iwae-k", type=non_negative_int, default=k,
                        help="samples for -log p(x); 0 = skip")
    parser.add_argument("--iwae-k-large", type=non_negative_int, default=0,
                        help="also -log p(x) with this many samples on the first 100 test images")
    parser.add_argument("--iwae-images", type=positive_int, default=images,
                        help="estimate -log p(x) on the first N test images only"
                             + (" (default: all)" if images is None else ""))
