"""Honest test accuracy of the same model with and without on-the-fly augmentation, mean over seeds.

Both arms train the same CNN (`TrainConfig` defaults unless told otherwise) on the study's split (80/20 stratified,
`random_state=42`) with validation carved from the training part (15%, per seed), keep the epoch chosen on validation
and score the test set once (`ser_nbdev.experiments.run_experiment`). The augmented arm passes
`augment=Augmenter(transforms=...)` (chapter 07): fresh random transforms, each with probability 0.6, on every
training batch; `--transforms` picks them from a Mel shift, noise, a frequency mask and a time mask (default: time
masks only), and `--mixup ALPHA` also trains that arm on mixup's blends of clip pairs and their labels (chapter 08;
default 0.2; `--transforms` with no names: mixup alone; `--mixup 0`: transforms alone). The defaults, and the recipe's
120 epochs, are the choice made for the package's network on validation clips by `bench/recipe.py` and this script's
validation scores, never on test clips (chapter 07). Validation and test clips are never augmented. `--ablation` runs
chapter 07's ablation of all four instead of the two arms: each transform alone, all but each, and the study's masks
filled with the loudest value. `--tenfold` runs the study's rows instead: no augmentation, ten offline copies made the
study's way, ten made right, trained the study's way (`--rows` picks some of them; `--rows study_copies_only` trains on
the study's copies without the clips themselves, its own tenfold set). Runs on the embedded corpus, or
any corpus the loaders read with `--data PATH`. A benchmark, not a test. The last line reads `augment_gain <G>
acc_plain <A> acc_augmented <B>` (G in points, A and B in percent), or with `--tenfold` `tenfold acc_plain <A>
acc_study_copies <S> acc_right_copies <R>`.

    python bench/augment.py [--data PATH] [--seeds 0 1 2] [--model bands] [--transforms time ...]
                            [--mixup A] [--epochs N]
    python bench/augment.py --ablation [--data PATH]
    python bench/augment.py --tenfold --strategy bs1|resized --layers 4 --lr 1e-3 --epochs 30 [--data PATH]
                            [--rows plain study_copies right_copies study_copies_only]

The target's record is `augment_aesdd_mixup_e120.json` (the defaults). Older records repeat with `--mixup 0` and:
`augment_aesdd.json` (time masks alone) `--epochs 60`; `augment_aesdd_mixup.json` `--epochs 60 --mixup 0.2`; made
before the package's recipe became the default (`augment_aesdd_e30.json`, `augment_aesdd_e60.json`,
`augment_ablation_embedded.json`), `--model study --no-batch-norm --schedule constant --lr 1e-3 --patience 10
--transforms shift noise freq time` and the `--epochs` their commands give; `augment_aesdd_study.json` (made before
`BandCNN` became the default) `--model study --transforms shift noise freq time --epochs 60`. The tenfold records,
`augment_tenfold_<corpus>_<strategy>[_seed<N>].json`, are one seed each (`--seeds N`, as their commands say);
`augment_tenfold_aesdd_bs1_plain330.json` is the plain row trained as many steps as a tenfold run (`--rows plain
--epochs 330`).
"""
import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from ser_nbdev.augment import TRANSFORMS, Augmenter, ablation_augmenters, augment_table
from ser_nbdev.experiments import compare_augment, corpus_data, expanded_experiment, run_experiment, write_atomic
from ser_nbdev.train import STUDY_RECIPE, TrainConfig


# --rows names -> the rows' names in the table and the record
TENFOLD_ROWS = {'plain': 'none', 'study_copies': '10x study copies', 'right_copies': '10x right copies',
                'study_copies_only': '10x study copies only'}


def main(argv=None) -> None:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', help='corpus folder (default: the embedded synthetic corpus)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='seeds; accuracy is their mean')
    p.add_argument('--epochs', type=int, default=d.epochs,
                   help='at most this many epochs per run (default: %(default)s)')
    p.add_argument('--patience', type=int, default=d.patience,
                   help='stop after this many epochs without a better validation score (0: never)')
    p.add_argument('--model', default=d.model, choices=['bands', 'study'], help='the network (default: %(default)s)')
    p.add_argument('--layers', type=int, default=d.layers)
    p.add_argument('--transforms', nargs='*', default=['time'], choices=list(TRANSFORMS),
                   help="the augmented arm's transforms (default: time, chosen on validation); none: mixup alone")
    p.add_argument('--mixup', type=float, default=0.2, metavar='ALPHA',
                   help="the augmented arm also trains on mixup's blends, weight ~ Beta(ALPHA, ALPHA) (default: "
                        '%(default)s, chosen on validation; 0: off)')
    p.add_argument('--lr', type=float, default=d.lr)
    p.add_argument('--strategy', default='bucketed', choices=['bs1', 'resized', 'bucketed'])
    p.add_argument('--batch-norm', action=argparse.BooleanOptionalAction, default=d.batch_norm)
    p.add_argument('--schedule', default=d.schedule, choices=['cosine', 'constant'])
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--ablation', action='store_true', help='each transform alone and all but each, too')
    p.add_argument('--tenfold', action='store_true',
                   help="the study's rows instead: no augmentation, 10 copies the study's way, 10 copies done right "
                        "(offline), trained the study's way (STUDY_RECIPE); give --strategy, --layers, --lr, --epochs")
    p.add_argument('--rows', nargs='+', choices=list(TENFOLD_ROWS), default=['plain', 'study_copies', 'right_copies'],
                   help='with --tenfold: which of its rows to run (default: the first three)')
    p.add_argument('--out', default=None, help='JSON record (default: bench/results/augment[_ablation|_tenfold].json)')
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    name = torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or platform.machine()
    print(f'device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    data = corpus_data(args.data)
    net = "the study's training" if args.tenfold else args.model
    print(f"data: {args.data or 'embedded corpus'}: {len(data[0])} clips, {len(data[2])} classes; "
          f'{args.strategy}, {net}, {args.layers} layers, lr {args.lr:g}, at most {args.epochs} epochs, '
          f'seeds {args.seeds}')

    augmenter = Augmenter(transforms=tuple(args.transforms))
    run_kw = dict(seeds=args.seeds, progress=True, strategy=args.strategy, model=args.model, layers=args.layers,
                  lr=args.lr, epochs=args.epochs, patience=args.patience, batch_norm=args.batch_norm,
                  schedule=args.schedule)
    if args.tenfold:
        run_kw |= STUDY_RECIPE
        runners = {'plain': (run_experiment, {}), 'study_copies': (expanded_experiment, {}),
                   'right_copies': (expanded_experiment, dict(transform=Augmenter().clip)),
                   'study_copies_only': (expanded_experiment, dict(originals=False))}  # the study's own set
        runs = {}
        for row in args.rows:
            runner, kw = runners[row]
            runs |= compare_augment({TENFOLD_ROWS[row]: None}, data, runner=runner, **run_kw, **kw)
    elif args.ablation:
        runs = compare_augment(ablation_augmenters(), data, **run_kw)
    else:  # mixup is a training setting, so the augmented arm alone gets it
        runs = (compare_augment({'none': None}, data, **run_kw)
                | compare_augment({'all': augmenter if args.transforms else None}, data, **run_kw, mixup=args.mixup))
    print(augment_table(runs))

    acc = {k: 100 * float(np.mean([r['test_acc'] for r in rs])) for k, rs in runs.items()}
    mode = '_tenfold' if args.tenfold else '_ablation' if args.ablation else ''
    out = Path(args.out or Path(__file__).parent / 'results' / f'augment{mode}.json')
    keep = ('seed', 'epochs', 'best_epoch', 'val_acc', 'test_acc', 'test_uar', 'test_macro_f1', 'n_train', 'n_val',
            'n_test', 'seconds_per_epoch', 'confusion')
    record = dict(device=f'{device} ({name})', torch=torch.__version__, threads=torch.get_num_threads(),
                  data=args.data or 'embedded',
                  **{k: v for k, v in run_kw.items() if k != 'progress'},
                  augmenter=None if args.tenfold or not args.transforms else repr(augmenter),
                  mixup=None if args.tenfold or args.ablation else args.mixup,
                  test_acc_mean=acc,
                  runs={k: [{f: r[f] for f in keep} for r in rs] for k, rs in runs.items()},
                  commands=['python bench/augment.py ' + shlex.join(sys.argv[1:] if argv is None else argv)])
    write_atomic(out, json.dumps(record, indent=1))
    if args.tenfold:
        print('tenfold ' + ' '.join(f'acc_{row} {acc[TENFOLD_ROWS[row]]:.1f}' for row in args.rows))
    else:
        print(f"augment_gain {acc['all'] - acc['none']:.1f} acc_plain {acc['none']:.1f} acc_augmented {acc['all']:.1f}")


if __name__ == '__main__':
    main()
