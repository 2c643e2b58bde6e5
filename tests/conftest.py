import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "architectures"

# Small inputs where a zoo network allows one: what the tests that build and run modules use (the figures at
# full size are tests/test_zoo_*'s and tests/test_check.py's). A forward at 224×224 or 384×384 cost those
# tests most of their time and showed nothing a small one does not.
SMALL_INPUTS = {"nin.arch": None, "nin_v1.arch": "3x64x64", "nin_v2.arch": "3x64x64", "googlenet.arch": "3x64x64",
                "inception_v3.arch": "3x75x75", "alexnet.arch": "3x64x64"}


def small_input(name: str) -> str | None:
    """The input the tests run zoo file `name` at: "3x32x32" unless it needs more (None: its own)."""
    return SMALL_INPUTS.get(name, "3x32x32")


def pytest_configure(config):
    # The suite's networks are small (16×16 to 64×64 inputs, a few channels): one intra-op thread runs them
    # faster than two that wait on each other, and much faster on a loaded machine, where a second thread's
    # spin-wait made a 16×16 convolution five times slower. The suite runs a worker per core, so the
    # processes it starts (archc train, study, torchrun) get one thread too, through the environment they
    # inherit: seed 000's study beside a busy core took 41.9 s of CPU with two threads, 29.7 s with one.
    # (A run outside the suite still takes torch's default, and a DDP rank its share: runtime/run.py.)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def zoo():
    return ZOO


def run_archc(*args, cwd=ROOT, timeout=60, env=None):
    """Run the CLI in a fresh process, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "archc", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
