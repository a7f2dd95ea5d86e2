"""Shared paths and helpers for the test suite."""
import os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# one corpus and feature cache for the whole run (and between runs), inside the ignored .cache/ of the checkout
os.environ.setdefault("SER_NBDEV_CACHE", str(ROOT / ".cache"))


def tool(name: str) -> str:
    "Path of a console script installed beside this Python."
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def run(cmd, cwd, timeout=600, check=True):
    "Run `cmd`, returning the completed process; on failure show its output."
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}\n--- stdout\n{r.stdout[-6000:]}\n--- stderr\n{r.stderr[-6000:]}")
    return r
