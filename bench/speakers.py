"""New voices: leave-one-speaker-out on AESDD (or any corpus the loaders read), with and without speaker normalisation,
beside the eGeMAPS baseline.

For each speaker in turn (a fold), the package's recipe (`TrainConfig`'s defaults, time masks and mixup 0.2, as
`bench/aesdd.py`; `--epochs` 60 here) trains on the other speakers. Validation is whole training speakers
(`carve_speakers`, 15% of the clips, seed 0); the epoch is chosen on them and the held-out speaker is scored.
Three inputs, on the same folds:
- `none`: the log-Mel features as they are;
- `unlabelled`: each speaker's bands standardised with statistics from all of that speaker's clips, labels unused
  (`speaker_stats`, `normalise_speakers`), the held-out speaker's included: this uses the test speaker's audio;
- `enrol`: as `unlabelled`, but the held-out and validation speakers' statistics come from `--enrol` of their clips
  (10), drawn at random without looking at labels (`enrolment`), which are then not scored. (Not the first clips:
  a corpus in emotion folders lists each speaker's clips emotion by emotion.)
After every epoch the held-out speaker's clips are also scored (never used to choose anything), so the runs show what
each way of choosing the epoch would have given: the best validation accuracy (the package's rule), the best
validation accuracy smoothed over 5 epochs, the lowest validation loss, and the last epoch.

Familiar voices, for comparison: `--split-variants` (`unlabelled`) also train on the study's split (80/20,
`random_state=42`, validation carved by label with each of `--split-seeds`), as `bench/aesdd.py` does.

The eGeMAPS baseline: openSMILE's 88 eGeMAPSv02 functionals of each clip at 16 kHz (`corpus_egemaps`), standardised per
speaker (or over the training clips, `global`), and a logistic regression whose C is chosen on the validation
speakers; the same folds. And eGeMAPS on the study's split (3 seeds of validation carving), for familiar voices.
The functionals are kept in the feature cache, so a second run does not compute them again.

Both fused (`fuse`, `fusion_weight`): the speaker-normalised CNN (`unlabelled`) and per-speaker eGeMAPS, their class
probabilities averaged with a weight w (0, 0.1, ..., 1) chosen on each fold's validation speakers (or each seed's
validation clips on the study's split), with the linear model fitted on the training clips; then the linear model is
refitted as above and the held-out clips are scored once at that w. The CNN runs keep their validation and test
probabilities at validation's epoch for this.

Resumable: each finished run is `<out>/runs/<variant>_<speaker>.json` and is not repeated. Writes `<out>.json`
with the summary (mean over folds and a t interval) and the command. The last line reads
`<corpus folder> loso none <A> unlabelled <B> enrol <C> egemaps <D> fusion <E>` (percent).

    python bench/speakers.py --data PATH [--epochs 60] [--enrol 10] [--jobs 2 --threads 1]
"""
import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from ser_nbdev.augment import Augmenter
from ser_nbdev.data import carve_speakers, carve_validation, load_corpus, loso_folds, study_split
from ser_nbdev.experiments import corpus_data, seed_summary, split_interval, write_atomic
from ser_nbdev.mel import FeatureConfig
from ser_nbdev.speakers import (EPOCH_RULES, FUSION_WEIGHTS, band_stats, choose_epoch, corpus_egemaps, enrolment,
                                fit_linear, fuse, fusion_weight, linear_on_validation, normalise_speakers,
                                speaker_stats, standardise_by)
from ser_nbdev.train import TrainConfig, Trainer, encode_labels, predict_logits, prepare, scores

from machine import corpus_args, cpu_name

OUT = Path(__file__).resolve().parent / 'results' / 'speakers_aesdd'
VARIANTS = ('none', 'unlabelled', 'enrol')


def parser() -> argparse.ArgumentParser:
    "The options: the corpus, the inputs compared, and how to run."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'),
                   help='corpus folder (default: $SER_NBDEV_AESDD)')
    p.add_argument('--epochs', type=int, default=60)
    p.add_argument('--enrol', type=int, default=10, help="clips of a new speaker used for its statistics, not scored")
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    p.add_argument('--seed', type=int, default=0, help='seed of the speaker folds (validation speakers, training)')
    p.add_argument('--split-variants', nargs='*', default=['unlabelled'], choices=VARIANTS[:2],
                   help="inputs also trained on the study's split (familiar voices)")
    p.add_argument('--split-seeds', type=int, nargs='*', default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads per run')
    p.add_argument('--jobs', type=int, default=1, help='runs at once, each in its own process')
    p.add_argument('--out', default=str(OUT), help='record OUT.json and its runs in OUT/runs/')
    return p


@functools.lru_cache(maxsize=1)
def features(data: str) -> tuple:
    "The corpus, its log-Mel features (cached on disk), labels, names and speakers: once per process."
    corpus = load_corpus(data)
    feature_cfg = FeatureConfig()
    specs, labels, names = corpus_data(corpus, feature_cfg, progress=False)
    return corpus, feature_cfg, specs, labels, names, np.asarray(corpus.column('speaker'), dtype=str)


def parts(variant: str, k, args) -> tuple:
    "Fold k's (or the study split's, k = ('split', seed)) train, validation and test indices, and the features."
    _, _, specs, labels, _, speakers = features(args.data)
    if isinstance(k, tuple):  # familiar voices: the study's split, validation carved by label with the seed
        train_idx, test_idx = study_split(labels)
        tr, va = carve_validation(train_idx, labels, 0.15, seed=k[1])
        speaker = f'split_seed{k[1]}'
    else:
        speaker, train_idx, test_idx = loso_folds(speakers)[k]
        tr, va = carve_speakers(train_idx, speakers, 0.15, seed=args.seed)
    if variant == 'none':
        return speaker, tr, va, test_idx, specs
    stats = speaker_stats(specs, speakers)
    if variant == 'enrol':  # new voices known only by a few of their clips, which are then not scored
        new = set(speakers[va]) | {speaker}
        chosen = enrolment(speakers, args.enrol, seed=args.seed)
        stats.update({s: v for s, v in speaker_stats(specs, speakers, args.enrol, args.seed).items() if s in new})
        enrolled = np.concatenate([chosen[s] for s in sorted(new)])
        va, test_idx = np.setdiff1d(va, enrolled), np.setdiff1d(test_idx, enrolled)
    reference = band_stats([specs[i] for i in tr])
    return speaker, tr, va, test_idx, normalise_speakers(specs, speakers, stats, reference)


def run_one(job: tuple) -> dict:
    "One fold of one variant, scoring the held-out speaker after every epoch (for the epoch rules only)."
    variant, k, args, runs_dir = job
    _, feature_cfg, _, labels, names, _ = features(args.data)
    speaker, tr, va, te, x = parts(variant, k, args)
    pick = lambda idx: [x[i] for i in idx]
    seed = k[1] if isinstance(k, tuple) else args.seed
    cfg = TrainConfig(epochs=args.epochs, seed=seed, mixup=0.2, threads=args.threads)
    trainer = Trainer(pick(tr), labels[tr], pick(va), labels[va], cfg, names, feature_cfg,
                      Augmenter(transforms=('time',), cfg=feature_cfg))
    x_test, y_test = prepare(pick(te), cfg.strategy, cfg.inputs), encode_labels(labels[te], names)
    test_pred, val_pred, val_nll = [], [], []
    while not trainer.done:
        trainer.step()
        test_pred.append(predict_logits(trainer.model, x_test).argmax(1).tolist())
        # each validation clip's prediction and loss, so that the epoch rules can be compared on validation alone
        logp = predict_logits(trainer.model, trainer.x_val).log_softmax(1)
        val_pred.append(logp.argmax(1).tolist())
        val_nll.append(np.round(-logp[torch.arange(len(va)), trainer.y_val].numpy(), 5).tolist())
    h = trainer.history
    model = trainer.best_model()  # validation's epoch: its class probabilities, for the fusion with eGeMAPS
    prob = lambda x: np.round(predict_logits(model, x).softmax(1).numpy(), 5).tolist()
    out = dict(variant=variant, speaker=speaker, n_train=len(tr), n_val=len(va), n_test=len(te),
               val_epoch=h.best_epoch, seconds=float(sum(h.seconds)), val_acc=h.val_acc, val_loss=h.val_loss,
               train_loss=h.train_loss, y_val=trainer.y_val.tolist(), val_pred=val_pred, val_nll=val_nll,
               y_test=y_test.tolist(), test_pred=test_pred, label_names=names, val_index=np.asarray(va).tolist(),
               test_index=np.asarray(te).tolist(), val_prob=prob(trainer.x_val), test_prob=prob(x_test))
    write_atomic(runs_dir / f'{variant}_{speaker}.json', json.dumps(out))
    return out


def halves_score(run: dict, rule: str, n_splits: int = 20) -> float:
    "Validation alone: the accuracy on one half of the validation clips at the epoch `rule` keeps on the other half."
    y = np.asarray(run['y_val'])
    correct = np.asarray(run['val_pred']) == y  # (epochs, clips)
    nll, rng, out = np.asarray(run['val_nll']), np.random.default_rng(0), []
    for _ in range(n_splits):
        perm = rng.permutation(len(y))
        for a, b in ((perm[:len(y) // 2], perm[len(y) // 2:]), (perm[len(y) // 2:], perm[:len(y) // 2])):
            e = choose_epoch(correct[:, a].mean(1), nll[:, a].mean(1), rule)
            out.append(correct[e - 1, b].mean())
    return float(np.mean(out))


def fold_scores(run: dict, rule: str = 'best_val_acc') -> dict:
    "Accuracy, UAR and macro F1 of the held-out speaker at the epoch `rule` keeps."
    pred = run['test_pred'][choose_epoch(run['val_acc'], run['val_loss'], rule) - 1]
    s = scores(run['y_test'], pred, len(run['label_names']))
    return {m: s[m] for m in ('accuracy', 'uar', 'macro_f1')}


def fusion_fold(run: dict, Z: np.ndarray, y: np.ndarray, train_idx) -> dict:
    """The CNN of `run` and eGeMAPS fused: C and the weight chosen on the run's validation clips with the linear model
    fitted on the rest of `train_idx`, then the linear model refitted on all of it (as the eGeMAPS rows) and the run's
    test clips scored once."""
    va, te = np.asarray(run['val_index']), np.asarray(run['test_index'])
    assert run['y_val'] == y[va].tolist() and run['y_test'] == y[te].tolist(), 'the run is of another corpus'
    tr = np.setdiff1d(train_idx, va)  # the run's own validation clips, so the two models cannot disagree on them
    lin, C = linear_on_validation(Z, y, tr, va, tr)
    p_val = lin.predict_proba(Z[va])
    w = fusion_weight(run['val_prob'], p_val, y[va])
    p_test = fit_linear(Z, y, train_idx, C).predict_proba(Z[te])
    s = scores(y[te], fuse(run['test_prob'], p_test, w).argmax(1), len(run['label_names']))
    curve = lambda p_cnn, p_lin, yy: [float((fuse(p_cnn, p_lin, v).argmax(1) == yy).mean()) for v in FUSION_WEIGHTS]
    return dict(speaker=run['speaker'], w=w, C=C, n_test=len(te), **{m: s[m] for m in ('accuracy', 'uar', 'macro_f1')},
                val_curve=curve(run['val_prob'], p_val, y[va]), test_curve=curve(run['test_prob'], p_test, y[te]))


def fusion(args, runs: list[dict], variant: str = 'unlabelled') -> dict:
    """The speaker-normalised CNN fused with per-speaker eGeMAPS, on the speaker folds and on the study's split:
    each fold's or seed's weight chosen on its validation clips."""
    corpus, _, _, labels, names, speakers = features(args.data)
    Z, y = standardise_by(corpus_egemaps(corpus), speakers), encode_labels(labels, names)
    by_name = {r['speaker']: r for r in runs if r['variant'] == variant and 'val_prob' in r}
    folds, split = [], []
    for speaker, train_idx, _ in loso_folds(speakers):
        if speaker in by_name:
            folds.append(fusion_fold(by_name[speaker], Z, y, train_idx))
    train_idx, _ = study_split(labels)
    for seed in args.split_seeds:
        if f'split_seed{seed}' in by_name:
            split.append(dict(seed=seed, **fusion_fold(by_name[f'split_seed{seed}'], Z, y, train_idx)))
    out = dict(variant=variant, weights=list(FUSION_WEIGHTS), folds=folds, study_split=split)
    if folds:
        out.update({m: seed_summary([f[m] for f in folds]) for m in ('accuracy', 'uar', 'macro_f1')})
    if split:
        p, h = split_interval([r['accuracy'] for r in split], split[0]['n_test'])
        out['study_split_accuracy'] = dict(mean=p, half_width=h, accs=[r['accuracy'] for r in split])
    return out


def egemaps_folds(args) -> dict:
    "The eGeMAPS baseline on the same folds: per-speaker and global standardisation, C chosen on validation."
    corpus, _, _, labels, names, speakers = features(args.data)
    X = corpus_egemaps(corpus)
    y = encode_labels(labels, names)
    out = {}
    for how in ('speaker', 'global'):
        folds = []
        for speaker, train_idx, test_idx in loso_folds(speakers):
            tr, va = carve_speakers(train_idx, speakers, 0.15, seed=args.seed)
            Z = standardise_by(X, speakers) if how == 'speaker' else (X - X[tr].mean(0)) / (X[tr].std(0) + 1e-8)
            model, C = linear_on_validation(Z, y, tr, va, np.concatenate([tr, va]))  # refit with validation speakers
            pred = model.predict(Z[test_idx])
            s = scores(y[test_idx], pred, len(names))
            folds.append(dict(speaker=speaker, C=C, n_test=len(test_idx),
                              **{m: s[m] for m in ('accuracy', 'uar', 'macro_f1')}))
        out[how] = folds
    out['study_split'] = egemaps_study_split(standardise_by(X, speakers), y, labels)
    return out


def egemaps_study_split(Z: np.ndarray, y: np.ndarray, labels: np.ndarray) -> list[dict]:
    "eGeMAPS (standardised per speaker) on the study's split, 3 seeds of validation carving: familiar voices."
    train_idx, test_idx = study_split(labels)
    runs = []
    for seed in (0, 1, 2):
        tr, va = carve_validation(train_idx, labels, 0.15, seed=seed)
        model, C = linear_on_validation(Z, y, tr, va, train_idx)  # refit with the validation part
        acc = model.score(Z[test_idx], y[test_idx])
        runs.append(dict(seed=seed, C=C, n_test=len(test_idx), accuracy=float(acc)))
    return runs


def split_summary(runs: list[dict]) -> dict:
    "Per variant trained on the study's split: each seed's test accuracy at validation's epoch, mean and interval."
    out = {}
    for variant in VARIANTS:
        mine = sorted((r for r in runs if r['variant'] == variant and r['speaker'].startswith('split_')),
                      key=lambda r: r['speaker'])
        if mine:
            accs = [fold_scores(r)['accuracy'] for r in mine]
            p, h = split_interval(accs, mine[0]['n_test'])
            out[variant] = dict(seeds=[r['speaker'] for r in mine], accs=accs, mean=p, half_width=h)
    return out


def summary(runs: list[dict], order: list[str]) -> dict:
    "Per variant: each fold's scores under each rule, and the mean over folds with a t interval."
    out = {}
    for variant in VARIANTS:
        mine = sorted((r for r in runs if r['variant'] == variant and r['speaker'] in order),
                      key=lambda r: order.index(r['speaker']))
        if not mine:
            continue
        entry = dict(folds=[dict(speaker=r['speaker'], n_test=r['n_test'], n_val=r['n_val'], **fold_scores(r),
                                 epochs={rule: choose_epoch(r['val_acc'], r['val_loss'], rule) for rule in EPOCH_RULES}) for r in mine],
                     minutes_per_fold=float(np.mean([r['seconds'] for r in mine])) / 60)
        entry['rules'] = {rule: {m: seed_summary([fold_scores(r, rule)[m] for r in mine])
                                 for m in ('accuracy', 'uar', 'macro_f1')} for rule in EPOCH_RULES}
        entry['rules_on_validation'] = {rule: seed_summary([halves_score(r, rule) for r in mine]) for rule in EPOCH_RULES}
        out[variant] = entry
    return out


def main(argv=None) -> None:
    argv = tuple(sys.argv[1:] if argv is None else argv)
    args = corpus_args(parser(), argv)
    out, runs_dir = Path(args.out).with_suffix('.json'), Path(args.out) / 'runs'
    runs_dir.mkdir(parents=True, exist_ok=True)
    corpus, *_, speakers = features(args.data)  # features cached here, before any worker reads them
    print(f'{cpu_name()}, torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads per run, '
          f'{args.jobs} jobs; {corpus.summary().splitlines()[-1]}')
    n_folds = len(loso_folds(speakers))
    jobs = [(v, k, args, runs_dir) for v in args.variants for k in range(n_folds)
            if not (runs_dir / f'{v}_{loso_folds(speakers)[k][0]}.json').exists()]
    jobs += [(v, ('split', seed), args, runs_dir) for v in args.split_variants for seed in args.split_seeds
             if not (runs_dir / f'{v}_split_seed{seed}.json').exists()]
    print(f'{len(jobs)} runs to do')
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context('spawn')) if args.jobs > 1 \
            else contextlib.nullcontext() as pool:
        done = as_completed([pool.submit(run_one, j) for j in jobs]) if pool else (run_one(j) for j in jobs)
        for r in done:
            r = r.result() if pool else r
            s = fold_scores(r)
            print(f"{r['variant']}, speaker {r['speaker']}: {s['accuracy']:.1%} on {r['n_test']} clips, "
                  f"epoch {r['val_epoch']}, {r['seconds'] / 60:.1f} min", flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob('*.json'))]
    eg = egemaps_folds(args)
    # every sitting's command is kept: runs are completed or redone over several
    command = 'python bench/speakers.py ' + shlex.join(argv)
    commands = json.loads(out.read_text()).get('commands', []) if out.exists() else []
    record = dict(data=Path(args.data).name, label_names=corpus.labels, cpu=cpu_name(), epochs=args.epochs,
                  enrol=args.enrol, cnn_minutes=sum(r['seconds'] for r in runs) / 60,  # of one core, all runs
                  commands=commands + [command] * (command not in commands),
                  cnn=summary(runs, [f[0] for f in loso_folds(speakers)]), cnn_study_split=split_summary(runs),
                  egemaps={how: dict(folds=f, accuracy=seed_summary([x['accuracy'] for x in f]),
                                     uar=seed_summary([x['uar'] for x in f]),
                                     macro_f1=seed_summary([x['macro_f1'] for x in f]))
                           for how, f in eg.items() if how != 'study_split'},
                  egemaps_study_split=dict(runs=eg['study_split'],
                                           accuracy=seed_summary([x['accuracy'] for x in eg['study_split']])),
                  fusion=fusion(args, runs))
    write_atomic(out, json.dumps(record, indent=1))
    line = [Path(args.data).name, 'loso']
    for v, e in record['cnn'].items():
        a = e['rules']['best_val_acc']['accuracy']
        print(f"{v}: {a['mean']:.1%} [{a['lo']:.1%}, {a['hi']:.1%}] over {len(e['folds'])} folds; "
              + ', '.join(f"{rule} {e['rules'][rule]['accuracy']['mean']:.1%}" for rule in EPOCH_RULES))
        line += [v, f"{100 * a['mean']:.1f}"]
    for how, e in record['egemaps'].items():
        print(f"egemaps ({how} standardisation): {e['accuracy']['mean']:.1%} "
              f"[{e['accuracy']['lo']:.1%}, {e['accuracy']['hi']:.1%}]")
    line += ['egemaps', f"{100 * record['egemaps']['speaker']['accuracy']['mean']:.1f}"]
    fused = record['fusion']
    if 'accuracy' in fused:
        a = fused['accuracy']
        print(f"fusion (CNN {fused['variant']} + eGeMAPS per speaker): {a['mean']:.1%} [{a['lo']:.1%}, {a['hi']:.1%}], "
              f"weights {[f['w'] for f in fused['folds']]}; study's split "
              + ', '.join(f"{r['accuracy']:.1%} (w {r['w']})" for r in fused['study_split']))
        line += ['fusion', f"{100 * a['mean']:.1f}"]
    print(' '.join(line))


if __name__ == '__main__':
    main()
