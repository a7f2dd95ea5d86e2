"""The machine a benchmark ran on, for its record (timings depend on the CPU, so every record names it), and the
start every corpus benchmark shares."""
import argparse
import os
import platform
import sys


def cpu_name() -> str:
    "The CPU's model name (from /proc/cpuinfo on Linux, else what `platform` knows) and its core count."
    try:
        with open('/proc/cpuinfo') as f:
            name = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f'{name}, {os.cpu_count()} cores'


def corpus_args(p: argparse.ArgumentParser, argv: tuple[str, ...]) -> argparse.Namespace:
    "Parse `argv`, insist on --data, print line by line, and give torch the --threads asked for."
    import torch  # on use: cpu_name alone should not pay for torch
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if not args.data:
        p.error('give the corpus folder with --data PATH (or set SER_NBDEV_AESDD)')
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
