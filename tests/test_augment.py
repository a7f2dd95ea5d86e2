"""Augmentation touches training data only, repeats exactly for a seed, and keeps each clip's padding as it was."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from ser_nbdev.augment import (Augmenter, add_noise, expand, freq_mask, mask_batch, mel_shift, time_mask, warp_bands,
                               shift_sources)
from ser_nbdev.batching import pad_batch
from ser_nbdev.data import carve_validation, study_split
from ser_nbdev.denoise import snr_db
from ser_nbdev.experiments import expanded_experiment, run_experiment, summarise
from ser_nbdev.mel import FeatureConfig

torch.set_num_threads(1)
CFG = FeatureConfig(n_mels=16)
N_CLIPS, FIRST = 60, 20   # clip i has FIRST + i frames, so a length names its clip


def tagged_data():
    "A tiny 3-class corpus of random (16, T) dB spectrograms whose lengths are all different."
    rng = np.random.default_rng(0)
    specs = [rng.uniform(-80, 0, (CFG.n_mels, FIRST + i)).astype(np.float32) for i in range(N_CLIPS)]
    labels = np.array(['a', 'b', 'c'] * (N_CLIPS // 3))
    return specs, labels, ['a', 'b', 'c']


class Spy:
    "An augment callable (or expand transform) that records which clips it is given, by their lengths."
    def __init__(self, augment=None):
        self.augment, self.ids = augment, []

    def __call__(self, x, lengths, generator):
        self.ids += [n - FIRST for n in lengths.tolist()]
        return self.augment(x, lengths, generator) if self.augment else x

    def transform(self, S, rng):
        self.ids.append(S.shape[1] - FIRST)
        return S + rng.normal(0, 1, S.shape).astype(S.dtype)


def expected_split(labels, seed=0):
    train_idx, test_idx = study_split(labels)
    fit_idx, val_idx = carve_validation(train_idx, labels, 0.15, seed=seed)
    return set(fit_idx.tolist()), set(val_idx.tolist()), set(test_idx.tolist())


@pytest.mark.parametrize('strategy', ['bucketed', 'bs1'])
def test_on_the_fly_sees_training_clips_only(strategy):
    data = tagged_data()
    fit_ids, val_ids, test_ids = expected_split(data[1])
    spy = Spy(Augmenter(cfg=CFG))
    r = run_experiment(data=data, strategy=strategy, layers=3, epochs=2, seed=0, augment=spy, patience=0)
    assert set(spy.ids) == fit_ids and not set(spy.ids) & (val_ids | test_ids)
    assert sorted(spy.ids) == sorted(2 * list(fit_ids))   # every training clip once per epoch, nothing else
    assert r['augmentation'] == 'on the fly' and set(r['sources']) == fit_ids


def test_table_keeps_augmented_and_plain_rows_apart():
    runs = [dict(layers=3, lr=1e-3, strategy='bucketed', model='bands', batch_norm=True, group_norm=False,
                 schedule='cosine', augmentation=a, seed=s, best_epoch=1, val_acc=0.5, test_acc=acc, test_uar=acc,
                 test_macro_f1=acc, n_test=60)
            for a, acc in (('none', 0.5), ('on the fly', 0.6)) for s in (0, 1)]
    rows = summarise(runs)
    assert [(r['augmentation'], r['seeds'], r['test_acc']) for r in rows] == [('none', 2, 0.5), ('on the fly', 2, 0.6)]


def test_offline_copies_come_from_training_clips_only():
    data = tagged_data()
    fit_ids, val_ids, test_ids = expected_split(data[1])
    expander, batches = Spy(), Spy()
    r = expanded_experiment(data=data, layers=3, epochs=1, seed=0, copies=2, transform=expander.transform,
                            augment=batches, patience=0)
    assert sorted(expander.ids) == sorted(2 * list(fit_ids))          # each training clip copied twice
    assert set(r['sources']) == fit_ids and r['n_train'] == 3 * len(fit_ids)
    assert set(batches.ids) == fit_ids                                 # originals and copies: training clips only
    assert r['n_val'] == len(val_ids) and r['n_test'] == len(test_ids)
    assert r['augmentation'] == '2x offline + on the fly' and r['copies'] == 2


def test_expand_keeps_originals_and_labels():
    specs, labels, _ = tagged_data()
    before = [s.copy() for s in specs[:5]]
    big, big_labels, source = expand(specs[:5], labels[:5], copies=3, transform=Spy().transform)
    assert all(np.array_equal(a, b) for a, b in zip(before, specs[:5]))   # inputs untouched
    assert len(big) == 20 and (big_labels == labels[:5][source]).all()
    assert all(big[k].shape == specs[source[k]].shape for k in range(20))


def batch(seed=0, lengths=(20, 33, 47, 64)):
    rng = np.random.default_rng(seed)
    return pad_batch([rng.uniform(0, 1, (CFG.n_mels, n)).astype(np.float32) for n in lengths], fill=0.0)


def test_same_seed_same_batch():
    x, lengths = batch()
    aug = Augmenter(p=1.0, cfg=CFG)
    a = aug(x, lengths, torch.Generator().manual_seed(3))
    assert torch.equal(a, aug(x, lengths, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, aug(x, lengths, torch.Generator().manual_seed(4)))
    assert not torch.equal(a, x)


def test_ablation_keeps_the_other_draws():
    "Switching one transform off leaves the others' random choices as they were."
    _, lengths = batch()
    full = Augmenter(p=0.6, cfg=CFG).draw(lengths, torch.Generator().manual_seed(5))
    no_shift = Augmenter(p=0.6, cfg=CFG, transforms=('noise', 'freq', 'time')).draw(
        lengths, torch.Generator().manual_seed(5))
    for k in ('f0', 'f_width', 't0', 't_width', 'noise', 'seed'):
        assert torch.equal(full[k], no_shift[k])
    assert not no_shift['n_steps'].any()


@pytest.mark.parametrize('fill', ['floor', 'mean', 'loudest'])
def test_padding_untouched_and_masks_inside_clip(fill):
    x, lengths = batch()
    aug = Augmenter(p=1.0, fill=fill, time_width=30, cfg=CFG)
    for seed in range(20):
        d = aug.draw(lengths, torch.Generator().manual_seed(seed))
        assert ((d['t0'] + d['t_width']) <= lengths).all()
        out = aug.apply(x, lengths, d)
        for b, n in enumerate(lengths.tolist()):
            assert torch.equal(out[b, :, :, n:], x[b, :, :, n:])


def test_numpy_and_torch_agree():
    x, lengths = batch()
    n_steps = np.array([-3.5, 0.0, 1.0, 4.0])
    floor = torch.zeros(4)
    warped = warp_bands(x, torch.from_numpy(shift_sources(n_steps, CFG)).float(), floor)
    f0, fw, t0, tw = (torch.tensor(v) for v in ([0, 3, 10, 15], [4, 0, 6, 1], [0, 5, 40, 63], [20, 9, 7, 1]))
    masked = mask_batch(warped, lengths, f0, fw, t0, tw, floor)
    for b, n in enumerate(lengths.tolist()):
        ref = mel_shift(x[b, 0, :, :n].numpy(), n_steps[b], CFG, fill=0.0)
        assert np.abs(warped[b, 0, :, :n].numpy() - ref).max() < 1e-5
        ref = time_mask(freq_mask(ref, f0[b], fw[b], 0.0), t0[b], tw[b], 0.0)
        assert np.abs(masked[b, 0, :, :n].numpy() - ref).max() < 1e-5


def test_mel_shift_zero_is_identity_and_fill_study_is_loudest():
    x, lengths = batch()
    assert np.array_equal(mel_shift(x[0, 0].numpy(), 0.0, CFG), x[0, 0].numpy())
    out = Augmenter(p=1.0, fill='loudest', transforms=('freq',), cfg=CFG)(x, lengths, torch.Generator().manual_seed(0))
    assert out.max() == x.max()


def test_add_noise_snr_is_exact():
    y = np.sin(np.linspace(0, 200, 8000)).astype(np.float32)
    for snr in (-5.0, 0.0, 12.5, 30.0):
        assert abs(snr_db(y, add_noise(y, snr, np.random.default_rng(1))) - snr) < 1e-3


def test_wrong_band_count_is_refused():
    x, lengths = batch()
    with pytest.raises(ValueError, match='Mel bands'):
        Augmenter()(x, lengths, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match='fill'):
        Augmenter(fill='zero')
