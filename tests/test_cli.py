"""The installed library and its console script, used from outside the repository as a user would."""
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import run, tool


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "A small synthetic corpus in AESDD layout, with two files a loader must skip."
    from ser_nbdev.synth import make_corpus
    root = make_corpus(tmp_path_factory.mktemp("corpus") / "tiny", n_speakers=4, n_utterances=2)
    (root / "sadness" / "s09 (1).wav").write_bytes(b"RIFF\x1c\x00\x00\x00WAVEfmt ")  # a header and nothing else
    (root / "anger" / "a09 (1).wav").write_text("not audio")
    return root


def test_console_script_from_outside_lists_every_command(tmp_path):
    # one start of the installed console script, from a folder outside the repository; every command's help text and
    # every option's is formatted and checked in-process by test_api
    out = run([tool("ser-nbdev"), "--help"], cwd=tmp_path).stdout
    for cmd in ("demo", "inspect", "train", "loso", "evaluate", "predict", "experiments", "export"):
        assert cmd in out


def test_inspect_reports_skipped_files(corpus, tmp_path):
    out = run([tool("ser-nbdev"), "inspect", str(corpus)], cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1] == "clips 40 labels 5 speakers 4 skipped 2"
    assert "s09 (1).wav" in out and "a09 (1).wav" in out


def test_inspect_missing_folder_is_a_clear_error(tmp_path):
    r = run([tool("ser-nbdev"), "inspect", str(tmp_path / "nowhere")], cwd=tmp_path, check=False)
    assert r.returncode == 2
    assert "nowhere" in r.stderr and "Traceback" not in r.stderr


def test_train_evaluate_predict(corpus, tmp_path):
    out = tmp_path / "run"
    r = run([tool("ser-nbdev"), "train", "--data", str(corpus), "--epochs", "2", "--augment", "time", "--mixup", "0.2",
             "--out", str(out), "--quiet"], cwd=tmp_path)
    assert "test accuracy" in r.stdout
    for name in ("model.pt", "metrics.json", "learning_curves.png", "confusion.png"):
        assert (out / name).stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"]["n_test"] == 8 and len(metrics["confusion"]) == 5 and metrics["augment"] == ["time"]
    assert metrics["mixup"] == 0.2

    r = run([tool("ser-nbdev"), "evaluate", str(out / "model.pt"), "--data", str(corpus), "--quiet"], cwd=tmp_path)
    assert f"accuracy {metrics['test_accuracy']:.1%}" in r.stdout  # the same test clips as in training

    wav = tmp_path / "clip.wav"
    y, sr = sf.read(corpus / "anger" / "a01 (1).wav")
    sf.write(wav, np.stack([y, y], axis=1), sr, subtype="PCM_24")  # stereo 24-bit: mixed down and read
    r = run([tool("ser-nbdev"), "predict", str(out / "model.pt"), str(wav)], cwd=tmp_path)
    line = r.stdout.strip().splitlines()[-1]
    probs = [float(v) for v in line.split("(")[1].rstrip(")").split()[1::2]]
    assert abs(sum(probs) - 1) < 2e-3 and len(probs) == 5

    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    r = run([tool("ser-nbdev"), "predict", str(out / "model.pt"), str(bad), str(wav)], cwd=tmp_path, check=False)
    assert r.returncode == 2 and "bad.wav" in r.stderr and "clip.wav:" in r.stdout
    r = run([tool("ser-nbdev"), "predict", str(out / "model.pt"), str(bad), str(wav), "--json"], cwd=tmp_path,
            check=False)
    bad_line, good = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 2 and bad_line["file"] == str(bad) and "error" in bad_line
    assert good["label"] == max(good["probabilities"], key=good["probabilities"].get)
    assert np.allclose(sorted(good["probabilities"].values()), sorted(probs), atol=1e-3)  # the text's, rounded


def test_train_on_new_speakers_then_evaluate(corpus, tmp_path):
    out = tmp_path / "run"
    r = run([tool("ser-nbdev"), "train", "--data", str(corpus), "--epochs", "1", "--test-speakers", "4",
             "--out", str(out), "--quiet"], cwd=tmp_path)
    split = json.loads((out / "metrics.json").read_text())["split"]
    assert split["kind"] == "speakers" and split["test_speakers"] == ["4"] and split["n_test"] == 10
    assert split["val_speakers"] and "4" not in split["val_speakers"] and "test speakers 4; validation" in r.stdout
    r = run([tool("ser-nbdev"), "evaluate", str(out / "model.pt"), "--data", str(corpus), "--quiet"], cwd=tmp_path)
    assert "test clips 10 " in r.stdout  # the held-out speaker's clips, as in training

    r = run([tool("ser-nbdev"), "train", "--data", str(corpus), "--test-speakers", "7", "--out", str(tmp_path / "x")],
            cwd=tmp_path, check=False)
    assert r.returncode == 2 and "unknown speaker(s) 7; found: 1, 2, 3, 4" in r.stderr


def test_loso_fused_scores_every_speaker(corpus, tmp_path, monkeypatch, capsys):
    # the fused recipe of chapter 11 from the command line: a weight per fold, chosen on validation; no checkpoint
    out, cache = tmp_path / "fused", tmp_path / "cache"
    monkeypatch.setenv("SER_NBDEV_CACHE", str(cache))  # an empty cache: the check below sees this run's file
    r = run([tool("ser-nbdev"), "loso", "--data", str(corpus), "--recipe", "fused", "--epochs", "1", "--models", "2",
             "--quiet", "--out", str(out)], cwd=tmp_path)
    record = json.loads((out / "loso.json").read_text())
    assert record["recipe"] == "fused" and [f["speaker"] for f in record["folds"]] == ["1", "2", "3", "4"]
    assert all(0 <= f["w"] <= 1 and f["n_test"] == 10 for f in record["folds"]) and "network weight" in r.stdout
    fold = json.loads((out / "speaker_4" / "metrics.json").read_text())
    assert sum(map(sum, fold["confusion"])) == 10 and "4" not in fold["split"]["val_speakers"]
    assert all(len(fold["test_prob"][m]) == 10 and len(fold["test_prob"][m][0]) == 5 for m in ("cnn", "linear"))
    assert len(fold["test_prob"]["networks"]) == len(fold["best_epochs"]) == 2  # a seed ensemble of two
    assert not list(out.rglob("model.pt"))
    assert [np.load(f).shape for f in (cache / "features").glob("egemaps-*.npy")] == [(40, 88)]  # beside the features
    from ser_nbdev.cli import main
    monkeypatch.setitem(__import__("sys").modules, "opensmile", None)  # as if the extra were not installed
    assert main(["loso", "--data", str(corpus), "--recipe", "fused", "--out", str(tmp_path / "x")]) == 2
    assert "pip install 'ser_nbdev[baseline]'" in capsys.readouterr().err
    assert main(["loso", "--data", str(corpus), "--models", "2", "--out", str(tmp_path / "y")]) == 2
    assert "--recipe fused" in capsys.readouterr().err  # the cnn recipe trains one network


def test_egemaps_cache_is_rebuilt_when_torn(corpus, tmp_path):
    # a cut-off cache file (a crash, a full disk) is computed again, not trusted
    from ser_nbdev.data import load_corpus
    from ser_nbdev.speakers import corpus_egemaps
    clips = load_corpus(corpus)
    X = corpus_egemaps(clips, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("egemaps-*.npy")
    for torn in (entry.read_bytes()[:200], b""):
        entry.write_bytes(torn)
        assert np.array_equal(corpus_egemaps(clips, cache_dir=tmp_path), X) and np.load(entry).shape == X.shape


def test_predict_missing_checkpoint(tmp_path):
    r = run([tool("ser-nbdev"), "predict", str(tmp_path / "none.pt"), str(tmp_path / "x.wav")], cwd=tmp_path,
            check=False)
    assert r.returncode == 2 and "none.pt" in r.stderr


def test_export_then_predict_json_agree(corpus, tmp_path):
    # the checkpoint and its ONNX export, through the console script: the same label and probabilities within 1e-3
    # on every clip of the corpus, and the same error for each file that is not audio
    out = tmp_path / "run"
    run([tool("ser-nbdev"), "train", "--data", str(corpus), "--epochs", "1", "--out", str(out), "--quiet"],
        cwd=tmp_path)
    r = run([tool("ser-nbdev"), "export", str(out / "model.pt"), str(tmp_path / "model.onnx")], cwd=tmp_path)
    assert "wrote" in r.stdout and (tmp_path / "model.onnx").stat().st_size > 0
    lines = {}
    for model in (out / "model.pt", tmp_path / "model.onnx"):
        r = run([tool("ser-nbdev"), "predict", str(model), str(corpus), "--json"], cwd=tmp_path, check=False)
        assert r.returncode == 2, r.stderr  # the two files that are not audio
        lines[model.suffix] = [json.loads(line) for line in r.stdout.splitlines()]
    pt, onnx = lines[".pt"], lines[".onnx"]
    assert len(pt) == len(onnx) == 42 and sum("error" in r for r in pt) == 2
    for a, b in zip(pt, onnx):
        assert a["file"] == b["file"] and a.get("error") == b.get("error")
        if "error" not in a:
            assert a["label"] == b["label"], (a, b)
            assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]) < 1e-3, (a, b)
            assert list(a["probabilities"]) == list(b["probabilities"])  # the class names travel with the file

    r = run([tool("ser-nbdev"), "export", str(out / "model.pt"), str(tmp_path / "model.onnx")], cwd=tmp_path,
            check=False)
    assert r.returncode == 2 and "model.onnx" in r.stderr and "--overwrite" in r.stderr


def test_predict_bad_onnx_is_a_clear_error(corpus, tmp_path):
    clip = str(corpus / "anger" / "a01 (1).wav")
    for name, content in (("text.onnx", b"not a model"), ("empty.onnx", b"")):
        (tmp_path / name).write_bytes(content)
        r = run([tool("ser-nbdev"), "predict", str(tmp_path / name), clip], cwd=tmp_path, check=False)
        assert r.returncode == 2 and name in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run([tool("ser-nbdev"), "predict", str(tmp_path / "none.onnx"), clip], cwd=tmp_path, check=False)
    assert r.returncode == 2 and "none.onnx" in r.stderr and "Traceback" not in r.stderr


def test_onnx_without_metadata_or_extra_is_a_clear_error(tmp_path, monkeypatch, capsys):
    # a graph from elsewhere (no class names, no feature settings) is refused; so is a missing onnxruntime
    from onnx import TensorProto, checker, helper, save
    from ser_nbdev.cli import main
    foreign = tmp_path / "foreign.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 5])
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["probabilities"])], "foreign", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    checker.check_model(model)
    save(model, foreign)
    assert main(["predict", str(foreign), str(tmp_path / "x.wav")]) == 2
    assert "foreign.onnx" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if the extra were not installed
    assert main(["predict", str(foreign), str(tmp_path / "x.wav")]) == 2
    assert "pip install 'ser_nbdev[onnx]'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    "An untrained checkpoint and its ONNX export: a timeline's work does not depend on the weights."
    from ser_nbdev.deploy import export_onnx
    from ser_nbdev.mel import FeatureConfig
    from ser_nbdev.train import TrainConfig, new_model, save_checkpoint
    folder, cfg = tmp_path_factory.mktemp("untrained"), TrainConfig()
    labels = ["anger", "disgust", "fear", "happiness", "sadness"]
    save_checkpoint(folder / "model.pt", new_model(cfg, 5), labels, feature_cfg=FeatureConfig(), train_cfg=cfg)
    return folder / "model.pt", export_onnx(folder / "model.pt", folder / "model.onnx")


def test_predict_timeline_writes_table_and_figure(corpus, untrained, tmp_path):
    # clips of the corpus joined at 16 kHz (so the blocks are resampled): one CSV row per window, and a PNG
    import librosa
    clips = sorted(corpus.glob("*/*1 (1).wav"))[:4]
    y = np.concatenate([librosa.resample(sf.read(c, dtype="float32")[0], orig_sr=22050, target_sr=16000) for c in clips])
    sf.write(tmp_path / "long.wav", y, 16000)
    seconds = len(y) / 16000
    tables = {}
    for model in untrained:
        csv, png = tmp_path / f"tl{model.suffix}.csv", tmp_path / f"tl{model.suffix}.png"
        r = run([tool("ser-nbdev"), "predict", str(model), str(tmp_path / "long.wav"), "--timeline", "--window", "2",
                 "--hop", "0.5", "--out", str(csv), "--plot", str(png)], cwd=tmp_path)
        assert "wrote" in r.stdout and png.stat().st_size > 0
        header, *rows = [line.split(",") for line in csv.read_text().splitlines()]
        assert header == ["file", "start", "end", "peak_dbfs", "label", "anger", "disgust", "fear", "happiness",
                          "sadness"]
        starts = [float(row[1]) for row in rows]
        n_hops = 1 + int((seconds - 2) // 0.5)
        assert len(rows) in (n_hops, n_hops + 1) and abs(float(rows[-1][2]) - seconds) < 1e-3, (len(rows), rows[-1])
        assert starts[:3] == [0.0, 0.5, 1.0] and all(abs(sum(map(float, row[5:])) - 1) < 1e-3 for row in rows)
        tables[model.suffix] = np.array([[float(v) for v in row[5:]] for row in rows])
    assert np.abs(tables[".pt"] - tables[".onnx"]).max() < 1e-3  # the same windows through both runtimes

    r = run([tool("ser-nbdev"), "predict", str(untrained[1]), str(tmp_path / "long.wav"), "--timeline", "--json"],
            cwd=tmp_path)
    windows = [json.loads(line) for line in r.stdout.splitlines()]
    assert windows[0]["start"] == 0 and windows[0]["end"] == 3 and windows[0]["label"] in header


def test_predict_timeline_bad_input_is_a_clear_error(corpus, untrained, tmp_path):
    clip = corpus / "anger" / "a01 (1).wav"
    r = run([tool("ser-nbdev"), "predict", str(untrained[0]), str(clip), "--timeline", "--window", "60"],
            cwd=tmp_path, check=False)
    assert r.returncode == 2 and "a01 (1).wav" in r.stderr and "shorter than one window" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    for extra in (["--plot", str(tmp_path / "x.png")], [str(clip), "--timeline"], ["--timeline", "--hop", "5"]):
        r = run([tool("ser-nbdev"), "predict", str(untrained[0]), str(clip), *extra], cwd=tmp_path, check=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error:"), (extra, r.stderr)
    r = run([tool("ser-nbdev"), "predict", str(untrained[0]), str(clip), "--timeline", "--out", "x.txt"],
            cwd=tmp_path, check=False)
    assert r.returncode == 2 and "x.txt" in r.stderr  # argparse: only .csv or .json
