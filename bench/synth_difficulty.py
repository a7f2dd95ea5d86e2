"""How hard is the embedded corpus for the package's recipe? bench/aesdd.py's runs, on the synthetic corpus.

Builds (or reuses) the embedded corpus (`ser_nbdev.synth.embedded_corpus`) and trains on it exactly what
`bench/aesdd.py` trains on AESDD, through that script's own functions: the package's recipe (`TrainConfig`'s
defaults, 120 epochs, with the time masks and mixup 0.2 that `bench/aesdd.py` adds) on

1. the study's split (80/20 stratified, `random_state=42`), one run per seed, validation carved from training;
2. leave-one-speaker-out: one fold per speaker (train on the other five, test on the held-out voice), seed 0.

Writes a record (`--out`, through a temporary file and one rename) with the command, the generator's version and
corpus folder, every seed's and every fold's test accuracy. The last line reads
`synth_difficulty seed_split <S> loso <L>` (percent, the means over seeds and over folds).

    python bench/synth_difficulty.py --jobs 2 --threads 1          # 3 + 6 networks; about 25 min on two free cores
    python bench/synth_difficulty.py --epochs 20 --seeds 0 --folds 1 2 --threads 1   # a quick proxy

`--take-spread`, `--speaker-spread` and `--baseline-spread` override the generator's `TAKE_SPREAD`,
`SPEAKER_SPREAD` and `SPEAKER_BASELINE` (the corpus is then generated again, in its own cache folder), e.g.
`--take-spread 0 --speaker-spread 0 --baseline-spread 0`: every actor acts by the book.
"""
import argparse
import itertools
import json
import multiprocessing
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import aesdd  # noqa: E402  (bench/aesdd.py: its runs, on another corpus)
from machine import cpu_name  # noqa: E402

from ser_nbdev import synth  # noqa: E402
from ser_nbdev.data import loso_folds  # noqa: E402
from ser_nbdev.experiments import write_atomic  # noqa: E402
from ser_nbdev.train import TrainConfig  # noqa: E402

OVERRIDES = {'take_spread': 'TAKE_SPREAD', 'speaker_spread': 'SPEAKER_SPREAD', 'baseline_spread': 'SPEAKER_BASELINE'}


def parser() -> argparse.ArgumentParser:
    "The options: which runs, how long, how many at once, and the generator's spreads."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds of the study-split runs')
    p.add_argument('--folds', nargs='*', default=None, metavar='SPEAKER',
                   help='speakers to hold out, one fold each (default: all six; none: skip LOSO)')
    p.add_argument('--epochs', type=int, default=TrainConfig().epochs)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads per run')
    p.add_argument('--jobs', type=int, default=1, help='runs at once, each in its own process')
    for name, const in OVERRIDES.items():
        p.add_argument('--' + name.replace('_', '-'), type=float, default=None, help=f'override synth.{const}')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'synth_difficulty.json'))
    return p


def finished(jobs: list, n_jobs: int):
    "Yield (job, result) as each of bench/aesdd.py's runs finishes, `n_jobs` at once in their own processes."
    if n_jobs == 1:
        yield from ((job, aesdd.run_job(job)) for job in jobs)
        return
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
        futures = {pool.submit(aesdd.run_job, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def make_record(args, argv: list, root: Path, corpus, jobs: list, results: dict, start: float) -> dict:
    "The record of the runs finished so far (`complete` once all of `jobs` are in)."
    runs = [results[j] for j in jobs if j in results and j[1] == 'split']
    folds = [results[j] for j in jobs if j in results and j[1] == 'loso']
    keep = ('seed', 'test_acc', 'test_uar', 'val_acc', 'best_epoch', 'n_train', 'n_val', 'n_test', 'confusion',
            'seconds_per_epoch')
    mean = lambda rs: float(np.mean([r['test_acc'] for r in rs])) if rs else None
    return dict(
        commands=['python bench/synth_difficulty.py ' + shlex.join(argv)], complete=len(results) == len(jobs),
        generator_version=synth.GENERATOR_VERSION, corpus=root.name, clips=len(corpus), label_names=corpus.labels,
        spreads={const: getattr(synth, const) for const in OVERRIDES.values()}, epochs=args.epochs,
        seed_split_acc_mean=mean(runs), seed_split_acc=[r['test_acc'] for r in runs],
        loso_acc_mean=mean(folds), loso_per_speaker={r['speaker']: r['test_acc'] for r in folds},
        minutes=(time.perf_counter() - start) / 60, cpu=cpu_name(), threads=args.threads, jobs=args.jobs,
        runs=[{k: r[k] for k in keep} for r in runs],
        loso_runs=[dict(speaker=r['speaker'], **{k: r[k] for k in keep}) for r in folds])


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    for name, const in OVERRIDES.items():
        if getattr(args, name) is not None:
            setattr(synth, const, getattr(args, name))
    t0 = time.perf_counter()
    root = synth.embedded_corpus()
    print(f'corpus {root.name} ready in {time.perf_counter() - t0:.0f} s')
    recipe_argv = ('--data', str(root), '--epochs', str(args.epochs), '--seeds', *map(str, args.seeds)) \
        + (('--threads', str(args.threads)) if args.threads else ())
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus, *_ = aesdd.setup(recipe_argv)  # features computed (and cached) here, before any worker reads them
    speakers = [s for s, _, _ in loso_folds(corpus.column('speaker'))]
    held_out = speakers if args.folds is None else args.folds
    splits = [(recipe_argv, 'split', s) for s in args.seeds]
    folds = [(recipe_argv, 'loso', speakers.index(s)) for s in held_out]
    # interleaved, so that a run stopped early has measured both protocols
    jobs = [j for group in itertools.zip_longest(splits, folds[0::2], folds[1::2]) for j in group if j]

    start, results = time.perf_counter(), {}
    for job, r in finished(jobs, args.jobs):
        results[job] = r
        name = f'study split, seed {job[2]}' if job[1] == 'split' else f"speaker {r['speaker']} held out"
        print(f"{name}: test {r['test_acc']:.1%} on {r['n_test']} clips, validation {r['val_acc']:.1%} "
              f"at epoch {r['best_epoch']}")
        # the record so far, after every run: a long benchmark that is stopped keeps what it measured
        record = make_record(args, argv, root, corpus, jobs, results, start)
        write_atomic(args.out, json.dumps(record, indent=1))
    pct = lambda x: f'{100 * x:.1f}' if x is not None else 'nan'
    print(f"synth_difficulty seed_split {pct(record['seed_split_acc_mean'])} loso {pct(record['loso_acc_mean'])}")


if __name__ == '__main__':
    main()
