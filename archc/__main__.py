"""`python -m archc ...` (and `torchrun -m archc ...` later) runs the command line."""

from .cli import run

run()
