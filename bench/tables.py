"""The home page's results tables, with 95% intervals, computed from the AESDD records in bench/results/.

    python bench/tables.py

Seed split (the study's 80/20 split, k seeds, one test set of n clips): the mean accuracy p over seeds, and
p +- 1.96 * sqrt(s^2 / k + p (1 - p) / n) (`ser_nbdev.experiments.split_interval`, chapter 09), where s^2 is the
variance over seeds (training noise, averaged over k runs) and p (1 - p) / n the binomial variance of a test set of n
clips (shared by every seed, so not divided by k).
Leave one speaker out (one run per speaker): the mean over the folds, +- t(0.975, folds - 1) * sd / sqrt(folds), and
the range over speakers. The rows of chapter 11 come from bench/speakers.py, and the fused recipe from bench/aesdd.py
--recipe fused (aesdd_fused.json at 60 epochs, aesdd_fused_e120.json at 120); a cell whose runs are not finished reads
'not yet run'.
"""
import json
from pathlib import Path

import numpy as np
from scipy import stats

from ser_nbdev.experiments import split_interval

RESULTS = Path(__file__).resolve().parent / 'results'
STUDY_BEST = 74.38  # the study's report, its summary table: 3 layers, batch size 1, chosen on the test set
ROWS = (("the study's 3-layer network in length buckets with batch norm (60 epochs), chosen on validation",
         'aesdd_study.json'),
        ("this package's recipe (chapter 08), chosen on validation", 'aesdd.json'))


def loso_interval(per_speaker: list[float]) -> tuple[float, float]:
    "Mean accuracy over leave-one-speaker-out folds and the half-width of its 95% t-interval."
    a = np.asarray(per_speaker, float)
    return float(a.mean()), float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))


def row(name: str, record: dict) -> str:
    "One markdown row: seed-split and LOSO accuracy with 95% intervals."
    p, h = split_interval(record['seed_split_acc'], record['runs'][0]['n_test'])
    speakers = list(record['loso_per_speaker'].values())
    q, g = loso_interval(speakers)
    return (f"| {name} | {100 * p:.1f}% +- {100 * h:.1f} ({len(record['seed_split_acc'])} seeds) "
            f"| {100 * q:.1f}% +- {100 * g:.1f} ({100 * min(speakers):.0f}% to {100 * max(speakers):.0f}% by speaker) |")


def cell(accs: list[float] | None, n_test: int = 121) -> str:
    "A seed-split cell: mean and 95% half-width over seeds and test clips, or 'not yet run'."
    if not accs:
        return 'not yet run'
    p, h = split_interval(accs, n_test)
    return f"{100 * p:.1f}% +- {100 * h:.1f} ({len(accs)} seed{'s' * (len(accs) > 1)})"


def loso_cell(folds: list[dict] | None) -> str:
    "A leave-one-speaker-out cell: mean, 95% t half-width, and the range over speakers."
    if not folds:
        return 'not yet run'
    acc = [f['accuracy'] for f in folds]
    q, g = loso_interval(acc)
    return f'{100 * q:.1f}% +- {100 * g:.1f} ({100 * min(acc):.0f}% to {100 * max(acc):.0f}% by speaker)'


def speaker_rows(record: dict) -> list[str]:
    "Chapter 11's rows (bench/speakers.py): the recipe with and without speaker normalisation, eGeMAPS, both fused."
    cnn, split = record['cnn'], record.get('cnn_study_split', {})
    return [
        f"| this package's recipe, 60 epochs; new speakers: epoch chosen on other speakers (chapter 11) "
        f"| {cell(split.get('none', {}).get('accs'))} | {loso_cell(cnn.get('none', {}).get('folds'))} |",
        f"| the same on speaker-normalised log-Mels (chapter 11) "
        f"| {cell(split.get('unlabelled', {}).get('accs'))} | {loso_cell(cnn.get('unlabelled', {}).get('folds'))} |",
        f"| eGeMAPS + logistic regression, standardised per speaker (chapter 11) "
        f"| {cell([r['accuracy'] for r in record['egemaps_study_split']['runs']])} "
        f"| {loso_cell(record['egemaps']['speaker']['folds'])} |",
        f"| both fused: the two rows above, their weight chosen on validation (chapter 11) "
        f"| {cell([r['accuracy'] for r in record.get('fusion', {}).get('study_split', [])])} "
        f"| {loso_cell(record.get('fusion', {}).get('folds'))} |"]


def main() -> None:
    print('| AESDD, five emotions | study split: 121 test clips | leave one speaker out: 6 folds |')
    print('|---|---|---|')
    print(f'| the study\'s best epoch, chosen on the test set (its report) | {STUDY_BEST}% | not run |')
    for name, file in ROWS:
        print(row(name, json.loads((RESULTS / file).read_text())))
    for line in speaker_rows(json.loads((RESULTS / 'speakers_aesdd.json').read_text())):
        print(line)
    print(row("the same fused recipe rerun from the library (`bench/aesdd.py --recipe fused --epochs 60`, another CPU)",
              json.loads((RESULTS / 'aesdd_fused.json').read_text())))
    if (RESULTS / 'aesdd_fused_e120.json').exists():
        print(row("the fused recipe at the recipe's own 120 epochs (`bench/aesdd.py --recipe fused`)",
                  json.loads((RESULTS / 'aesdd_fused_e120.json').read_text())))
    if (RESULTS / 'aesdd_fused_m3.json').exists():
        print(row("the fused recipe at 60 epochs, three networks averaged (chapter 11, `--models 3`)",
                  json.loads((RESULTS / 'aesdd_fused_m3.json').read_text())))
    print()
    study_table(json.loads((RESULTS / 'study_table_aesdd.json').read_text()))


def study_table(record: dict) -> None:
    "The study's six rows rerun (bench/study_table.py): its report, honest and test-selected accuracy, both 95%."
    print("| the study's row | its report (chosen on the test set) | rerun, chosen on validation "
          "| rerun, chosen on the test set |")
    print('|---|---|---|---|')
    for e in record['rows']:
        if not e['seeds']:
            print(f"| {e['name']} | {e['study']:.2f}% | not yet run | not yet run |")
            continue
        runs = f"({len(e['seeds'])} seed{'s' * (len(e['seeds']) > 1)})"
        print(f"| {e['name']} | {e['study']:.2f}% | {e['honest']['mean']:.1f}% +- {e['honest']['half_width']:.1f} "
              f"{runs} | {e['test_selected']['mean']:.1f}% +- {e['test_selected']['half_width']:.1f} |")


if __name__ == '__main__':
    main()
