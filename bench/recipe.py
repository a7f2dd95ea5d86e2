"""How the training recipe was chosen: networks and settings compared on validation accuracy only.

Each variant trains on the study's split (80/20 stratified, `random_state=42`) with 15% of the training part carved
out for validation, for a fixed number of epochs, and reports the best validation accuracy and its epoch. The test
part is never scored here: this is the selection step, so only validation data may decide it (`bench/aesdd.py` then
scores the chosen recipe on the test set, once per seed). The variants go from the study's training, one change at
a time, to the package's defaults and the alternatives that were tried against them.

Validation is small (73 clips on AESDD: one clip is 1.4 points, the standard error about 5), so read large steps,
not decimals. Writes `bench/results/recipe.json` (atomically) with the exact command. A benchmark, not a test. The
augmentation choice for the bands head (chapter 07) ran as `--variants 'bands + time masks' 'bands + noise, time'
'bands + SpecAugment' 'bands + shift' --out bench/results/recipe_augment.json`, then with `--seeds 0 1 2` as
`recipe_augment_mixup.json` and, at 120 epochs, `--epochs 120 --seeds 0 1 2 --variants 'bands + mixup, wide time
masks' --out bench/results/recipe_augment_e120.json` (its rival at 120 epochs, mixup with the usual time masks, and
the plain network were validated by the runs of `bench/augment.py`, record `augment_aesdd_mixup_e120.json`). The
bucketed arm of `bench/train.py` (40 epochs, about the wall time of 20 at batch size 1) was chosen with `--epochs 40
--seeds 0 1 2 --variants 'bands head' 'bands, no BN' 'bands, no BN, 1e-3' --out bench/results/recipe_bucketed.json`;
its batches of 32 on a GPU (`bench/gpu.sh`) with `--epochs 40 --seeds 0 1 2 --variants 'bands, GN' 'bands, GN,
batches of 32' --out bench/results/recipe_gpu_batch.json`.

    python bench/recipe.py --data PATH [--seeds 0] [--epochs 60] [--jobs 2] [--variants NAME ...]
"""
import argparse
import json
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# name -> what changes, and TrainConfig's arguments; `augment` names the Augmenter's transforms (True: all of them)
# and `augmenter` its other settings, so that every variant is plain data a worker process can receive
VARIANTS = {
    'study': ("the study's net and step size, in buckets of 8: no BN, 1e-3",
              dict(model='study', batch_norm=False, schedule='constant', lr=1e-3)),
    '+ batch norm': ('masked batch norm after each conv', dict(model='study', schedule='constant', lr=1e-3)),
    '+ cosine': ('cosine schedule, 1 epoch warm-up', dict(model='study', lr=1e-3)),
    '+ peak 3e-3': ('peak step size 3e-3', dict(model='study')),
    '4 layers': ('the 4-layer net instead', dict(model='study', layers=4)),
    '+ augmentation': ("on-the-fly augmentation (Augmenter's defaults)", dict(model='study', augment=True)),
    'bands head': ('a mean per Mel band into the head (BandCNN)', dict(model='bands')),
    'bands, 4 layers': ('BandCNN with 4 layers', dict(model='bands', layers=4)),
    'bands, dropout 0.5': ('BandCNN, dropout 0.5 before the head', dict(model='bands', dropout=0.5)),
    'bands + augmentation': ("BandCNN with Augmenter's defaults", dict(model='bands', augment=True)),
}
DEFAULT = list(VARIANTS)  # the sweep behind the recipe (recipe.json); the augmentation choice below runs by name
VARIANTS |= {
    'bands + time masks': ('BandCNN, time masks only', dict(model='bands', augment=('time',))),
    'bands + noise, time': ('BandCNN, noise and time masks', dict(model='bands', augment=('noise', 'time'))),
    'bands + SpecAugment': ('BandCNN, frequency and time masks', dict(model='bands', augment=('freq', 'time'))),
    'bands + shift': ('BandCNN, Mel shift only', dict(model='bands', augment=('shift',))),
    'bands, no BN': ('BandCNN without batch norm', dict(model='bands', batch_norm=False)),
    'bands, no BN, 1e-3': ('BandCNN without batch norm, peak 1e-3', dict(model='bands', batch_norm=False, lr=1e-3)),
    'bands + wide time masks': ('BandCNN, time masks up to 40 frames', dict(model='bands', augment=('time',),
                                                                            augmenter=dict(time_width=40))),
    'bands + mixup': ('BandCNN, mixup (alpha 0.2)', dict(model='bands', mixup=0.2)),
    'bands + mixup, time masks': ('BandCNN, mixup (alpha 0.2) and time masks', dict(model='bands', mixup=0.2,
                                                                                    augment=('time',))),
    'bands + mixup, wide time masks': ('BandCNN, mixup (alpha 0.2) and time masks up to 40 frames',
                                       dict(model='bands', mixup=0.2, augment=('time',),
                                            augmenter=dict(time_width=40))),
    'bands, GN': ('BandCNN with group norm', dict(model='bands', group_norm=True)),
    'bands, GN, batches of 32': ('BandCNN with group norm, 32 clips per step', dict(model='bands', group_norm=True,
                                                                                    batch_size=32)),
}


def run(job: tuple) -> dict:
    "One variant and seed, in a worker: train, select on validation, return the validation record."
    name, seed, data_path, epochs, threads = job
    import torch
    from ser_nbdev.augment import Augmenter
    from ser_nbdev.experiments import corpus_data
    from ser_nbdev.train import TrainConfig, fit
    from ser_nbdev.data import carve_validation, study_split
    torch.set_num_threads(threads)
    kw = dict(VARIANTS[name][1])
    transforms, settings = kw.pop('augment', False), kw.pop('augmenter', {})
    augment = None if not transforms else Augmenter(**settings, **{} if transforms is True else
                                                    dict(transforms=transforms))
    specs, labels, label_names = corpus_data(data_path)
    train_idx, _ = study_split(labels)  # the test part is not touched
    cfg = TrainConfig(epochs=epochs, seed=seed, threads=threads, **kw)
    train_idx, val_idx = carve_validation(train_idx, labels, cfg.val_size, seed=seed)
    pick = lambda idx: [specs[i] for i in idx]
    start = time.perf_counter()
    _, h = fit(pick(train_idx), labels[train_idx], pick(val_idx), labels[val_idx], cfg, label_names,
               augment=augment, progress=False)
    return dict(variant=name, seed=seed, val_acc=h.val_acc[h.best_epoch - 1], best_epoch=h.best_epoch,
                final_train_acc=h.train_acc[-1], n_val=len(val_idx), minutes=(time.perf_counter() - start) / 60,
                batch_norm=cfg.norm, config=dict(kw, augment=augment and list(augment.transforms), **settings))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'),
                   help='corpus folder (default: $SER_NBDEV_AESDD, else the embedded corpus)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--epochs', type=int, default=60)
    p.add_argument('--variants', nargs='+', default=DEFAULT, choices=list(VARIANTS), metavar='NAME',
                   help=f'which to run (default: the first {len(DEFAULT)}): {"; ".join(VARIANTS)}')
    p.add_argument('--jobs', type=int, default=1, help='worker processes, each with --threads torch threads')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'recipe.json'))
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    from ser_nbdev.experiments import corpus_data, write_atomic
    corpus_data(args.data)  # features computed (and cached) once, before the workers read them
    jobs = [(name, seed, args.data, args.epochs, args.threads) for name in args.variants for seed in args.seeds]
    print(f"{len(jobs)} runs on {args.data or 'the embedded corpus'}, {args.epochs} epochs, {args.jobs} jobs")
    start, runs = time.perf_counter(), []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
        for r in pool.map(run, jobs):
            runs.append(r)
            print(f"{r['variant']:<22} seed {r['seed']}: validation {r['val_acc']:.1%} (epoch {r['best_epoch']}), "
                  f"final train accuracy {r['final_train_acc']:.1%}, {r['minutes']:.1f} min")
    print(f"\n{'variant':<22}{'change':<62}{'val acc':>9}")
    rows = []
    for name in args.variants:
        acc = [r['val_acc'] for r in runs if r['variant'] == name]
        rows.append(dict(variant=name, change=VARIANTS[name][0], val_acc_mean=float(np.mean(acc))))
        print(f'{name:<22}{VARIANTS[name][0]:<62}{np.mean(acc):>9.1%}')
    record = dict(data=args.data or 'embedded', seeds=args.seeds, epochs=args.epochs, rows=rows, runs=runs,
                  minutes=(time.perf_counter() - start) / 60,
                  commands=['python bench/recipe.py ' + shlex.join(sys.argv[1:] if argv is None else argv)])
    write_atomic(args.out, json.dumps(record, indent=1))
    best = max(rows, key=lambda r: r['val_acc_mean'])
    print(f"recipe best {best['variant']} val {100 * best['val_acc_mean']:.1f}")


if __name__ == '__main__':
    main()
