"""Seconds per training epoch at batch size 1 against length-bucketed batches, same model and data, one run.

The runs train the package's network (`BandCNN`; `--model study` for the study's 3-layer CNN) on the same data: the
study's split (80/20 stratified, `random_state=42`), with validation carved from the training part (15%). They are
stepped epoch by epoch in turn (interleaved), so a machine shared with other work slows them alike. An epoch's time
counts training and the validation pass. They differ in how clips reach the network, and in what suits each:

- bs1: the study's loop: one clip per Adam step at the study's constant 1e-3 (`--bs1-lr`), validation one clip at a
  time, PyTorch's default (NCHW) memory layout, no batch norm (at batch size 1 it would normalise each clip by
  itself, and evaluation's running averages would not match, see `TrainConfig.norm`).
- bucketed: exactly the same network, in batches of clips of similar length padded to the longest and masked,
  validation in length-sorted padded batches under `torch.inference_mode`, channels_last memory layout, Adam at the
  package's schedule (`--lr`, cosine with one epoch of warm-up), and twice as many epochs (`--bucketed-epochs`): a
  batch of 8 takes 8 times fewer steps per epoch, and an epoch takes less than half the time, so the two runs take
  about the same wall time. The record and the summary give each run's total seconds.
- bs1 + GN and bucketed + GN (`--no-gn-arms` leaves them out): the two loops again, both with a per-clip group norm
  after each conv block (chapter 06, `TrainConfig(group_norm=True)`). It has no batch statistics, so batch size 1
  trains it as well as the buckets do, and a padded batch computes what batch size 1 computes even in training: the
  same network in both loops, one that trains well in batches.
- bucketed + BN (`--no-bn-arm` leaves it out): the buckets with masked batch norm after each conv, the package's
  recipe; the network batch size 1 cannot train.

The bucketed settings were chosen on validation clips (`bench/recipe.py`, `recipe_bucketed.json`), never on the test
set. Accuracy is honest: the test accuracy of the epoch chosen on validation, as a mean over `--seeds` seeds.
`--ablation` first times the steps between the two loops (a few interleaved epochs each, the same network up to the
normalised rows) and prints what each bought. Runs on the embedded corpus, or any corpus the loaders read with `--data
PATH`. A benchmark, not a test. A line per network compares its two loops; the last one reads
`speedup <R>x acc_bs1 <A> acc_bucketed <B>` (bs1 against bucketed, the same network: with group norm, or with
`--no-gn-arms` the bare one; R per epoch, on the device named in the first line; A and B in percent).

    python bench/train.py [--data PATH] [--model bands] [--epochs 20] [--seeds 3] [--threads 2] [--ablation]

On a machine without the audio libraries or the corpus (a lent GPU, `bench/gpu.sh`), `--save-features NPZ` writes the
features here and `--features NPZ` trains on them there.

Older records (their `repeat_with` gives today's flags): `train_study.json` (the study's network, equal epochs),
`train_equal_epochs.json` (`BandCNN`, equal epochs), both without the batch-norm arm, and `train_no_gn.json` (the
same as today's, before the group-norm arms).
"""
import argparse
import json
import os
import platform
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ser_nbdev.data import carve_validation, study_split
from ser_nbdev.features import atomic_file
from ser_nbdev.train import Trainer, TrainConfig, evaluate, pick_device


class UnsortedTrainer(Trainer):
    "Padded batches drawn at random, ignoring length: the baseline that the length buckets improve on."
    def batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.x_train)).tolist()
        return [order[i:i + self.cfg.batch_size] for i in range(0, len(order), self.cfg.batch_size)]


def study_bs1(cfg: TrainConfig, lr: float) -> TrainConfig:
    "The study's loop: one clip per step at a constant `lr`, one clip per validation step, NCHW, no batch norm."
    return replace(cfg, strategy='bs1', eval_batch_size=1, channels_last=False, lr=lr, schedule='constant',
                   batch_norm=False)


def pair_line(sec: dict, acc: dict, suffix: str = '') -> str:
    "The issue's summary of bs1 against bucketed with one network (`suffix` names it: '' or ' + GN')."
    return (f"speedup {sec['bs1' + suffix] / sec['bucketed' + suffix]:.2f}x acc_bs1 {acc['bs1' + suffix]:.1f} "
            f"acc_bucketed {acc['bucketed' + suffix]:.1f}")


def interleave(runs: dict, epochs: int | dict, threads: dict | None = None) -> dict:
    "Step each run once per round until it has its `epochs` (one for all, or per run), rotating who goes first."
    names = list(runs)
    epochs = epochs if isinstance(epochs, dict) else dict.fromkeys(names, epochs)
    for r in range(max(epochs.values())):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if r >= epochs[name]:
                continue
            if threads and name in threads:
                torch.set_num_threads(threads[name])
            runs[name].step()
    return {name: run.history.seconds for name, run in runs.items()}


def ablation(data: tuple, cfg: TrainConfig, bs1_cfg: TrainConfig, label_names: list, epochs: int,
             base_threads: int, batch_norm: bool, group_norm: bool) -> dict[str, float]:
    "Time the steps from the study's loop to the bucketed one, interleaved; print and return each one's s/epoch."
    steps = [  # (name, what changed, trainer class, config, threads)
        ('bs1 study', 'one clip per step and per validation step', Trainer, bs1_cfg, base_threads),
        ('bs1 + batched val', 'validation in sorted padded batches', Trainer,
         replace(bs1_cfg, eval_batch_size=cfg.eval_batch_size), base_threads),
        ('bs1 + channels_last', 'NHWC layout, validation batched', Trainer,
         replace(bs1_cfg, eval_batch_size=cfg.eval_batch_size, channels_last=True), base_threads),
        ('padded, unsorted', f'random batches of {cfg.batch_size}, padded', UnsortedTrainer,
         replace(cfg, eval_batch_size=1, channels_last=False), base_threads),
        ('+ sorted by length', 'length buckets', Trainer, replace(cfg, eval_batch_size=1, channels_last=False),
         base_threads),
        ('+ batched val', 'validation in sorted padded batches', Trainer, replace(cfg, channels_last=False),
         base_threads),
        ('+ channels_last', 'NHWC memory layout (final)', Trainer, cfg, base_threads),
        ('final, 1 thread', 'torch.set_num_threads(1)', Trainer, cfg, 1),
    ]
    if group_norm:  # a network both loops train
        steps += [('bs1 + group norm', 'bs1 study, group norm after each conv block', Trainer,
                   replace(bs1_cfg, group_norm=True), base_threads),
                  ('final + group norm', 'the final loop, the same network', Trainer, replace(cfg, group_norm=True),
                   base_threads)]
    if batch_norm:  # the recipe's network, no longer bs1's
        steps.append(('final + batch norm', 'masked batch norm after each conv', Trainer,
                      replace(cfg, batch_norm=True), base_threads))
    runs = {name: cls(*data, c, label_names) for name, _, cls, c, _ in steps}
    seconds = interleave(runs, epochs, {name: t for name, *_, t in steps})
    torch.set_num_threads(base_threads)
    warm = lambda s: s[1:] if len(s) > 1 else s  # the first epoch also builds oneDNN kernels for new shapes
    base = np.median(warm(seconds['bs1 study']))
    print(f"\nablation: median seconds per epoch over epoch{'s 2-' if epochs > 1 else ' '}{epochs}, interleaved "
          f'(seed {cfg.seed})')
    print(f"{'step':<22}{'change':<46}{'s/epoch':>9}{'vs bs1':>8}")
    medians = {name: float(np.median(warm(seconds[name]))) for name, *_ in steps}
    for name, change, *_ in steps:
        print(f'{name:<22}{change:<46}{medians[name]:>9.2f}{base / medians[name]:>7.2f}x')
    print()
    return medians


def command_line(argv: list[str]) -> str:
    "The command that repeats this run."
    return 'python bench/train.py ' + shlex.join(argv)


def load_features(args) -> tuple[list[np.ndarray], np.ndarray, list[str], str | None]:
    "The corpus's log-Mel features, labels, label names and, read from `--features`, the command that wrote them."
    if args.features:  # no audio stack needed (soundfile, librosa): a lent GPU machine may lack it
        with np.load(args.features) as f:
            specs = np.split(f['specs'].astype(np.float32), np.cumsum(f['frames'])[:-1], axis=1)
            return ([np.ascontiguousarray(s) for s in specs], f['labels'], f['label_names'].tolist(),
                    str(f['command']))
    from ser_nbdev.data import load_corpus
    from ser_nbdev.features import corpus_features
    from ser_nbdev.mel import FeatureConfig
    corpus = load_corpus(args.data)
    specs = corpus_features(corpus, FeatureConfig(), progress=False)
    labels, label_names = np.array(corpus.column('label')), corpus.labels
    if args.save_features:  # float16: half the bytes to carry, and at most 0.03 dB off
        frames = [s.shape[1] for s in specs]
        with atomic_file(args.save_features) as f:
            np.savez(f, specs=np.concatenate(specs, axis=1).astype(np.float16), frames=frames, labels=labels,
                     label_names=np.array(label_names), command=command_line(sys.argv[1:]))
        print(f'features written to {args.save_features}')
        sys.exit(0)
    return specs, labels, label_names, None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', help='corpus folder (default: the embedded synthetic corpus)')
    p.add_argument('--save-features', metavar='NPZ', help="write the corpus's features (float16) to NPZ and stop")
    p.add_argument('--features', metavar='NPZ', help='train on features written by --save-features (name the '
                                                     'corpus with --data, for the record)')
    p.add_argument('--epochs', type=int, default=20, help='epochs per run (no early stopping, so times compare)')
    p.add_argument('--bucketed-epochs', type=int, default=None,
                   help="epochs of the bucketed run (default: twice --epochs, about bs1's wall time)")
    p.add_argument('--seeds', type=int, default=3, help='seeds 0..N-1; accuracy is their mean')
    p.add_argument('--model', default='bands', choices=['study', 'bands'], help='the network (default: %(default)s)')
    p.add_argument('--layers', type=int, default=3)
    p.add_argument('--lr', type=float, default=TrainConfig.lr, help='peak step size of the bucketed run')
    p.add_argument('--bs1-lr', type=float, default=1e-3, help="the bs1 run's constant step size (the study's)")
    p.add_argument('--batch-size', type=int, default=TrainConfig.batch_size)
    p.add_argument('--bn-arm', action=argparse.BooleanOptionalAction, default=True,
                   help="an arm: the bucketed run with masked batch norm, the package's recipe "
                        '(batch size 1 cannot use it)')
    p.add_argument('--gn-arms', action=argparse.BooleanOptionalAction, default=True,
                   help='two more arms: bs1 and bucketed with per-clip group norm, a network both loops train')
    p.add_argument('--schedule', default=TrainConfig.schedule, choices=['cosine', 'constant'],
                   help="the bucketed run's schedule (bs1 keeps the study's constant step)")
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--ablation', action='store_true', help='first time each step between the two loops')
    p.add_argument('--ablation-epochs', type=int, default=3)
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'train.json'))
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen, also when redirected

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = pick_device('auto')
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()
    print(f'device: {device.type} ({name}), torch {torch.__version__}, {threads} CPU threads, '
          f'{os.cpu_count()} CPUs visible')

    specs, labels, label_names, features_command = load_features(args)
    train_all, test_idx = study_split(labels)
    frames = np.array([s.shape[1] for s in specs])
    print(f"data: {args.data or 'embedded corpus'}: {len(specs)} clips, {len(label_names)} classes, "
          f'{frames.mean():.0f} frames per clip on average (min {frames.min()}, max {frames.max()})')

    n = args.bucketed_epochs or 2 * args.epochs
    epochs = {'bs1': args.epochs, 'bucketed': n}
    if args.gn_arms:
        epochs |= {'bs1 + GN': args.epochs, 'bucketed + GN': n}
    if args.bn_arm:
        epochs['bucketed + BN'] = n
    base = TrainConfig(strategy='bucketed', model=args.model, layers=args.layers, lr=args.lr, epochs=n,
                       batch_size=args.batch_size, patience=0, threads=threads, batch_norm=False,
                       schedule=args.schedule)
    pick = lambda idx: [specs[i] for i in idx]
    steps = None
    if args.ablation:
        train_idx, val_idx = carve_validation(train_all, labels, base.val_size, seed=0)
        data = (pick(train_idx), labels[train_idx], pick(val_idx), labels[val_idx])
        steps = ablation(data, base, study_bs1(base, args.bs1_lr), label_names, args.ablation_epochs, threads,
                         args.bn_arm, args.gn_arms)

    results = {k: [] for k in epochs}
    for seed in range(args.seeds):
        train_idx, val_idx = carve_validation(train_all, labels, base.val_size, seed=seed)
        data = (pick(train_idx), labels[train_idx], pick(val_idx), labels[val_idx])
        bs1 = study_bs1(replace(base, seed=seed, epochs=args.epochs), args.bs1_lr)
        cfgs = {'bs1': bs1, 'bucketed': replace(base, seed=seed), 'bs1 + GN': replace(bs1, group_norm=True),
                'bucketed + GN': replace(base, seed=seed, group_norm=True),
                'bucketed + BN': replace(base, seed=seed, batch_norm=True)}
        cfgs = {k: cfgs[k] for k in epochs}
        runs = {k: Trainer(*data, c, label_names) for k, c in cfgs.items()}
        interleave(runs, epochs)
        line = [f'seed {seed}: train {len(train_idx)} val {len(val_idx)} test {len(test_idx)}']
        for k, run in runs.items():
            acc = evaluate(run.best_model(), pick(test_idx), labels[test_idx])['accuracy']
            h = run.history
            results[k].append(dict(seed=seed, seconds=h.seconds, best_epoch=h.best_epoch, test_acc=acc,
                                   val_acc=h.val_acc[h.best_epoch - 1]))
            line.append(f'{k} {np.median(h.seconds):.2f} s/epoch, {sum(h.seconds):.0f} s in all, test {acc:.1%} '
                        f'(epoch {h.best_epoch} of {len(h.seconds)})')
        print(' | '.join(line), flush=True)

    sec = {k: float(np.median([s for r in rs for s in r['seconds']])) for k, rs in results.items()}
    total = {k: float(np.mean([sum(r['seconds']) for r in rs])) for k, rs in results.items()}
    acc = {k: 100 * float(np.mean([r['test_acc'] for r in rs])) for k, rs in results.items()}
    std = {k: 100 * float(np.std([r['test_acc'] for r in rs])) for k, rs in results.items()}
    net = ' + GN' if args.gn_arms else ''  # the network of the headline, the last line
    speedup = sec['bs1' + net] / sec['bucketed' + net]
    print(f'batches of {args.batch_size}; median seconds per epoch, seconds per run (epochs), honest test accuracy '
          f'over {args.seeds} seeds:')
    for k in epochs:
        print(f'  {k:<15} {sec[k]:5.2f} s/epoch {total[k]:5.0f} s ({epochs[k]}) {acc[k]:5.1f} +- {std[k]:.1f}')
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the command that wrote the features, where they were read from a file, comes first
    commands = [c for c in (features_command, command_line(sys.argv[1:] if argv is None else argv)) if c]
    record = dict(device=f'{device.type} ({name})', threads=threads, torch=torch.__version__,
                  data=args.data or 'embedded', model=args.model, epochs=epochs, seeds=args.seeds,
                  batch_size=args.batch_size, lr=args.lr, bs1_lr=args.bs1_lr,
                  schedule=args.schedule, headline=f'bs1{net} against bucketed{net}',
                  seconds_per_epoch=sec, seconds_per_run=total, speedup=speedup,
                  test_acc_mean=acc, test_acc_std=std, ablation_seconds_per_epoch=steps, runs=results,
                  commands=commands)
    with atomic_file(out, 'w') as f:
        json.dump(record, f, indent=1)
    if args.gn_arms:
        print('no norm: ' + pair_line(sec, acc))
    print(pair_line(sec, acc, net))


if __name__ == '__main__':
    main()
