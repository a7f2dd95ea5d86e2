"""`ser-nbdev train` under torchrun: two CPU processes (gloo) train one model, rank 0 writes one run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import tool

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason='torch built without gloo')


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "The small synthetic corpus of test_cli: 40 clips, 4 speakers."
    from ser_nbdev.synth import make_corpus
    return make_corpus(tmp_path_factory.mktemp("corpus") / "tiny", n_speakers=4, n_utterances=2)


def torchrun(corpus, out, epochs: int) -> list[str]:
    "The command line: two processes on this machine, each one thread, the installed console script."
    return [tool("torchrun"), "--standalone", "--nproc-per-node", "2", tool("ser-nbdev"), "train", "--data",
            str(corpus), "--epochs", str(epochs), "--out", str(out), "--quiet", "--device", "cpu"]


def env() -> dict:
    # two processes with a thread each; output unbuffered, so the test sees rank 0's first line when it is printed
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_two_processes_write_one_run(corpus, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(torchrun(corpus, out, 2), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count("test accuracy") == 1  # rank 0 alone prints
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["split"]["n_test"] == 8 and sum(map(sum, metrics["confusion"])) == 8
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "learning_curves.png", "metrics.json",
                                                    "model.pt"]  # one run, no staging folder left
    from ser_nbdev.train import load_checkpoint
    ckpt = load_checkpoint(out / "model.pt")
    assert len(ckpt.history["train_loss"]) == 2 and ckpt.metrics["world_size"] == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the ranks in /proc")
def test_a_killed_rank_ends_the_run_and_writes_nothing(corpus, tmp_path):
    out = tmp_path / "run"
    p = subprocess.Popen(torchrun(corpus, out, 500), cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert "clips 40" in p.stdout.readline()  # rank 0 has joined the group and loaded the corpus
        time.sleep(1.0)                            # now both are extracting or training
        ranks = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
        assert len(ranks) == 2
        os.kill(int(ranks[-1]), signal.SIGKILL)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode != 0
    assert "another training process ended" in stderr or "SIGKILL" in stderr
    assert not (out / "model.pt").exists() and not list(out.glob(".partial-*"))
