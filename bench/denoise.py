"""Speed and quality of the denoising methods of ser_nbdev.denoise, in one run.

Times every method on the same synthetic clips (the study's call at 44.1 kHz, as the study ran it, and each method at
the package's 22.05 kHz), single process, best of `--repeats` runs, and scores each against the clips' known clean
speech. The chapter nbs/02_denoise.ipynb quotes the ratios this prints; its last line reads
`quiet_vs_study44 <R>x quiet_vs_stationary <S>x snr_quiet <Q> dB snr_study44 <T> dB`.

Before it, the default gate two ways on one thread, alternating pass by pass so that both see the same load: the
chapter's `spectral_gate` and `fast_spectral_gate` (appendix A02), which `denoise(y, sr)` runs. That line reads
`fast_gate_vs_spectral_gate <F>x (<A> -> <B> ms per audio-s, one thread, largest sample difference <D>)`.

    .venv/bin/python bench/denoise.py               # 30 clips, about a minute on one core
    .venv/bin/python bench/denoise.py --clips 10 --repeats 1
"""
import argparse, time

import noisereduce
import numpy as np

from threadpoolctl import threadpool_limits

from ser_nbdev.denoise import denoise, fast_spectral_gate, snr_db, spectral_gate
from ser_nbdev.synth import EMOTIONS, synth_utterance


def best_time(fn, clips, repeats: int) -> tuple[float, list]:
    "Fastest wall time over `repeats` passes of `fn` over all clips, and the outputs of the last pass."
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = [fn(c) for c in clips]
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--clips', type=int, default=30, help='number of clips (cycling over emotions and 6 speakers)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--gate-repeats', type=int, default=11, help='alternating passes of the two gates')
    a = p.parse_args(argv)
    ids = [(e, s) for s in range(1, 7) for e in EMOTIONS][:a.clips]
    clips = {sr: [synth_utterance(e, s, 1, sr=sr) for e, s in ids] for sr in (44100, 22050)}
    methods = {
        'study (non-stationary, y_noise=y[:sr]) @ 44.1 kHz': (44100, lambda c: denoise(c.y, c.sr, 'study')),
        'study (non-stationary, y_noise=y[:sr]) @ 22.05 kHz': (22050, lambda c: denoise(c.y, c.sr, 'study')),
        'noisereduce stationary, first second @ 22.05 kHz': (22050, lambda c: noisereduce.reduce_noise(
            y=c.y, sr=c.sr, stationary=True, y_noise=c.y[:c.sr])),
        "spectral_gate, true noise @ 22.05 kHz": (22050, lambda c: spectral_gate(c.y, c.sr, y_noise=c.noise)),
        "'quiet' (package default) @ 22.05 kHz": (22050, lambda c: denoise(c.y, c.sr, 'quiet')),
    }
    audio_s = sum(len(c.y) / c.sr for c in clips[22050])
    print(f'{len(ids)} clips, {audio_s:.0f} s of audio; wall time, one process, best of {a.repeats}')
    print(f'{"method":52s} {"audio-s/s":>10s} {"ms per audio-s":>15s} {"SNR":>8s}')
    rate, snr = {}, {}
    for name, (sr, fn) in methods.items():
        t, out = best_time(fn, clips[sr], a.repeats)
        rate[name] = audio_s / t
        snr[name] = np.mean([snr_db(c.clean, o) for c, o in zip(clips[sr], out)])
        print(f'{name:52s} {rate[name]:10.0f} {1000 / rate[name]:15.2f} {snr[name]:5.1f} dB')
    gates, outs = {spectral_gate: np.inf, fast_spectral_gate: np.inf}, {}
    with threadpool_limits(1):   # one thread: the FFTs and numpy's math, whatever the machine offers
        for _ in range(a.gate_repeats):   # alternate, so that a busy machine slows both alike
            for gate in gates:
                t0 = time.perf_counter()
                outs[gate] = [gate(c.y, c.sr) for c in clips[22050]]
                gates[gate] = min(gates[gate], time.perf_counter() - t0)
    diff = max(np.abs(x - z).max() for x, z in zip(outs[spectral_gate], outs[fast_spectral_gate]))
    slow, fast = (1000 * gates[g] / audio_s for g in (spectral_gate, fast_spectral_gate))
    print(f'fast_gate_vs_spectral_gate {slow / fast:.2f}x ({slow:.2f} -> {fast:.2f} ms per audio-s, one thread, '
          f'largest sample difference {diff:.0e})')
    quiet, study44 = "'quiet' (package default) @ 22.05 kHz", 'study (non-stationary, y_noise=y[:sr]) @ 44.1 kHz'
    stat = 'noisereduce stationary, first second @ 22.05 kHz'
    print(f'quiet_vs_study44 {rate[quiet] / rate[study44]:.1f}x quiet_vs_stationary {rate[quiet] / rate[stat]:.1f}x '
          f'snr_quiet {snr[quiet]:.1f} dB snr_study44 {snr[study44]:.1f} dB')


if __name__ == '__main__':
    main()
