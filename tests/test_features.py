"Tests of ser_nbdev.features at settings the chapters do not use: other rates, HTK filters, a filter up to Nyquist."
import numpy as np
import pytest
import torch

from ser_nbdev.features import LogMel, extract
from ser_nbdev.mel import FeatureConfig, log_mel

CONFIGS = {
    'default': FeatureConfig(),
    # a weight can fall on the Nyquist bin (about 1e-18): the window's taps need its mirrored neighbour
    'nyquist': FeatureConfig(sr=44100, fmin=20.0, fmax=22050.0),
    'htk-16k': FeatureConfig(sr=16000, n_fft=400, hop_length=160, fmax=8000.0, htk=True),
    'narrow-8k': FeatureConfig(sr=8000, n_fft=256, hop_length=64, n_mels=40, fmax=4000.0),
}


def decaying_noise(n: int, seed: int) -> np.ndarray:
    "White noise fading by 70 dB: every level from the peak down to the floor."
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp(-np.linspace(0, 8, n))).astype(np.float32)


@pytest.mark.filterwarnings('ignore:Empty filters detected', 'ignore:n_fft=.* is too large')
@pytest.mark.parametrize('name', CONFIGS)
def test_extractor_matches_librosa(name):
    cfg = CONFIGS[name]
    ys = [decaying_noise(int(cfg.sr * d), seed) for seed, d in enumerate((0.3, 1.1, 2.7, 0.05))]
    ref = [log_mel(y, cfg) for y in ys]
    alone = extract(ys, cfg, device='cpu')
    assert all(a.shape == r.shape for a, r in zip(alone, ref))
    assert max(float(np.abs(a - r).max()) for a, r in zip(alone, ref)) < 1e-3
    # one zero-padded batch: each clip's valid frames as alone, the rest at the floor
    wave = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(y) for y in ys], batch_first=True)
    S_db, frames = LogMel(cfg)(wave, torch.tensor([len(y) for y in ys]))
    for b, r in enumerate(ref):
        T = int(frames[b])
        assert T == r.shape[1] and float(np.abs(S_db[b, :, :T].numpy() - r).max()) < 1e-3
        assert bool((S_db[b, :, T:] == -cfg.top_db).all())
