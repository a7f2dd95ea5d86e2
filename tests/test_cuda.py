"""On a CUDA GPU the package computes what it computes on the CPU. CI has no GPU, so these skip there; they run on a
lent GPU machine (bench/gpu.sh runs them first)."""
import copy

import numpy as np
import pytest
import torch

from ser_nbdev.augment import Augmenter
from ser_nbdev.batching import pad_batch
from ser_nbdev.mel import FeatureConfig
from ser_nbdev.models import BandCNN
from ser_nbdev.train import Trainer, TrainConfig, load_checkpoint, predict_logits, save_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
CUDA = torch.device('cuda')


@pytest.fixture(autouse=True)
def full_float32():
    "Convolutions on the GPU default to TF32 (10-bit mantissas): compare in full float32."
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def clips(lengths, n_mels=32, seed=0):
    "Random spectrograms scaled to [0, 1], as the networks see them."
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1, (n_mels, n)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize('norm', [{}, dict(batch_norm=True), dict(group_norm=True)])
def test_gpu_batch_equals_cpu_batch_size_1(norm):
    torch.manual_seed(0)
    cpu = BandCNN(5, n_mels=32, **norm)
    specs = clips([16, 17, 31, 44, 90, 127])
    x, lengths = pad_batch(specs)
    if norm.get('batch_norm'):  # move the running statistics off the identity
        with torch.no_grad():
            cpu.train()(x, lengths)
    gpu = copy.deepcopy(cpu).to(CUDA).eval()
    cpu.eval()
    with torch.no_grad():
        batch = gpu(x.to(CUDA), lengths.to(CUDA)).cpu()
        alone = torch.cat([cpu(torch.from_numpy(s)[None, None]) for s in specs])
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)


def test_augmenter_on_gpu_matches_cpu():
    "The same draws give the same batch on either device (noise excepted: it comes from the device's generator)."
    aug = Augmenter(p=1.0, transforms=('shift', 'freq', 'time'), cfg=FeatureConfig(n_mels=32))
    x, lengths = pad_batch(clips([40, 64, 100]))
    d = aug.draw(lengths, torch.Generator().manual_seed(0))
    on_cpu = aug.apply(x, lengths, d)
    on_gpu = aug.apply(x.to(CUDA), lengths.to(CUDA), d)
    assert on_gpu.is_cuda and not torch.equal(on_cpu, x)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-5, atol=1e-5)


def test_noise_on_gpu_repeats_with_the_seed():
    aug = Augmenter(p=1.0, transforms=('noise',), cfg=FeatureConfig(n_mels=32))
    x, lengths = pad_batch(clips([40, 64]))
    x = x.to(CUDA)
    a, b = (aug(x, lengths, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_train_on_gpu_and_use_on_cpu(tmp_path):
    "A run on the GPU (augmented, group norm), its checkpoint read back on the CPU: the same eval-mode logits."
    specs, labels = clips(range(30, 90, 3), seed=1), [i % 3 for i in range(20)]
    cfg = TrainConfig(epochs=2, batch_size=4, group_norm=True, device='cuda', seed=0)
    run = Trainer(specs[:14], labels[:14], specs[14:], labels[14:], cfg, ['a', 'b', 'c'],
                  augment=Augmenter(cfg=FeatureConfig(n_mels=32)))
    while not run.done:
        run.step()
    model = run.best_model()
    assert next(model.parameters()).is_cuda and np.isfinite(run.history.train_loss).all()
    on_gpu = predict_logits(model, specs)
    loaded = load_checkpoint(save_checkpoint(tmp_path / 'gpu.pt', model), device='cpu').model
    torch.testing.assert_close(predict_logits(loaded, specs), on_gpu, rtol=1e-4, atol=1e-5)
