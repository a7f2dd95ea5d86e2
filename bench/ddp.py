"""Data-parallel training on CPU cores: one process against two under torchrun, and batch norm per rank or synchronised.

For each seed, in turn (so that other load on the machine slows every arm alike), `ser-nbdev train --epochs E`:

- `1 process`: one process with as many torch threads as `--threads` (default: every core);
- `1 process, 1 thread`: one process with one thread (the yardstick for a thread's worth of work);
- `2 ranks`: `torchrun --standalone --nproc-per-node 2`, one thread each, the package's masked batch norm, which
  normalises each rank's batch by that rank's own statistics;
- `2 ranks, synced BN`: the same, with batch norm statistics (masked sums and counts) added up over the ranks in
  every training step, as torch's SyncBatchNorm does for unmasked batch norm (patched in here, not in the package).

Each run's epoch times come from its checkpoint's history (rank 0's: training plus validation); the speed-up is the
median epoch time of `1 process` over that of `2 ranks`, measured in the same invocation. Test accuracy per arm:
mean, standard deviation and standard error over the seeds. The last line reads `ddp speed-up <S>x`.

    python bench/ddp.py [--epochs 3] [--seeds 0 1 2 3 4] [--data PATH] [--out bench/results/ddp.json]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_name  # noqa: E402

BIN = Path(sys.executable).parent


def synced_forward(self, x, mask=None):
    "MaskedBatchNorm2d's training statistics from the masked sums and counts of every rank (differentiable)."
    import torch
    from torch import nn
    from torch.distributed.nn.functional import all_reduce  # differentiable: the backward adds up too
    if not self.training or mask is None:
        return nn.BatchNorm2d.forward(self, x)
    xm = x * mask
    k = x.shape[1]
    n_local = (mask.sum() * x.shape[2]).reshape(1).to(x.dtype)
    s = all_reduce(torch.cat([xm.sum((0, 2, 3)), (xm * xm).sum((0, 2, 3)), n_local]))
    n = s[2 * k]
    mean = s[:k] / n
    var = (s[k:2 * k] / n - mean * mean).clamp_min(0)
    with torch.no_grad():
        self.running_mean.lerp_(mean, self.momentum)
        self.running_var.lerp_(var * n / (n - 1), self.momentum)
        self.num_batches_tracked += 1
    scale = self.weight * torch.rsqrt(var + self.eps)
    return torch.addcmul((self.bias - mean * scale)[:, None, None], x, scale[:, None, None])


def worker(argv: list[str]) -> int:
    "Under torchrun: the package's train command, with synchronised batch norm patched in."
    from ser_nbdev.cli import main
    from ser_nbdev.models import MaskedBatchNorm2d
    MaskedBatchNorm2d.forward = synced_forward
    return main(argv)


def run(arm: str, train: list[str], out: Path, threads: int) -> dict:
    "One training run of `arm`; its test accuracy, epoch times and wall time."
    env = dict(os.environ, OMP_NUM_THREADS='1' if arm != '1 process' else str(threads))
    ser = [str(BIN / 'ser-nbdev')]
    cmd = {'1 process': ser, '1 process, 1 thread': ser,
           '2 ranks': [str(BIN / 'torchrun'), '--standalone', '--nproc-per-node', '2', *ser],
           '2 ranks, synced BN': [str(BIN / 'torchrun'), '--standalone', '--nproc-per-node', '2', __file__,
                                  '--worker']}[arm]
    start = time.perf_counter()
    subprocess.run([*cmd, 'train', *train, '--out', str(out), '--quiet', '--device', 'cpu'], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    from ser_nbdev.train import load_checkpoint
    ckpt = load_checkpoint(out / 'model.pt')
    return dict(test_acc=ckpt.metrics['test_accuracy'], world_size=ckpt.metrics.get('world_size', 1),
                seconds=ckpt.history['seconds'], wall=wall)


ARMS = ('1 process', '1 process, 1 thread', '2 ranks', '2 ranks, synced BN')


def main(argv=None) -> None:
    if argv is None and sys.argv[1:2] == ['--worker']:
        sys.exit(worker(sys.argv[2:]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--threads', type=int, default=os.cpu_count(), help="the single process's threads")
    p.add_argument('--data', help='corpus folder (default: the embedded synthetic corpus)')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'ddp.json'))
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    print(cpu_name())
    train = ['--epochs', str(args.epochs)] + (['--data', args.data] if args.data else [])
    runs = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for i, arm in enumerate(ARMS):
                out = Path(tmp) / f'{seed}_{i}'
                r = run(arm, train + ['--seed', str(seed)], out, args.threads)
                shutil.rmtree(out)
                runs[arm].append(dict(seed=seed, **r))
                print(f"seed {seed} {arm}: test accuracy {r['test_acc']:.3f}, epochs {np.round(r['seconds'], 2)} s, "
                      f"wall {r['wall']:.1f} s")
    summary = {}
    for arm, rs in runs.items():
        acc = np.array([r['test_acc'] for r in rs])
        summary[arm] = dict(acc_mean=float(acc.mean()), acc_sd=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                            acc_se=float(acc.std(ddof=1) / np.sqrt(len(acc))) if len(acc) > 1 else 0.0,
                            epoch_s=float(np.median([s for r in rs for s in r['seconds']])),
                            wall_s=float(np.median([r['wall'] for r in rs])))
        print(f"{arm}: accuracy {summary[arm]['acc_mean']:.3f} (SD {summary[arm]['acc_sd']:.3f}, "
              f"SE {summary[arm]['acc_se']:.3f}), epoch {summary[arm]['epoch_s']:.2f} s")
    speedup = summary['1 process']['epoch_s'] / summary['2 ranks']['epoch_s']
    record = dict(cpu=cpu_name(), epochs=args.epochs, seeds=args.seeds, threads=args.threads,
                  data=args.data or 'embedded', load_average=os.getloadavg(), summary=summary, runs=runs,
                  speedup=speedup,
                  speedup_1thread=summary['1 process, 1 thread']['epoch_s'] / summary['2 ranks']['epoch_s'],
                  command=' '.join(['python', 'bench/ddp.py', *(argv if argv is not None else sys.argv[1:])]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f'ddp speed-up {speedup:.2f}x')


if __name__ == '__main__':
    main()
