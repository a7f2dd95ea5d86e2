"""Speed of the log-Mel features, in audio-seconds per wall-second; both sides measured in one run, interleaved.

1. Features only, on the same waveforms (loaded at `FeatureConfig().sr`): librosa clip by clip
   (`ser_nbdev.mel.log_mel`) against the batched extractor (`ser_nbdev.features.extract`), with the largest
   |dB difference| between them.
2. End to end, from the audio files: the study's pipeline (load at the native rate, noisereduce's default
   non-stationary gating with `y_noise=y[:sr]`, librosa Mel at that rate, `power_to_db(ref=np.max)`) against the
   package's default (`corpus_features` into an empty cache: load at 22.05 kHz, the 'quiet' denoiser, extract,
   cache write), plus where each pipeline spends its CPU time (one process, one thread, every 4th clip).

Runs on the embedded corpus, and on AESDD when `--data PATH` or `SER_NBDEV_AESDD` is given. A benchmark, not a test;
the machine may be shared, so compare ratios from one run. The last line reads
`speedup <R>x max_abs_db_diff <D> e2e_speedup <E>x` (R and E from AESDD when given, else the embedded corpus; D the
largest over all corpora).

    python bench/features.py [--data PATH] [--workers 2]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import librosa
import noisereduce as nr
import numpy as np
import torch

from ser_nbdev.data import Corpus, load_audio, load_corpus
from ser_nbdev.denoise import denoise
from ser_nbdev.features import cache_key, corpus_features, extract, preprocess
from ser_nbdev.mel import FeatureConfig, log_mel


def study_pipeline(path: Path) -> np.ndarray:
    "The study's preprocessing and features, call for call."
    y, sr = librosa.load(path, sr=None)
    y = nr.reduce_noise(y=y, sr=sr, y_noise=y[:sr])   # non-stationary by default: y_noise is ignored
    M = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128, fmax=8000)
    return librosa.power_to_db(M, ref=np.max)


def chunks(n: int, k: int) -> list[np.ndarray]:
    "k interleaved index chunks of range(n), so every chunk mixes short and long clips."
    return [np.arange(i, n, k) for i in range(k)]


def timed(fn, *args, clock=time.perf_counter):
    t = clock()
    out = fn(*args)
    return out, clock() - t


def cpu_timed(fn, *args):
    "Like `timed`, in CPU seconds of this process: a per-stage breakdown that other load on the machine hardly moves."
    return timed(fn, *args, clock=time.process_time)


def bench_features(ys: list[np.ndarray], cfg: FeatureConfig, device: str, k: int = 6) -> tuple[float, float, float]:
    "librosa clip by clip vs extract on the same waveforms, interleaved in k chunks: (librosa s, extract s, max |dB|)."
    log_mel(ys[0], cfg), extract(ys[:2], cfg, device=device)   # warm-up: imports, FFT plans, thread pools
    t_lib = t_ext = worst = 0.0
    for j, idx in enumerate(chunks(len(ys), k)):
        part = [ys[i] for i in idx]
        order = (0, 1) if j % 2 == 0 else (1, 0)
        for side in order:
            if side == 0:
                ref, dt = timed(lambda: [log_mel(y, cfg) for y in part])
                t_lib += dt
            else:
                out, dt = timed(extract, part, cfg, device)
                t_ext += dt
        worst = max(worst, max(float(np.abs(a - b).max()) for a, b in zip(ref, out)))
    return t_lib, t_ext, worst


def bench_e2e(corpus: Corpus, cfg: FeatureConfig, workers: int, k: int = 3) -> tuple[float, float]:
    "Study pipeline over k chunks with a full package run (empty cache) between consecutive chunks: (study s, package s)."
    t_study, t_pkg = 0.0, []
    parts = chunks(len(corpus), k)
    for j, idx in enumerate(parts):
        t_study += timed(lambda: [study_pipeline(corpus.clips[i].path) for i in idx])[1]
        if j < len(parts) - 1:
            with tempfile.TemporaryDirectory() as cache:
                t_pkg.append(timed(corpus_features, corpus, cfg, cache, None, False, workers)[1])
    return t_study, float(np.mean(t_pkg))


def stages(corpus: Corpus, cfg: FeatureConfig, step: int = 4) -> tuple[dict, dict]:
    "CPU seconds per stage on every step-th clip, one process, one thread: the study's and the package's pipelines."
    study, pkg = dict(load=0.0, noisereduce=0.0, features=0.0), dict(hash=0.0, load=0.0, denoise=0.0, extract=0.0)
    ys = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    study_pipeline(corpus.clips[0].path), extract([preprocess(corpus.clips[0].path, cfg)], cfg)   # lazy imports, JIT
    for c in corpus.clips[::step]:
        (y, sr), dt = cpu_timed(lambda: librosa.load(c.path, sr=None))
        study['load'] += dt
        y, dt = cpu_timed(lambda: nr.reduce_noise(y=y, sr=sr, y_noise=y[:sr]))
        study['noisereduce'] += dt
        study['features'] += cpu_timed(lambda: librosa.power_to_db(librosa.feature.melspectrogram(
            y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128, fmax=8000), ref=np.max))[1]
        pkg['hash'] += cpu_timed(cache_key, c.path, cfg)[1]
        (y, sr), dt = cpu_timed(load_audio, c.path, cfg.sr)
        pkg['load'] += dt
        y, dt = cpu_timed(lambda: denoise(y, sr, method=cfg.denoise))
        pkg['denoise'] += dt
        ys.append(y)
    pkg['extract'] = cpu_timed(extract, ys, cfg)[1]
    torch.set_num_threads(threads)
    return study, pkg


def report_stages(name: str, t: dict, audio_s: float) -> None:
    total = sum(t.values())
    parts = ', '.join(f'{k} {1000 * v / audio_s:.2f} ({v / total:.0%})' for k, v in t.items())
    print(f'  cpu       {name}: {1000 * total / audio_s:.2f} ms per audio-s = {parts}')


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'), help='AESDD folder (default $SER_NBDEV_AESDD)')
    p.add_argument('--workers', type=int, default=2, help='preprocessing processes of the package pipeline')
    p.add_argument('--no-e2e', action='store_true', help='only the feature step')
    args = p.parse_args(argv)
    cfg = FeatureConfig()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; '
          f'librosa {librosa.__version__}; cfg {cfg}')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    corpora = [('embedded', load_corpus())] + ([('aesdd', load_corpus(args.data))] if args.data else [])
    worst, final = 0.0, {}
    for name, corpus in corpora:
        audio_s = float(sum(corpus.column('duration')))
        print(f'corpus {name}: {len(corpus)} clips, {audio_s:.1f} audio-s')
        ys = [load_audio(c.path, sr=cfg.sr)[0] for c in corpus.clips]
        feat_s = sum(len(y) for y in ys) / cfg.sr
        for device in devices:
            t_lib, t_ext, diff = bench_features(ys, cfg, device)
            worst = max(worst, diff)
            print(f'  features  librosa {feat_s / t_lib:.0f} audio-s/s | extract ({device}) {feat_s / t_ext:.0f} '
                  f'audio-s/s | speedup {t_lib / t_ext:.2f}x | max_abs_db_diff {diff:.1e}')
            if device == 'cpu':
                final[name] = dict(speedup=t_lib / t_ext)
        del ys
        if args.no_e2e:
            continue
        t_study, t_pkg = bench_e2e(corpus, cfg, args.workers)
        print(f'  e2e       study {audio_s / t_study:.1f} audio-s/s | package ({args.workers} workers) '
              f'{audio_s / t_pkg:.1f} audio-s/s | e2e_speedup {t_study / t_pkg:.2f}x')
        final[name]['e2e'] = t_study / t_pkg
        study, pkg = stages(corpus, cfg)
        sub_s = float(sum(corpus.column('duration')[::4]))
        report_stages('study  ', study, sub_s)
        report_stages('package', pkg, sub_s)
        print(f'  cpu       package/study: {sum(study.values()) / sum(pkg.values()):.1f}x less CPU per audio-second')
    last = final[corpora[-1][0]]
    e2e = f"{last['e2e']:.1f}x" if 'e2e' in last else 'n/a'
    print(f"speedup {last['speedup']:.1f}x max_abs_db_diff {worst:.1e} e2e_speedup {e2e}")


if __name__ == '__main__':
    main()
