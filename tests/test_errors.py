"""Issue 18: bad input and user mistakes end in a clear message (exit 2) or a reported skip, never a traceback, and
nothing earlier is lost. One test per case of the issue, all in-process and on a 40-clip corpus."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_nbdev import data as data_module
from ser_nbdev.cli import main, predict_files
from ser_nbdev.data import AudioError, load_corpus

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "40 synthetic clips (2 speakers, 5 labels) and a 100-sample clip among them."
    from ser_nbdev.synth import make_corpus
    root = make_corpus(tmp_path_factory.mktemp("corpus") / "c", n_speakers=2, n_utterances=4)
    y, sr = sf.read(root / "anger" / "a01 (1).wav")
    sf.write(root / "anger" / "a05 (1).wav", y[2000:2100], sr)  # 5 ms: shorter than any network's pooling
    return root


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
    "A one-epoch run trained on `corpus`."
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--data", str(corpus), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out


def _argv_error(argv, capsys) -> str:
    "The stderr of a command line that must end with exit status 2 and no traceback."
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, (argv, code, err)
    return err


def _copy(corpus: Path, dest: Path, keep) -> Path:
    "A copy of the corpus with the files `keep(relative path)` accepts."
    for f in corpus.rglob("*.wav"):
        rel = f.relative_to(corpus)
        if keep(rel):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest / rel)
    return dest


def test_1_short_clips_are_padded_the_same_everywhere(corpus, run, capsys):
    from ser_nbdev.train import MIN_FRAMES, TrainConfig, fit
    from ser_nbdev.features import corpus_features
    short = corpus / "anger" / "a05 (1).wav"
    assert main(["inspect", str(corpus)]) == 0
    assert "anger/a05 (1).wav" in capsys.readouterr().err  # the note names it
    alone = predict_files(run / "model.pt", [short])[0]["probabilities"]
    beside = predict_files(run / "model.pt", [short, corpus / "fear" / "f01 (1).wav"])[0]["probabilities"]
    assert np.allclose(list(alone.values()), list(beside.values()), atol=1e-5)  # not swayed by the other file
    c = load_corpus(corpus)
    specs = corpus_features(c, progress=False)
    i = [str(p.name) for p in c.column("path")].index("a05 (1).wav")
    assert specs[i].shape[1] < MIN_FRAMES
    fit([specs[i], specs[0]], ["anger", "anger"], [specs[i]], ["anger"],  # batch size 1, 4 layers: no pooling error
        TrainConfig(strategy="bs1", layers=4, epochs=1), ["anger"], progress=False)


def test_2_unreadable_files_and_folders_are_skipped(corpus, run, tmp_path, monkeypatch, capsys):
    root = _copy(corpus, tmp_path / "c", lambda rel: rel.parts[0] in ("anger", "fear", "sadness"))
    locked, folder = root / "anger" / "a01 (1).wav", root / "sadness"
    locked.chmod(0)
    folder.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: make the permission errors a user would meet
            real_info, real_scandir = data_module.sf.info, os.scandir
            def info(path, *a, **kw):
                if os.fsdecode(path) == str(locked):
                    raise RuntimeError(f"Error opening {str(locked)!r}: System error.")
                return real_info(path, *a, **kw)
            def opener(path, *a, **kw):
                if str(path) == str(locked):
                    raise PermissionError(13, "Permission denied", str(path))
                return open(path, *a, **kw)
            def scandir(path="."):
                if str(path) == str(folder):
                    raise PermissionError(13, "Permission denied", str(path))
                return real_scandir(path)
            monkeypatch.setattr(data_module.sf, "info", info)
            monkeypatch.setattr(data_module, "open", opener, raising=False)
            monkeypatch.setattr(os, "scandir", scandir)
        assert main(["inspect", str(root)]) == 0
        out = capsys.readouterr().out
        assert "anger/a01 (1).wav: cannot be read (permission denied)" in out
        assert "sadness: folder cannot be read (permission denied)" in out
        assert out.strip().splitlines()[-1].endswith("skipped 2")
        good = corpus / "fear" / "f01 (1).wav"
        assert main(["predict", str(run / "model.pt"), str(locked), str(good)]) == 2
        out, err = capsys.readouterr()
        assert "a01 (1).wav: cannot be read" in err and "f01 (1).wav:" in out and "Traceback" not in err
    finally:
        locked.chmod(0o644)
        folder.chmod(0o755)


def test_3_a_diverging_run_saves_nothing(corpus, run, capsys):
    before = (run / "model.pt").read_bytes()
    err = _argv_error(["train", "--data", str(corpus), "--lr", "1e30", "--epochs", "2", "--out", str(run),
                       "--overwrite", "--quiet"], capsys)
    assert "diverged" in err and (run / "model.pt").read_bytes() == before  # the earlier run is left in place
    from ser_nbdev.cli import _write_json
    _write_json(run.parent / "nan.json", dict(loss=float("nan"), curve=[1.0, float("inf")]))
    assert json.loads((run.parent / "nan.json").read_text(), parse_constant=pytest.fail) == dict(loss=None,
                                                                                                curve=[1.0, None])
    payload = torch.load(run / "model.pt", weights_only=True)  # NaN weights saved by other means are refused
    for t in payload["state_dict"].values():
        if t.is_floating_point():
            t.fill_(float("nan"))
    del payload["sha256"]
    torch.save(payload, run.parent / "nan.pt")
    assert "not finite" in _argv_error(["predict", str(run.parent / "nan.pt"), str(corpus / "fear" / "f01 (1).wav")],
                                       capsys)


def test_4_a_damaged_checkpoint_is_refused(corpus, run, capsys):
    clip = str(corpus / "fear" / "f01 (1).wav")
    data = bytearray((run / "model.pt").read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = bytes(b ^ 0xFF for b in data[mid:mid + 2000])
    (run.parent / "flipped.pt").write_bytes(bytes(data))
    assert "damaged" in _argv_error(["predict", str(run.parent / "flipped.pt"), clip], capsys)
    payload = torch.load(run / "model.pt", weights_only=True)  # a valid archive whose weights changed after saving
    next(iter(payload["state_dict"].values())).add_(0.5)
    torch.save(payload, run.parent / "changed.pt")
    assert "checksum" in _argv_error(["predict", str(run.parent / "changed.pt"), clip], capsys)


def test_5_a_corpus_too_small_to_split(corpus, tmp_path, run, capsys):
    root = _copy(corpus, tmp_path / "small", lambda rel: rel.stem[1:3] in ("01", "02") and "(1)" in rel.name)
    out = tmp_path / "out"
    err = _argv_error(["train", "--data", str(root), "--epochs", "1", "--out", str(out), "--quiet"], capsys)
    assert "too few clips" in err and "anger 2" in err and not out.exists()
    err = _argv_error(["evaluate", str(run / "model.pt"), "--data", str(root), "--quiet"], capsys)
    assert "too few clips" in err


def test_6_an_earlier_run_is_not_overwritten(corpus, run, capsys):
    before = {f.name: f.read_bytes() for f in run.iterdir()}
    err = _argv_error(["train", "--data", str(corpus), "--epochs", "1", "--out", str(run), "--quiet"], capsys)
    assert "--overwrite" in err and str(run) in err
    assert {f.name: f.read_bytes() for f in run.iterdir()} == before


def test_7_a_single_label_corpus_is_refused(corpus, tmp_path, capsys):
    root = _copy(corpus, tmp_path / "one", lambda rel: rel.parts[0] == "anger")
    err = _argv_error(["train", "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert "one label only" in err


@pytest.mark.parametrize("argv", [
    ["train", "--lr", "-0.003"], ["train", "--lr", "nan"], ["train", "--lr", "0"], ["train", "--seed", "-1"],
    ["train", "--device", "foo"], ["train", "--patience", "-1"], ["train", "--mixup", "nan"],
    ["train", "--batch-size", "0"], ["experiments", "--strategy", "foo"], ["experiments", "--epochs", "0"],
    ["experiments", "--layers", "7"]])
def test_8_invalid_options_fail_at_once(argv, capsys):
    option = argv[1]
    assert f"argument {option}" in _argv_error(argv, capsys)


def test_8_cuda_and_an_out_file(tmp_path, monkeypatch, capsys):
    import ser_nbdev.cli as cli
    if not torch.cuda.is_available():
        assert "CUDA" in _argv_error(["train", "--device", "cuda"], capsys)
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in _argv_error(["train", "--out", str(tmp_path / "f")], capsys)
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # a folder the user may not write (root may)
    assert "cannot write into" in _argv_error(["train", "--out", str(tmp_path / "new" / "run")], capsys)


def test_9_a_checkpoint_that_contradicts_itself(corpus, run, capsys):
    clip = str(corpus / "fear" / "f01 (1).wav")
    payload = torch.load(run / "model.pt", weights_only=True)
    torch.save(dict(payload, label_names=payload["label_names"][:3]), run.parent / "names.pt")
    assert "3 label names for 5 outputs" in _argv_error(["predict", str(run.parent / "names.pt"), clip], capsys)
    torch.save(dict(payload, feature_cfg=dict(payload["feature_cfg"], n_mels=40)), run.parent / "mels.pt")
    assert "40 Mel bands" in _argv_error(["predict", str(run.parent / "mels.pt"), clip], capsys)


def test_10_written_files_follow_the_umask(run, tmp_path):
    from ser_nbdev.features import ENTRY_SUFFIX, atomic_file, save_entry
    expected = 0o666 & ~0o027
    old = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "x.json", "w") as f:
            f.write("{}")
        save_entry(tmp_path / f"e{ENTRY_SUFFIX}", np.zeros((2, 2), np.float32), "k")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == expected
    assert (tmp_path / f"e{ENTRY_SUFFIX}").stat().st_mode & 0o777 == expected
    figure = (run / "confusion.png").stat().st_mode & 0o777
    assert (run / "model.pt").stat().st_mode & 0o777 == (run / "metrics.json").stat().st_mode & 0o777 == figure


def test_11_odd_files_and_interrupts(corpus, run, tmp_path, monkeypatch, capsys):
    import ser_nbdev.cli as cli
    from ser_nbdev.features import ENTRY_SUFFIX, cache_key, corpus_features
    from ser_nbdev.mel import FeatureConfig
    root = _copy(corpus, tmp_path / "c", lambda rel: rel.parts[0] in ("anger", "fear"))
    latin = Path(os.fsdecode(os.fsencode(root / "fear") + b"/f09 (1)\xe9.flac"))  # a Latin-1 name, not UTF-8
    y, sr = sf.read(corpus / "fear" / "f01 (1).wav")
    sf.write(os.fsencode(latin), y, sr)
    data = (corpus / "anger" / "a01 (1).wav").read_bytes()
    (root / "anger" / "a09 (1).wav").write_bytes(data[:len(data) // 2])  # truncated
    (root / "anger" / "a08 (1).wav").symlink_to(root / "gone.wav")        # dangling
    c = load_corpus(root, kind="folders")
    reasons = {s.path.name: s.reason for s in c.skipped}
    assert latin in c.column("path")
    assert "truncated" in reasons["a09 (1).wav"] and "link to a missing file" in reasons["a08 (1).wav"]
    assert main(["predict", str(run / "model.pt"), str(corpus / "fear")]) == 0  # a folder: each clip in it
    assert capsys.readouterr().out.count("fear/f0") == 8
    assert "a file, not a folder" in _argv_error(["inspect", str(corpus / "fear" / "f01 (1).wav")], capsys)
    cfg = FeatureConfig()
    small = load_corpus(_copy(corpus, tmp_path / "s", lambda rel: rel.stem in ("f01 (1)", "a01 (1)")))
    entry = tmp_path / "cache" / f"{cache_key(small.clips[0].path, cfg)}{ENTRY_SUFFIX}"
    entry.mkdir(parents=True)  # an entry as a folder
    assert all(s is not None for s in corpus_features(small, cfg, cache_dir=tmp_path / "cache", progress=False))
    one = _copy(corpus, tmp_path / "unk", lambda rel: rel.parts[0] in ("anger", "fear"))
    (one / "calm").mkdir()
    shutil.copyfile(corpus / "fear" / "f01 (1).wav", one / "calm" / "x.wav")
    err = _argv_error(["evaluate", str(run / "model.pt"), "--data", str(one), "--kind", "folders", "--split", "all",
                       "--quiet"], capsys)
    assert "'calm'" in err and "np.str_" not in err
    def cmd_inspect(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_inspect", cmd_inspect)
    assert main(["inspect", str(corpus)]) == 130
    assert "interrupted" in capsys.readouterr().err
