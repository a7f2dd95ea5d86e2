"""A padded batch must give each clip its batch-size-1 logits; the batches and models around that claim."""
import numpy as np
import pytest
import torch

from ser_nbdev.batching import BucketSampler, pad_batch, padding_fraction, resize_batch
from ser_nbdev.models import BandCNN, MaskedGroupNorm2d, ResizedCNN, StudyCNN, build_model, frames_after, time_mask

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


@pytest.mark.parametrize('net', [StudyCNN, BandCNN])
@pytest.mark.parametrize('layers', [3, 4])
@pytest.mark.parametrize('batch_norm, group_norm', [(False, False), (True, False), (False, True)])
def test_padded_batch_equals_batch_size_1(net, layers, batch_norm, group_norm):
    torch.manual_seed(0)
    kw = dict(layers=layers, batch_norm=batch_norm, group_norm=group_norm)
    kw |= {} if net is StudyCNN else dict(n_mels=32)
    model = net(5, **kw)
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
def test_band_head_keeps_frequency(layers):
    "BandCNN's head sees each Mel band: the same pattern in other bands gives other features."
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 32, 40)
    low, high = x.clone(), x.clone()
    low[..., 4:8, :], high[..., 20:24, :] = 1.0, 1.0
    band = BandCNN(5, layers=layers, n_mels=32).eval()
    with torch.no_grad():
        fl, fh = (band.pool(*band.trunk(v)) for v in (low, high))
    assert fl.shape == (1, band.channels[-1] * (32 >> sum(band.pools)))
    assert (fl - fh).abs().max() > 1e-3
    with pytest.raises(ValueError, match='32 Mel bands'):
        band(torch.zeros(1, 1, 40, 40))


def test_layout_follows_the_weights():
    "channels_last (the default) and the plain layout give the same logits; the maps take the weights' layout."
    torch.manual_seed(0)
    model = StudyCNN(5, batch_norm=True).eval()
    x, lengths = pad_batch(clips([30, 50]))
    with torch.no_grad():
        cl = model(x, lengths)
        model.to(memory_format=torch.contiguous_format)
        h, _ = model.trunk(x, lengths)
        plain = model(x, lengths)
    assert h.is_contiguous() and torch.allclose(cl, plain, atol=1e-5)


def test_pool_before_relu_is_relu_before_pool():
    "The trunk pools before its ReLU; max and ReLU commute, forward and backward."
    torch.manual_seed(0)
    a = torch.randn(2, 3, 8, 10, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    y1, y2 = torch.relu(torch.nn.functional.max_pool2d(a, 2)), torch.nn.functional.max_pool2d(torch.relu(b), 2)
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.equal(y1, y2) and torch.equal(a.grad, b.grad)


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


@pytest.mark.parametrize('layers', [3, 4])
def test_group_norm_batch_equals_batch_size_1_in_training(layers):
    "Group norm has no batch statistics: in training mode too (dropout off) a padded batch gives batch size 1's logits."
    torch.manual_seed(0)
    model = BandCNN(5, layers=layers, n_mels=32, dropout=0.0, group_norm=True).train()
    specs = clips(LENGTHS)
    with torch.no_grad():
        batch = model(*pad_batch(specs, 1e4))
        alone = torch.cat([model(torch.from_numpy(s)[None, None]) for s in specs])
    assert (batch - alone).abs().max() < 1e-5


def test_masked_group_norm_is_group_norm_of_the_valid_frames():
    torch.manual_seed(0)
    h, L = torch.randn(3, 8, 6, 20), torch.tensor([20, 13, 4])
    ours, theirs = MaskedGroupNorm2d(8), torch.nn.GroupNorm(2, 8)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2), ours.bias.normal_()
        theirs.load_state_dict(ours.state_dict())
        out = ours(h, time_mask(L, 20))
        for i, n in enumerate(L):
            assert (out[i, ..., :n] - theirs(h[i:i + 1, ..., :n])[0]).abs().max() < 1e-5
    with pytest.raises(ValueError, match='not both'):
        StudyCNN(5, batch_norm=True, group_norm=True)


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
    assert build_model('bands', 3, n_mels=40).head.in_features == 64 * 10
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
