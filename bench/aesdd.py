"""Honest accuracy on AESDD, or on any corpus the loaders read: the study's split over seeds, and new speakers.

1. The study's split (80/20 stratified, `random_state=42`); for each seed, 15% of the training part is carved out
   for validation (with that seed), the epoch is chosen on it, and the test part is scored once. Reported: the mean
   and standard deviation of the test accuracy over the seeds.
2. Leave-one-speaker-out: one fold per speaker (train on the others, validation carved from them, test on the
   speaker), seed 0. Reported: the mean test accuracy over the folds.

Both train the package's recipe (`TrainConfig`'s defaults, 120 epochs) with the on-the-fly augmentation that
validation chose for it (`bench/recipe.py` and `bench/augment.py`'s validation scores: time masks, `--transforms
time`, and mixup with alpha 0.2, `--mixup 0.2`; records `recipe_augment.json`, `recipe_augment_mixup.json`,
`recipe_augment_e120.json`, `augment_aesdd_mixup_e120.json`); `--transforms` with no names and `--mixup 0` train
without. `--jobs 2 --threads 1` runs two networks at once, one per core, with the same results.

`--recipe fused` trains instead chapter 11's fused recipe (`ser_nbdev.speakers.fused_fold`, as `ser-nbdev loso
--recipe fused`): the network on log-Mels standardised per speaker with their unlabelled clips, fused with a logistic
regression on eGeMAPS standardised per speaker, C and the weight chosen on each run's validation clips (validation
speakers in the folds); the test part is scored once. Its record is `aesdd_fused.json` unless `--out` says otherwise.
`--models K` averages K networks per run (seeds s, s + 1, ..., s + K - 1: a seed ensemble); the record also scores
the first k of them, k = 1 .. K, each with its own weight chosen on validation, so one record compares 1 to K networks
(its first network is the run that `--models 1` makes).

Writes `bench/results/aesdd.json` (through a temporary file and one rename) with the exact command that made it.
The last line reads `<corpus folder> seed_split <A> loso <L>` (percent; `aesdd` for AESDD's folder). A benchmark,
not a test: it trains 3 + 6 networks.

    python bench/aesdd.py --data PATH [--epochs 120] [--seeds 0 1 2] [--transforms time] [--mixup 0.2] [--jobs 2]
    python bench/aesdd.py --data PATH --recipe fused --epochs 60 [--models 3] [--jobs 2 --threads 1]

Older records, all with `--epochs 60` (the recipe's epochs until then): `aesdd_e60.json` the same augmentation;
`aesdd_time.json` time masks alone (`--mixup 0`), made before mixup joined the recipe; `aesdd_plain.json` without
augmentation (`--transforms` with no names, `--mixup 0`), made before the time masks joined it; `aesdd_study.json`
the study's head (`--model study --transforms --mixup 0`), made before `BandCNN` became the default network.
"""
import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ser_nbdev.augment import TRANSFORMS, Augmenter
from ser_nbdev.data import carve_speakers, carve_validation, load_corpus, loso_folds, study_split
from ser_nbdev.experiments import corpus_data, run_experiment, write_atomic
from ser_nbdev.mel import FeatureConfig
from ser_nbdev.speakers import corpus_egemaps, fuse, fused_fold, fusion_weight
from ser_nbdev.train import TrainConfig, encode_labels, pick_device

from machine import corpus_args, cpu_name


def parser() -> argparse.ArgumentParser:
    "The options: the recipe's settings (`TrainConfig`'s defaults), the augmentation, and how to run."
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'),
                   help='corpus folder (default: $SER_NBDEV_AESDD)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=d.epochs)
    p.add_argument('--patience', type=int, default=d.patience, help='0: no early stopping')
    p.add_argument('--model', default=d.model, help='network name in ser_nbdev.models.MODELS')
    p.add_argument('--strategy', default=d.strategy, choices=['bs1', 'resized', 'bucketed'])
    p.add_argument('--layers', type=int, default=d.layers, choices=[3, 4])
    p.add_argument('--lr', type=float, default=d.lr)
    p.add_argument('--batch-size', type=int, default=d.batch_size)
    p.add_argument('--weight-decay', type=float, default=d.weight_decay)
    p.add_argument('--schedule', default=d.schedule, choices=['constant', 'cosine'])
    p.add_argument('--dropout', type=float, default=d.dropout)
    p.add_argument('--batch-norm', action=argparse.BooleanOptionalAction, default=d.batch_norm)
    p.add_argument('--transforms', nargs='*', default=['time'], choices=TRANSFORMS, metavar='NAME',
                   help=f'on-the-fly augmentation of training batches, any of {", ".join(TRANSFORMS)} (default: '
                        'time, chosen on validation by bench/recipe.py); give none to train without augmentation')
    p.add_argument('--mixup', type=float, default=0.2, metavar='ALPHA',
                   help='mixup of clip pairs, weight ~ Beta(ALPHA, ALPHA) (default: 0.2, chosen on validation with '
                        'time masks by bench/recipe.py); 0: off')
    p.add_argument('--denoise', default=FeatureConfig.denoise, help='FeatureConfig.denoise')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads per run (default: torch default)')
    p.add_argument('--jobs', type=int, default=1,
                   help='runs at once, each in its own process (give --threads 1 with --jobs 2 on two cores)')
    p.add_argument('--no-loso', action='store_true', help='skip the leave-one-speaker-out folds')
    p.add_argument('--recipe', default='cnn', choices=['cnn', 'fused'],
                   help="the network alone, or fused with eGeMAPS as in chapter 11 (default: %(default)s)")
    p.add_argument('--models', type=int, default=1, help='with --recipe fused: networks averaged per run')
    p.add_argument('--out', default=None, help='record (default: bench/results/aesdd.json, aesdd_fused.json fused)')
    return p


@functools.lru_cache(maxsize=1)
def setup(argv: tuple[str, ...]) -> tuple:
    "Corpus, features, augmenter and run settings for `argv`: once per process."
    args = parser().parse_args(argv)
    corpus = load_corpus(args.data)
    feature_cfg = FeatureConfig(denoise=args.denoise)
    data = corpus_data(corpus, feature_cfg, progress=False)
    augment = Augmenter(transforms=tuple(args.transforms), cfg=feature_cfg) if args.transforms else None
    common = dict(strategy=args.strategy, layers=args.layers, lr=args.lr, epochs=args.epochs, feature_cfg=feature_cfg,
                  augment=augment, model=args.model, batch_size=args.batch_size, patience=args.patience,
                  weight_decay=args.weight_decay, schedule=args.schedule, dropout=args.dropout,
                  batch_norm=args.batch_norm, mixup=args.mixup, threads=args.threads)
    X = corpus_egemaps(corpus) if args.recipe == 'fused' else None  # openSMILE's functionals, cached on disk
    return corpus, data, augment, common, X


def run_job(job: tuple) -> dict:
    "One run: ('split', seed) on the study's split, or ('loso', k) with the k-th speaker held out (seed 0)."
    argv, kind, key = job
    corpus, data, augment, common, X = setup(argv)
    if X is not None:
        return fused_job(corpus, data, augment, common, X, kind, key, parser().parse_args(argv).models)
    if kind == 'split':
        return run_experiment(seed=key, data=data, **common)
    speaker, train_idx, test_idx = loso_folds(corpus.column('speaker'))[key]
    return dict(speaker=speaker, **run_experiment(seed=0, data=data, split=(train_idx, test_idx), **common))


def fused_job(corpus, data, augment, common, X, kind: str, key: int, models: int) -> dict:
    "One run of the fused recipe, in the same parts as `run_experiment`'s: validation carved by label or by speaker."
    specs, labels, names = data
    speakers = corpus.column('speaker')
    if kind == 'split':
        train_idx, test_idx = study_split(labels)
        train_idx, val_idx = carve_validation(train_idx, labels, 0.15, seed=key)
        speaker, seed = None, key
    else:
        speaker, train_idx, test_idx = loso_folds(speakers)[key]
        train_idx, val_idx = carve_speakers(train_idx, speakers, 0.15, seed=0)
        seed = 0
    cfg = TrainConfig(seed=seed, **{k: v for k, v in common.items() if k not in ('feature_cfg', 'augment')})
    start = time.perf_counter()
    r = fused_fold(specs, X, labels, names, speakers, train_idx, val_idx, test_idx, cfg, common['feature_cfg'], augment,
                   models=models)
    y = encode_labels(labels, names)
    def first(k: int) -> dict:
        "The fused scores with the first k networks averaged, w chosen again on validation."
        p = {part: (np.mean(r[f'{part}_prob']['networks'][:k], axis=0), np.array(r[f'{part}_prob']['linear']))
             for part in ('val', 'test')}
        w = fusion_weight(*p['val'], y[val_idx])
        acc = lambda part, rows: float((fuse(*p[part], w).argmax(1) == y[rows]).mean())
        return dict(models=k, w=w, val_acc=acc('val', val_idx), test_acc=acc('test', test_idx))
    return dict(speaker=speaker, seed=seed, test_acc=r['accuracy'], test_uar=r['uar'], test_macro_f1=r['macro_f1'],
                best_epoch='/'.join(map(str, r['best_epochs'])), epochs=cfg.epochs, w=r['w'], C=r['C'],
                val_acc=r['val_accuracy'], n_test=r['n_test'], confusion=r['confusion'],
                by_models=[first(k) for k in range(1, models + 1)], seconds=time.perf_counter() - start)


def by_models(runs: list[dict], folds: list[dict]) -> list[dict]:
    "Means over the split's seeds and over the folds of the fused scores with 1, 2, ... networks (validation, test)."
    if not (runs + folds) or 'by_models' not in (runs + folds)[0]:
        return []
    mean = lambda rs, k, m: float(np.mean([r['by_models'][k][m] for r in rs])) if rs else None
    parts = [(part, rs, m) for part, rs in (('seed_split', runs), ('loso', folds)) for m in ('val_acc', 'test_acc')]
    return [dict(models=k + 1, **{f'{part}_{m}_mean': mean(rs, k, m) for part, rs, m in parts})
            for k in range(len((runs + folds)[0]['by_models']))]


def main(argv=None) -> None:
    argv = tuple(sys.argv[1:] if argv is None else argv)
    args = corpus_args(parser(), argv)
    if args.models > 1 and args.recipe != 'fused':
        parser().error('--models averages the networks of --recipe fused')
    device = pick_device('auto')
    print(f'device: {device.type} ({cpu_name()}), torch {torch.__version__}, '
          f'{torch.get_num_threads()} CPU threads, {args.jobs} jobs')
    corpus, data, augment, _, _ = setup(argv)  # features computed (and cached) here, before any worker reads them
    default = 'aesdd_fused.json' if args.recipe == 'fused' else 'aesdd.json'
    out = args.out or str(Path(__file__).parent / 'results' / default)
    print(corpus.summary().splitlines()[-1])
    n_folds = 0 if args.no_loso else len(loso_folds(corpus.column('speaker')))
    jobs = [(argv, 'split', seed) for seed in args.seeds] + [(argv, 'loso', k) for k in range(n_folds)]

    start = time.perf_counter()
    runs, folds = [], []
    # the same runs either way: each trains from its own seed, in a fresh process when jobs > 1
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context('spawn')) if args.jobs > 1 \
            else contextlib.nullcontext() as pool:
        for (_, kind, key), r in zip(jobs, (pool.map if pool else map)(run_job, jobs)):
            if kind == 'split':
                runs.append(r)
                chosen = f", network weight {r['w']}" if 'w' in r else f", {r['seconds_per_epoch']:.1f} s/epoch"
                print(f"study split, seed {key}: test {r['test_acc']:.1%} (UAR {r['test_uar']:.1%}), "
                      f"validation {r['val_acc']:.1%} at epoch {r['best_epoch']} of {r['epochs']}{chosen}")
            else:
                folds.append(r)
                weight = f", network weight {r['w']}" if 'w' in r else ''
                print(f"speaker {r['speaker']} held out: test {r['test_acc']:.1%} on {r['n_test']} clips, "
                      f"epoch {r['best_epoch']} of {r['epochs']}{weight}")
    acc = np.array([r['test_acc'] for r in runs])
    loso = np.array([r['test_acc'] for r in folds]) if folds else np.array([np.nan])

    slim = lambda r: {k: v for k, v in r.items() if k not in ('history', 'label_names')}
    record = dict(
        data=str(Path(args.data).name), clips=len(corpus),
        device=f'{device.type}, {args.threads or torch.get_num_threads()} threads, {args.jobs} jobs',
        seed_split_acc_mean=float(acc.mean()), seed_split_acc_std=float(acc.std()),
        seed_split_acc=acc.tolist(), seed_split_uar_mean=float(np.mean([r['test_uar'] for r in runs])),
        seed_split_val_acc_mean=float(np.mean([r['val_acc'] for r in runs])),
        loso_acc_mean=float(loso.mean()) if folds else None, loso_acc_std=float(loso.std()) if folds else None,
        loso_per_speaker={r['speaker']: r['test_acc'] for r in folds}, augment=repr(augment), mixup=args.mixup,
        recipe=args.recipe, models=args.models, by_models=by_models(runs, folds),
        minutes=(time.perf_counter() - start) / 60,
        commands=['python bench/aesdd.py ' + shlex.join(argv)],
        runs=[slim(r) for r in runs], loso_runs=[slim(r) for r in folds])
    write_atomic(out, json.dumps(record, indent=1))
    for b in record['by_models']:
        print(f"{b['models']} network(s) fused: study split {b['seed_split_test_acc_mean']:.1%} (validation "
              f"{b['seed_split_val_acc_mean']:.1%}), leave one speaker out {b['loso_test_acc_mean'] or np.nan:.1%} "
              f"(validation {b['loso_val_acc_mean'] or np.nan:.1%})")
    print(f'honest test accuracy over seeds {args.seeds}: {acc.mean():.1%} +- {acc.std():.1%}; '
          f'leave-one-speaker-out mean {np.nanmean(loso):.1%}')
    print(f"{Path(args.data).name} seed_split {100 * acc.mean():.1f} loso {100 * np.nanmean(loso):.1f}")


if __name__ == '__main__':
    main()
