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
import math

from minivae import priors
from minivae.files import check_writable


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


def add_prior_flags(parser: argparse.ArgumentParser) -> None:
    """--prior and --prior-components, for the examples whose model takes a learned p(z)."""
    parser.add_argument("--prior", default="standard", choices=priors.PRIORS,
                        help="p(z): N(0, I), a learned mixture of Gaussians, or the VampPrior")
    parser.add_argument("--prior-components", type=positive_int, default=10,
                        help="components K of a learned prior")


def add_iwae_flags(parser: argparse.ArgumentParser) -> None:
    """--iwae-k, --iwae-k-large and --iwae-images: the estimates of -ln p(x)
    (metrics.iwae_report)."""
    parser.add_argument("--iwae-k", type=non_negative_int, default=100,
                        help="samples for -log p(x); 0 = skip")
    parser.add_argument("--iwae-k-large", type=non_negative_int, default=0,
                        help="also -log p(x) with this many samples on the first 100 test images")
    parser.add_argument("--iwae-images", type=positive_int, default=None,
                        help="estimate -log p(x) on the first N test images only (default all)")
