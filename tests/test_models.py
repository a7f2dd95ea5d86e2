"""A padded batch must give each clip its batch-size-1 logits; the batches and models around that claim."""
import numpy as np
import pytest
import torch

from ser_nbdev.batching import BucketSampler, pad_batch, padding_fraction, resize_batch
from ser_nbdev.models import ResizedCNN, StudyCNN, build_model, frames_after

torch.set_num_threads(1)


def clips(lengths, seed=0, n_mels=32):
    "Random dB spectrograms in [-80, 0] with the given numbers of frames."
    rng = np.random.default_rng(seed)
    return [rng.uniform(-80, 0, (n_mels, n)).astype(np.float32) for n in lengths]


def batch_vs_alone(model, specs, fill=None):
    "Max |logit difference| between the padded batch and each clip alone, eval mode."
    x, lengths = pad_batch(specs, fill)
    model.eval()
    with torch.no_grad():
        batch = model(x, lengths)
        alone = torch.cat([model(torch.from_numpy(s)[None, None]) for s in specs])
    return float((batch - alone).abs().max())


# odd and even lengths, the shortest the 4-layer net takes (16), one clip without padding
LENGTHS = [16, 17, 31, 44, 45, 63, 90, 127]


@pytest.mark.parametrize('layers', [3, 4])
@pytest.mark.parametrize('batch_norm', [False, True])
def test_padded_batch_equals_batch_size_1(layers, batch_norm):
    torch.manual_seed(0)
    model = StudyCNN(5, layers=layers, batch_norm=batch_norm)
    specs = clips(LENGTHS)
    if batch_norm:  # move the running statistics off the identity
        x, lengths = pad_batch(specs)
        with torch.no_grad():
            model.train()(x, lengths)
    assert batch_vs_alone(model, specs) < 1e-5


@pytest.mark.parametrize('fill', [None, 0.0, 1e4, -1e4])
def test_padding_value_does_not_matter(fill):
    torch.manual_seed(1)
    assert batch_vs_alone(StudyCNN(4), clips(LENGTHS, seed=1), fill) < 1e-5


def test_unmasked_batch_differs():
    "The test above can fail: without lengths the padding changes the short clips' logits."
    torch.manual_seed(0)
    model = StudyCNN(5).eval()
    specs = clips([20, 120])
    x, _ = pad_batch(specs)
    with torch.no_grad():
        alone = model(torch.from_numpy(specs[0])[None, None])
        assert (model(x)[:1] - alone).abs().max() > 1e-3


@pytest.mark.parametrize('layers', [3, 4])
def test_frames_after_matches_feature_map(layers):
    model = StudyCNN(5, layers=layers)
    for T in (16, 17, 33, 100, 255):
        h, L = model.trunk(torch.zeros(1, 1, 32, T))
        assert h.shape[-1] == L.item() == frames_after(torch.tensor(T), layers).item()


def test_masked_batch_norm_ignores_padding_in_training():
    specs = clips([40, 80])
    stats = []
    for fill in (None, 1e4):  # different padding, same valid frames: same training statistics
        torch.manual_seed(0)
        model = StudyCNN(5, batch_norm=True).train()
        with torch.no_grad():
            model(*pad_batch(specs, fill))
        stats.append(torch.cat([torch.cat([n.running_mean, n.running_var]) for n in model.norms]))
    assert torch.allclose(*stats, atol=1e-5)


def test_resized_cnn_shapes():
    specs = clips([50, 300], n_mels=128)
    x = resize_batch(specs)
    assert x.shape == (2, 1, 128, 256)
    for layers in (3, 4):
        assert ResizedCNN(5, layers=layers).eval()(x).shape == (2, 5)
    with pytest.raises(ValueError):
        ResizedCNN(5)(torch.zeros(1, 1, 128, 200))


def test_build_model():
    assert isinstance(build_model('study', 3, layers=4), StudyCNN)
    assert build_model('study_bn', 3).norms is not None
    assert isinstance(build_model('resized', 3), ResizedCNN)
    with pytest.raises(ValueError):
        build_model('transformer', 3)
    with pytest.raises(ValueError):
        StudyCNN(3, layers=5)


def test_bucket_sampler_covers_every_clip_once_and_is_seeded():
    lengths = np.random.default_rng(0).integers(43, 560, 483)
    sampler = BucketSampler(lengths, 16, seed=3, max_padding=0.05)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        assert sorted(i for b in epoch for i in b) == list(range(len(lengths)))
        assert all(padding_fraction(lengths, [b]) <= 0.05 for b in epoch)
    assert first != second and first == BucketSampler(lengths, 16, seed=3, max_padding=0.05).batches(0)
    random = [list(range(i, min(i + 16, 483))) for i in range(0, 483, 16)]
    assert padding_fraction(lengths, first) < padding_fraction(lengths, random) / 3


def test_pad_batch():
    specs = clips([3, 5])
    x, lengths = pad_batch(specs)
    assert x.shape == (2, 1, 32, 5) and x.dtype == torch.float32 and lengths.tolist() == [3, 5]
    assert (x[0, 0, :, 3:] == specs[0].min()).all()
    with pytest.raises(ValueError):
        pad_batch([])
    with pytest.raises(ValueError):
        pad_batch([np.zeros((32, 4)), np.zeros((16, 4))])
