"""What normalisation costs a training step: none, masked batch and group norm, and torch's unmasked ones.

One training step (forward, backward, Adam) of `BandCNN` on a padded batch shaped like an AESDD bucket (8 clips of
128 Mel bands and 169-180 frames, random values: the cost depends on shapes only), timed for each network in turn,
round after round, so that other load slows all of them alike. torch's `BatchNorm2d` and `F.group_norm` count the
padding in their statistics (so a padded batch no longer trains as its clips would alone) and are only the yardsticks
for how much the masking itself costs. A benchmark, not a test. The last line reads `batchnorm masked <M>x torch
<T>x` (each step's median time over the step without normalisation); the line before it gives group norm's.

    python bench/batchnorm.py [--threads 1] [--steps 20] [--rounds 3]
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn

from ser_nbdev.models import BandCNN


def unmasked(model: BandCNN) -> BandCNN:
    "The same network with torch's own batch norm, statistics over every position, padding included."
    for bn in model.norms:
        bn.forward = lambda x, mask=None, bn=bn: nn.BatchNorm2d.forward(bn, x)
    return model


def unmasked_gn(model: BandCNN) -> BandCNN:
    "The same network with torch's own group norm, statistics over every position of each clip, padding included."
    for gn in model.norms:
        gn.forward = lambda x, mask=None, gn=gn: nn.GroupNorm.forward(gn, x)
    return model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--steps', type=int, default=20, help='timed steps per network and round')
    p.add_argument('--rounds', type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(8, 1, 128, 180)
    lengths = torch.tensor([180, 178, 176, 175, 174, 172, 170, 169])
    nets = {'no norm': BandCNN(5, batch_norm=False), 'masked batch norm': BandCNN(5, batch_norm=True),
            'torch batch norm': unmasked(BandCNN(5, batch_norm=True)),
            'masked group norm': BandCNN(5, group_norm=True),
            'torch group norm': unmasked_gn(BandCNN(5, group_norm=True))}
    opts = {k: torch.optim.Adam(m.parameters()) for k, m in nets.items()}
    times = {k: [] for k in nets}
    for r in range(args.rounds + 1):  # round 0 warms up oneDNN's kernels
        for k, m in nets.items():
            m.train()
            for _ in range(args.steps):
                start = time.perf_counter()
                opts[k].zero_grad()
                m(x, lengths).sum().backward()
                opts[k].step()
                if r:
                    times[k].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f'BandCNN, batch of 8 x 128 bands x 169-180 frames, {torch.get_num_threads()} CPU threads, '
          f'median of {args.rounds} x {args.steps} steps')
    for k, v in med.items():
        print(f'{k:<18} {1000 * v:7.1f} ms/step {v / med["no norm"]:6.2f}x')
    print(f"groupnorm masked {med['masked group norm'] / med['no norm']:.2f}x "
          f"torch {med['torch group norm'] / med['no norm']:.2f}x")
    print(f"batchnorm masked {med['masked batch norm'] / med['no norm']:.2f}x "
          f"torch {med['torch batch norm'] / med['no norm']:.2f}x")


if __name__ == '__main__':
    main()
