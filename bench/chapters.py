"""CPU seconds each chapter needs under `nbdev-test` (slow cells excluded), and the README's `ser-nbdev demo`.

Runs the chapters one after another, in order, as a learner reads them, with the feature cache in a fresh temporary
folder (`SER_NBDEV_CACHE`), so a chapter that computes features pays for them once, where a learner would. Counts
user + system time of the `nbdev-test` process and its children; run it on an otherwise idle machine. Then it times
the README's main job, `ser-nbdev demo`, with another empty cache, in a temporary folder. Writes
`bench/results/chapters.json` (atomically) with the command. The chapters write their figures to plots/ as they
run, so a figure whose training ran on another thread count may change there. A benchmark, not a test.

    python bench/chapters.py [NOTEBOOK ...]
"""
import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ser_nbdev.features import atomic_file

from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent


def run_timed(cmd: list[str], **kw) -> dict:
    "Run `cmd`; its CPU (user + system, children included) and wall seconds. Exits naming it if it fails."
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        sys.exit(f'{shlex.join(cmd)} failed:\n{r.stderr[-2000:]}')
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return dict(cpu_seconds=round(cpu, 1), wall_seconds=round(time.perf_counter() - start, 1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='*', help='default: every chapter in nbs/ but the index')
    p.add_argument('--out', default=str(ROOT / 'bench' / 'results' / 'chapters.json'))
    args = p.parse_args(argv)
    notebooks = args.notebooks or sorted(str(f.relative_to(ROOT)) for f in (ROOT / 'nbs').glob('[0-9]*.ipynb'))
    nbdev_test = Path(sys.executable).with_name('nbdev-test')
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SER_NBDEV_CACHE=cache)
        for nb in notebooks:
            t = out[Path(nb).stem] = run_timed([str(nbdev_test), nb, '--n-workers', '0'], cwd=ROOT, env=env)
            print(f"{Path(nb).stem:<16} {t['cpu_seconds']:6.1f} s CPU {t['wall_seconds']:6.1f} s wall", flush=True)
        demo = run_timed([str(Path(sys.executable).with_name('ser-nbdev')), 'demo', '--quiet', '--out', 'demo'],
                         cwd=tempfile.mkdtemp(dir=cache), env=dict(env, SER_NBDEV_CACHE=tempfile.mkdtemp(dir=cache)))
        print(f"ser-nbdev demo   {demo['cpu_seconds']:6.1f} s CPU {demo['wall_seconds']:6.1f} s wall", flush=True)
    record = dict(chapters=out, demo=demo, cpu=cpu_name(),
                  commands=['python bench/chapters.py ' + shlex.join(sys.argv[1:] if argv is None else argv)])
    with atomic_file(args.out, 'w') as f:
        json.dump(record, f, indent=1)


if __name__ == '__main__':
    main()
