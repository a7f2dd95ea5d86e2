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


# The slowest tests first (`pytest --durations=15` in a fresh clone), so that the two workers of `pytest -n 2` start on
# them and finish together; the rest keep their order.
SLOWEST = ("test_notebook[07_augment]", "test_microphone_widget_in_jupyterlab", "test_notebook[12_your_voice]",
           "test_notebook[09_experiments]", "test_notebook[08_train]", "test_mel_widget_in_jupyterlab",
           "test_notebook[10_cli]", "test_wheel_in_a_fresh_venv", "test_two_processes_write_one_run",
           "test_a_killed_rank_ends_the_run_and_writes_nothing", "test_notebook[05_batching]",
           "test_notebook[02_denoise]", "test_train_evaluate_predict", "test_notebook[11_speakers]",
           "test_notebook[A08_trainer]", "test_notebook[06_models]", "test_notebook[04_mel]",
           "test_notebook[00_synth]", "test_notebook[03_stft]", "test_notebook[04b_features]")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST)}
    items.sort(key=lambda item: rank.get(item.name, len(rank)))


def pytest_configure(config):
    # `-n 2` alone hands each worker fixed chunks; work stealing lets an idle worker take tests from a busy one
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "worksteal"
    # Each worker's notebooks and commands would otherwise start one torch/OpenMP thread per core, and n workers on n
    # cores fight over them: two notebooks that train at once took 77 s and 72 s so, 32 s and 30 s with a core each.
    # Set in the controller before the workers start, so they and every process they launch inherit it.
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1 and not hasattr(config, "workerinput"):
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def pytest_sessionstart(session):
    # Under `pytest -n 2` the first notebooks of both workers would each build what a fresh checkout lacks: build it
    # once here, in the controller, before the workers start. The embedded corpus and its log-Mel features go to the
    # shared cache; meanwhile, on the other core, librosa compiles its numba kernels (about 20 s in a new venv, then
    # cached beside librosa), which every notebook that imports librosa.feature would otherwise wait for.
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    from ser_nbdev.data import load_corpus
    from ser_nbdev.features import corpus_features
    numba = subprocess.Popen([sys.executable, "-c", "import numpy, librosa; "
                              "librosa.feature.melspectrogram(y=numpy.zeros(4096, 'float32'), sr=22050)"])
    corpus_features(load_corpus(), progress=False)
    numba.wait()
