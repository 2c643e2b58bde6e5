import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "architectures"


@pytest.fixture
def zoo():
    return ZOO


def run_archc(*args, cwd=ROOT, timeout=60, env=None):
    """Run the CLI in a fresh process, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "archc", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
