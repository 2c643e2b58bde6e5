import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "architectures"


def pytest_configure(config):
    # The suite's networks are small (16×16 to 64×64 inputs, a few channels): one intra-op thread runs them
    # faster than two that wait on each other, and much faster on a loaded machine, where a second thread's
    # spin-wait made a 16×16 convolution five times slower. Subprocesses (archc train) choose their own.
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
