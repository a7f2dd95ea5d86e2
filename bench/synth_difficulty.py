"""How hard is the embedded corpus? A plain CNN on a speaker-independent split.

Builds the synthetic corpus (ser_nbdev.synth.make_corpus), computes the study's log-mel features with librosa,
trains a small CNN on speakers 1-4 (sentences 1-8), picks the epoch on sentences 9-10 of the same speakers
(validation: sentences the model never heard), and reports accuracy on speakers 5-6 (test: voices it never heard,
never used for any choice). The chapter nbs/00_synth.ipynb quotes the figure this prints.

    .venv/bin/python bench/synth_difficulty.py              # 3 seeds, a minute or two per seed on one core
    .venv/bin/python bench/synth_difficulty.py --seeds 0 --epochs 10
"""
import argparse, tempfile, time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from torch import nn

from ser_nbdev import synth

TRAIN_SPEAKERS, TEST_SPEAKERS, VAL_UTTERANCES = (1, 2, 3, 4), (5, 6), (9, 10)


def log_mel(y: np.ndarray, sr: int) -> np.ndarray:
    "The study's features: 128-band log-mel, n_fft 2048, hop 512, fmax 8 kHz, dB relative to the clip's max."
    M = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128, fmax=8000)
    return librosa.power_to_db(M, ref=np.max).astype(np.float32)


def load_features(root: Path) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    "Log-mel, label index, speaker and utterance of every clip under an AESDD-layout folder."
    X, labels, speakers, utterances = [], [], [], []
    for path in sorted(root.glob('*/*.wav')):   # AESDD naming: <emotion>/<e><AA> (<B>).wav
        y, sr = sf.read(path, dtype='float32')
        X.append(log_mel(y, sr))
        labels.append(synth.EMOTIONS.index(path.parent.name))
        speakers.append(int(path.stem.split('(')[1].rstrip(')')))
        utterances.append(int(path.stem[1:3]))
    return X, np.array(labels), np.array(speakers), np.array(utterances)


class PlainCNN(nn.Module):
    "conv 1-16-32-64 (3x3, ReLU), max-pool after the first two, global average pool, dropout, linear."
    def __init__(self, n_classes: int = 5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(0.25), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.body(x)


def to_tensor(S_db: np.ndarray) -> torch.Tensor:
    "One clip as a (1, 1, n_mels, T) batch, scaled from [-80, 0] dB to about [-2, 2]."
    return torch.from_numpy((S_db + 40) / 20)[None, None]


def accuracy(model: nn.Module, X: list, y: np.ndarray, idx: np.ndarray) -> float:
    "Fraction of clips `idx` classified correctly (batch size 1, so no padding enters the pooling)."
    model.eval()
    with torch.no_grad():
        pred = [model(to_tensor(X[i])).argmax(1).item() for i in idx]
    return float(np.mean(np.array(pred) == y[idx]))


def split(spk: np.ndarray, utt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    "Indices of train (seen speakers and sentences), validation (seen speakers, new sentences), test (new speakers)."
    seen, val_utt = np.isin(spk, TRAIN_SPEAKERS), np.isin(utt, VAL_UTTERANCES)
    return np.flatnonzero(seen & ~val_utt), np.flatnonzero(seen & val_utt), np.flatnonzero(np.isin(spk, TEST_SPEAKERS))


def run(X: list, y: np.ndarray, spk: np.ndarray, utt: np.ndarray, seed: int, epochs: int) -> tuple[float, float, int]:
    "Train, select the epoch on validation accuracy, return (val acc, test acc, chosen epoch)."
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr, va, te = split(spk, utt)
    model = PlainCNN(len(synth.EMOTIONS))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    best = (-1.0, None, 0)
    for epoch in range(1, epochs + 1):
        model.train()
        for i in rng.permutation(tr):
            loss = nn.functional.cross_entropy(model(to_tensor(X[i])), torch.tensor([y[i]]))
            opt.zero_grad(); loss.backward(); opt.step()
        acc_val = accuracy(model, X, y, va)
        if acc_val > best[0]:
            best = (acc_val, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
    model.load_state_dict(best[1])
    return best[0], accuracy(model, X, y, te), best[2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='training seeds (weights, order)')
    p.add_argument('--epochs', type=int, default=25)
    p.add_argument('--corpus', type=Path, default=None, help='an existing corpus folder (default: generate one)')
    p.add_argument('--take-spread', type=float, default=None, help='override synth.TAKE_SPREAD (calibration)')
    p.add_argument('--speaker-spread', type=float, default=None, help='override synth.SPEAKER_SPREAD (calibration)')
    args = p.parse_args(argv)
    torch.set_num_threads(1)   # the machines this runs on are shared
    if args.take_spread is not None: synth.TAKE_SPREAD = args.take_spread
    if args.speaker_spread is not None: synth.SPEAKER_SPREAD = args.speaker_spread
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        root = args.corpus or synth.make_corpus(Path(tmp) / 'corpus')
        print(f"corpus: {len(list(root.glob('*/*.wav')))} clips, made in {time.perf_counter() - t0:.1f} s "
              f"({time.process_time() - c0:.1f} s CPU)")
        X, y, spk, utt = load_features(root)
    print(f"train: speakers {TRAIN_SPEAKERS} minus sentences {VAL_UTTERANCES} (validation, epoch selection); "
          f"test: speakers {TEST_SPEAKERS}; chance 0.20")
    tests = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        acc_val, acc_test, epoch = run(X, y, spk, utt, seed, args.epochs)
        tests.append(acc_test)
        print(f"seed {seed}: epoch {epoch:2d}  val {acc_val:.3f}  test {acc_test:.3f}  ({time.perf_counter() - t0:.0f} s)")
    print(f"speaker-independent test accuracy: {np.mean(tests):.3f} +- {np.std(tests):.3f} over {len(tests)} seeds")


if __name__ == '__main__':
    main()
