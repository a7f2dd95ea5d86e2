"""The study's results table, all six rows, on AESDD: each row trained as the study ran it, 3 seeds, two selections.

Each row is one of the study's summary table (`../shared/study/report.md`, "Here is a summary of the results"), with
its depth, batching, training data, learning rate, epochs and batch size from the notebook cell that trained it, and
its input as the notebook made it: the study's features (`FeatureConfig(sr=44100, denoise='study')`: the file's own
rate, noisereduce with the first second as noise), each clip standardised (`TrainConfig(inputs='study')`), zero-padded
or `librosa.resample`d to 256 frames for the resized rows (`batching.study_resize`), the study's 3- and 4-layer
network (`STUDY_RECIPE`; batch norm and dropout 0.5 for the resized ones, `STUDY_RESIZED`), a constant step size,
and for the tenfold rows ten copies of each training clip and no originals (`expand(..., originals=False)` with
`study_augment`, the notebook's cell 83).

The study had no validation set. Here 15% of its training part is carved out per seed (stratified, with that seed),
and after every epoch both the validation and the test clips are scored. Two numbers come from the same run:
- honest: the test accuracy of the epoch with the best validation accuracy (ties: lower validation loss);
- test-selected: the best test accuracy over the epochs, the study's method.
Their difference is the optimism of choosing on the test set. The test set is the study's (80/20, stratified,
`random_state=42`: 121 clips), the same for every seed.

Resumable: each finished run is written to `<out>/runs/<row>_seed<k>.json` and is not repeated; a run in progress
saves its state after every epoch (`<row>_seed<k>.partial.pt`, written atomically) and continues from it, with the
same result as an uninterrupted run (`--check-resume` checks that on two short runs). The record `<out>.json` is
rewritten after each finished run, so it always holds what is done. The last line reads `study_table rows <R>/6 runs
<N>/18`.

    python bench/study_table.py --data PATH [--rows 1 2 ...] [--seeds 0 1 2] [--jobs 2 --threads 1] [--device cuda]
"""
import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from ser_nbdev.augment import expand, study_augment
from ser_nbdev.data import carve_validation, load_corpus, study_split
from ser_nbdev.experiments import STUDY_RESIZED, corpus_data, split_interval, write_atomic
from ser_nbdev.features import atomic_file
from ser_nbdev.mel import FeatureConfig
from ser_nbdev.train import STUDY_RECIPE, TrainConfig, Trainer, encode_labels, prepare, validate

from machine import corpus_args, cpu_name

OUT = Path(__file__).resolve().parent / 'results' / 'study_table_aesdd'
STUDY_FEATURES = dict(sr=44100, denoise='study')  # librosa.load(sr=None) on 44.1 kHz files, then noisereduce
# The study's six rows: its report's figure and best epoch, and the notebook cell that trained each
ROWS = (
    dict(key='bs1_3', name='3 layers, batch size 1, original data', strategy='bs1', layers=3, lr=1e-3, epochs=300,
         study=74.38, study_epoch=236, cell=47),
    dict(key='bs1_4', name='4 layers, batch size 1, original data', strategy='bs1', layers=4, lr=1e-3, epochs=100,
         study=71.90, study_epoch=88, cell=56),
    dict(key='resized_3', name='3 layers, resized', strategy='resized', layers=3, lr=1e-3, epochs=50, batch_size=8,
         study=55.37, study_epoch=4, cell=69),
    dict(key='resized_4', name='4 layers, resized', strategy='resized', layers=4, lr=1e-3, epochs=50, batch_size=8,
         study=62.81, study_epoch=32, cell=77),
    dict(key='bs1_4_tenfold', name='4 layers, batch size 1, tenfold copies', strategy='bs1', layers=4, lr=1e-4,
         epochs=100, copies=10, study=70.25, study_epoch=72, cell=93),
    dict(key='resized_4_tenfold', name='4 layers, resized, tenfold copies', strategy='resized', layers=4, lr=1e-3,
         epochs=50, batch_size=16, copies=10, study=62.81, study_epoch=17, cell=98),
)
# the order runs start in: the cheap rows first, so that a short sitting completes whole rows
ORDER = ('resized_3', 'resized_4', 'bs1_4', 'resized_4_tenfold', 'bs1_3', 'bs1_4_tenfold')


def parser() -> argparse.ArgumentParser:
    "The options: which rows and seeds, where the corpus is, and how to run."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'),
                   help='corpus folder (default: $SER_NBDEV_AESDD)')
    p.add_argument('--rows', type=int, nargs='+', default=list(range(1, 7)), choices=range(1, 7),
                   help="the study's table rows to run, 1 to 6 (default: all)")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--epochs', type=int, default=None, help="every row's epochs (default: the study's); a check")
    p.add_argument('--device', default='auto')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads per run')
    p.add_argument('--jobs', type=int, default=1, help='runs at once, each in its own process')
    p.add_argument('--out', default=str(OUT), help='record OUT.json and its runs in OUT/runs/')
    p.add_argument('--check-resume', action='store_true',
                   help='instead: check that a run interrupted halfway and resumed equals an uninterrupted one '
                        '(rows 3 and 2, seed 1, --epochs or 4 epochs, in a temporary folder); exit 1 if not')
    return p


def train_config(row: dict, seed: int, args) -> TrainConfig:
    "The study's settings for `row`, on this machine."
    extra = STUDY_RESIZED if row['strategy'] == 'resized' else {}
    return TrainConfig(strategy=row['strategy'], layers=row['layers'], lr=row['lr'],
                       epochs=args.epochs or row['epochs'], batch_size=row.get('batch_size', 8), seed=seed,
                       inputs='study', device=args.device, threads=args.threads, **{**STUDY_RECIPE, **extra})


@functools.lru_cache(maxsize=1)
def features(data: str) -> tuple:
    "The study's log-Mel features of the corpus at `data`, and its split: once per process (cached on disk)."
    corpus = load_corpus(data)
    feature_cfg = FeatureConfig(**STUDY_FEATURES)
    specs, labels, names = corpus_data(corpus, feature_cfg, progress=False)
    return corpus, feature_cfg, specs, labels, names, study_split(labels)


def _snapshot(trainer: Trainer, test_acc: list, test_loss: list) -> dict:
    "Everything a run needs to continue exactly where it stopped."
    return dict(model=trainer.model.state_dict(), opt=trainer.opt.state_dict(), best_state=trainer.best_state,
                best_key=trainer.best_key, history=trainer.history, rng=trainer._rng,
                generator=trainer.generator.get_state(), test_acc=test_acc, test_loss=test_loss)


def _restore(trainer: Trainer, s: dict) -> tuple[list, list]:
    "Put a fresh Trainer back where `_snapshot` left one; returns the test curve so far."
    trainer.model.load_state_dict(s['model'])
    trainer.opt.load_state_dict(s['opt'])
    trainer.best_state, trainer.best_key, trainer.history = s['best_state'], s['best_key'], s['history']
    trainer._rng = s['rng']
    trainer.generator.set_state(s['generator'])
    return s['test_acc'], s['test_loss']


def run_one(job: tuple) -> dict:
    "Train one (row, seed), scoring validation and test after every epoch; resumes from its partial state."
    row, seed, args, runs_dir = job
    _, feature_cfg, specs, labels, names, (train_idx, test_idx) = features(args.data)
    cfg = train_config(row, seed, args)
    tr, va = carve_validation(train_idx, labels, cfg.val_size, seed=seed)
    pick = lambda idx: [specs[i] for i in idx]
    train_specs, train_labels = pick(tr), labels[tr]
    if row.get('copies'):  # the study's training set: its copies alone, made after validation is carved out
        train_specs, train_labels, _ = expand(train_specs, train_labels, row['copies'],
                                              functools.partial(study_augment, sr=feature_cfg.sr), seed,
                                              originals=False)
    trainer = Trainer(train_specs, train_labels, pick(va), labels[va], cfg, names, feature_cfg)
    x_test = prepare(pick(test_idx), cfg.strategy, cfg.inputs)
    y_test = torch.from_numpy(encode_labels(labels[test_idx], names))
    partial = runs_dir / f"{row['key']}_seed{seed}.partial.pt"
    test_acc, test_loss = [], []
    if partial.exists():
        test_acc, test_loss = _restore(trainer, torch.load(partial, weights_only=False))
    while not trainer.done:
        trainer.step()
        loss, acc = validate(trainer.model, x_test, y_test, cfg.eval_batch_size)
        test_acc.append(acc)
        test_loss.append(loss)
        with atomic_file(partial) as f:
            torch.save(_snapshot(trainer, test_acc, test_loss), f)
    h = trainer.history
    best = int(np.argmax(test_acc))  # the first epoch with the best test accuracy
    out = dict(row=row['key'], seed=seed, epochs=h.epochs, n_train=len(train_specs), n_val=len(va),
               n_test=len(test_idx), val_epoch=h.best_epoch, honest_acc=test_acc[h.best_epoch - 1],
               test_epoch=best + 1, test_selected_acc=test_acc[best], seconds=float(sum(h.seconds)),
               val_acc=h.val_acc, val_loss=h.val_loss, train_loss=h.train_loss, test_acc=test_acc,
               test_loss=test_loss, config={k: v for k, v in vars(cfg).items()}, cpu=cpu_name(), jobs=args.jobs)
    write_atomic(runs_dir / f"{row['key']}_seed{seed}.json", json.dumps(out))
    partial.unlink()
    return out


def summary(rows: list[dict], runs_dir: Path) -> list[dict]:
    "One entry per row with its finished runs: both selections' means and 95% intervals (seeds and test clips)."
    out = []
    for row in rows:
        runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob(f"{row['key']}_seed*.json"))]
        entry = dict(row, seeds=[r['seed'] for r in runs], runs=[{k: r[k] for k in (
            'seed', 'val_epoch', 'honest_acc', 'test_epoch', 'test_selected_acc', 'seconds', 'n_train', 'n_val',
            'n_test', 'epochs', 'cpu', 'jobs') if k in r} for r in runs])
        for sel in ('honest', 'test_selected'):
            accs = [r[f'{sel}_acc'] for r in runs]
            if accs:
                p, h = split_interval(accs, runs[0]['n_test'])
                entry[sel] = dict(mean=100 * p, half_width=100 * h, accs=[100 * a for a in accs])
        if runs:
            gap = [r['test_selected_acc'] - r['honest_acc'] for r in runs]
            entry['optimism'] = dict(mean=100 * float(np.mean(gap)), per_seed=[100 * g for g in gap])
            entry['minutes_per_run'] = float(np.mean([r['seconds'] for r in runs])) / 60
        out.append(entry)
    return out


def check_resume(args) -> bool:
    "Rows 3 and 2: one run straight through, one interrupted halfway (as by Ctrl-C) and resumed; equal curves?"
    args.epochs = args.epochs or 4
    ok, step = True, Trainer.step
    for row in (ROWS[2], ROWS[1]):
        with tempfile.TemporaryDirectory() as tmp:
            straight, halves = Path(tmp, 'straight'), Path(tmp, 'halves')
            straight.mkdir(), halves.mkdir()
            full = run_one((row, 1, args, straight))
            calls = [0]

            def interrupted(self):
                calls[0] += 1
                if calls[0] > args.epochs // 2:
                    raise KeyboardInterrupt
                return step(self)
            Trainer.step = interrupted
            try:
                run_one((row, 1, args, halves))
            except KeyboardInterrupt:
                pass
            finally:
                Trainer.step = step
            resumed = run_one((row, 1, args, halves))
            same = all(full[k] == resumed[k] for k in ('train_loss', 'val_loss', 'val_acc', 'test_loss', 'test_acc'))
            print(f"{row['key']}: interrupted after {args.epochs // 2} of {args.epochs} epochs and resumed, "
                  f"{'equal to' if same else 'DIFFERENT from'} the uninterrupted run")
            ok &= same
    return ok


def main(argv=None) -> None:
    argv = tuple(sys.argv[1:] if argv is None else argv)
    args = corpus_args(parser(), argv)
    if args.check_resume:
        sys.exit(0 if check_resume(args) else 1)
    out, runs_dir = Path(args.out).with_suffix('.json'), Path(args.out) / 'runs'
    runs_dir.mkdir(parents=True, exist_ok=True)
    corpus, *_ = features(args.data)  # features computed (and cached) here, before any worker reads them
    print(f'{cpu_name()}, torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads per run, '
          f'{args.jobs} jobs; {corpus.summary().splitlines()[-1]}')
    chosen = [r for r in ROWS if ROWS.index(r) + 1 in args.rows]
    jobs = [(row, seed, args, runs_dir) for key in ORDER for row in chosen if row['key'] == key
            for seed in args.seeds if not (runs_dir / f"{row['key']}_seed{seed}.json").exists()]
    print(f'{len(jobs)} runs to do, {len(chosen) * len(args.seeds) - len(jobs)} already done')
    command = 'python bench/study_table.py ' + shlex.join(argv)
    # each sitting's command is kept: the grid is completed over several, perhaps with different --jobs
    before = json.loads(out.read_text()) if out.exists() else {}
    commands = before.get('commands', [before['command']] if 'command' in before else [])
    commands += [command] if command not in commands else []

    def write_record():
        record = dict(data=Path(args.data).name, clips=len(corpus), cpu=cpu_name(), torch=torch.__version__,
                      threads=args.threads or torch.get_num_threads(), jobs=args.jobs, features=STUDY_FEATURES,
                      recipe=dict(STUDY_RECIPE, inputs='study'), resized=STUDY_RESIZED, commands=commands,
                      rows=summary(list(ROWS), runs_dir))
        write_atomic(out, json.dumps(record, indent=1))
        return record

    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context('spawn')) if args.jobs > 1 \
            else contextlib.nullcontext() as pool:
        futures = [pool.submit(run_one, j) for j in jobs] if pool else None
        for r in (f.result() for f in as_completed(futures)) if pool else map(run_one, jobs):
            print(f"{r['row']} seed {r['seed']}: honest {r['honest_acc']:.1%} (validation's epoch {r['val_epoch']}), "
                  f"test-selected {r['test_selected_acc']:.1%} (epoch {r['test_epoch']}), "
                  f"{r['seconds'] / 60:.1f} min")
            write_record()
    record = write_record()
    for e in record['rows']:
        if 'honest' in e:
            print(f"{e['name']:<40} study {e['study']:.2f}%  honest {e['honest']['mean']:.1f}% +- "
                  f"{e['honest']['half_width']:.1f}  test-selected {e['test_selected']['mean']:.1f}% +- "
                  f"{e['test_selected']['half_width']:.1f}  ({len(e['seeds'])} seeds)")
    done = sum(len(e['seeds']) for e in record['rows'])
    full = sum(len(e['seeds']) >= 3 for e in record['rows'])
    print(f'study_table rows {full}/6 runs {done}/18')


if __name__ == '__main__':
    main()
