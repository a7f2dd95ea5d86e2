"""Speed of the log-Mel features, in audio-seconds per wall-second, and how close each stage comes to the machine's limit.

1. Features only, on the same waveforms (loaded at `FeatureConfig().sr`): librosa clip by clip
   (`ser_nbdev.mel.log_mel`) against the extractor (`ser_nbdev.features.extract`), with the largest
   |dB difference| between them.
2. End to end, from the audio files: the study's pipeline (load at the native rate, noisereduce's default
   non-stationary gating with `y_noise=y[:sr]`, librosa Mel at that rate, `power_to_db(ref=np.max)`) against the
   package's default (`corpus_features` into an empty cache beside the default cache folder: in `--workers`
   processes, each file loaded at 22.05 kHz, gated with the 'quiet' denoiser and extracted alone; the cache written
   by the main process).
3. The limit: microbenchmarks of what one core does (a 2048-point float64 FFT and a 256-point float32 FFT in torch and
   scipy, a float32 matrix product in torch and numpy, an in-cache copy), the work each stage of the package's
   pipeline must do per audio-second (counted below), and the stage's measured time on one core, one thread: the
   achieved fraction is (work at the measured rate) / (measured time).

Runs on the embedded corpus, and on AESDD when `--data PATH` or `SER_NBDEV_AESDD` is given. A benchmark, not a test;
the machine may be shared, so every comparison is within one run, interleaved, and 1 and 2 are repeated `--runs` times
(medians printed). The record goes to `--out` (default `bench/results/features_<corpus>.json` for the last corpus).
The last line reads `speedup <R>x max_abs_db_diff <D> e2e_speedup <E>x` (R and E the medians on AESDD when given,
else the embedded corpus; D the largest over all corpora and runs).

    python bench/features.py [--data PATH] [--workers 2] [--runs 3]
"""
import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import librosa
import noisereduce as nr
import numpy as np
import scipy.fft
import scipy.signal
import soxr
import torch
from threadpoolctl import threadpool_limits
from torch.profiler import ProfilerActivity, profile

from ser_nbdev.data import Corpus, decode_audio, load_audio, load_corpus
from ser_nbdev.denoise import denoise, gate_sizes
from ser_nbdev.features import (ENTRY_SUFFIX, _logmel, atomic_file, cache_key, corpus_features, default_cache_dir,
                                extract, mel_groups, save_entry)
from ser_nbdev.mel import FeatureConfig, log_mel, mel_filterbank

from machine import cpu_name

RESULTS = Path(__file__).resolve().parent / 'results'


def cpu_flags() -> list[str]:
    "The vector extensions the CPU reports (AVX, AVX2, AVX-512 ...), from /proc/cpuinfo."
    try:
        with open('/proc/cpuinfo') as f:
            flags = next(line.split(':', 1)[1].split() for line in f if line.startswith('flags'))
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f.startswith(('avx', 'fma', 'sse4')))


def study_pipeline(path: Path) -> np.ndarray:
    "The study's preprocessing and features, call for call."
    y, sr = librosa.load(path, sr=None)
    y = nr.reduce_noise(y=y, sr=sr, y_noise=y[:sr])   # non-stationary by default: y_noise is ignored
    M = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128, fmax=8000)
    return librosa.power_to_db(M, ref=np.max)


def cache_parent() -> Path:
    "Where the temporary caches go: beside the package's cache, on the file system a user's cache is written to."
    # not /tmp: on the development machine it creates a file in 0.3-0.4 ms, ten times slower than the rest of its disk
    parent = default_cache_dir().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def chunks(n: int, k: int) -> list[np.ndarray]:
    "k interleaved index chunks of range(n), so every chunk mixes short and long clips."
    return [np.arange(i, n, k) for i in range(k)]


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def best_time(fn, reps: int = 100) -> float:
    "Fastest of `reps` calls after a warm-up: what the core does when nothing interrupts it."
    fn()
    return min(timed(fn)[1] for _ in range(reps))


def settled(fn, *args):
    "`timed` after a pause: threads that the other side left spinning (BLAS, OpenMP) go idle and do not steal time."
    time.sleep(0.2)
    return timed(fn, *args)


def bench_features(ys: list[np.ndarray], cfg: FeatureConfig, device: str, k: int = 6) -> tuple[float, float, float]:
    "librosa clip by clip vs extract on the same waveforms, interleaved in k chunks: (librosa s, extract s, max |dB|)."
    log_mel(ys[0], cfg), extract(ys[:2], cfg, device=device)   # warm-up: imports, FFT plans, thread pools
    t_lib = t_ext = worst = 0.0
    for j, idx in enumerate(chunks(len(ys), k)):
        part = [ys[i] for i in idx]
        order = (0, 1) if j % 2 == 0 else (1, 0)
        for side in order:
            if side == 0:
                ref, dt = settled(lambda: [log_mel(y, cfg) for y in part])
                t_lib += dt
            else:
                out, dt = settled(extract, part, cfg, device)
                t_ext += dt
        worst = max(worst, max(float(np.abs(a - b).max()) for a, b in zip(ref, out)))
    return t_lib, t_ext, worst


def bench_e2e(corpus: Corpus, cfg: FeatureConfig, workers: int, k: int = 3) -> tuple[float, float]:
    "Study pipeline over k chunks with a full package run (empty cache) between consecutive chunks: (study s, package s)."
    t_study, t_pkg = 0.0, []
    parts = chunks(len(corpus), k)
    for j, idx in enumerate(parts):
        t_study += settled(lambda: [study_pipeline(corpus.clips[i].path) for i in idx])[1]
        if j < len(parts) - 1:
            with tempfile.TemporaryDirectory(dir=cache_parent()) as cache:
                t_pkg.append(settled(corpus_features, corpus, cfg, cache, None, False, workers)[1])
    return t_study, float(np.mean(t_pkg))


def limits(cfg: FeatureConfig) -> dict:
    "One core, one thread: seconds per FFT frame (best of torch and scipy), float32 product flop/s, in-cache copy B/s."
    x64 = np.random.default_rng(0).standard_normal((64, cfg.n_fft))
    n_gate = gate_sizes(cfg.sr)[0]
    x32 = np.random.default_rng(1).standard_normal((256, n_gate)).astype(np.float32)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    buf = torch.empty(2 ** 17)   # 512 KB: stays in the core's cache, as a small batch does
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):   # numpy's BLAS too
        rates = dict(
            fft_torch=best_time(lambda: torch.fft.rfft(torch.from_numpy(x64))) / len(x64),
            fft_scipy=best_time(lambda: scipy.fft.rfft(x64, axis=1)) / len(x64),
            gate_fft_torch=best_time(lambda: torch.fft.rfft(torch.from_numpy(x32))) / len(x32),
            gate_fft_scipy=best_time(lambda: scipy.fft.rfft(x32, axis=1)) / len(x32),
            matmul_torch=2 * 512 ** 3 / best_time(lambda: a @ b),
            matmul_numpy=2 * 512 ** 3 / best_time(lambda: a.numpy() @ b.numpy()),
            copy=2 * buf.numel() * 4 / best_time(lambda: buf.clone()))   # bytes read and written
    torch.set_num_threads(threads)
    rates['fft'] = min(rates['fft_torch'], rates['fft_scipy'])
    rates['gate_fft'] = min(rates['gate_fft_torch'], rates['gate_fft_scipy'])
    rates['matmul'] = max(rates['matmul_torch'], rates['matmul_numpy'])
    return rates


def work(cfg: FeatureConfig, native_sr: int) -> dict:
    "What one audio-second asks of each stage: FFT frames, product flops, bytes streamed (counted, not measured)."
    H = mel_filterbank(cfg.sr, cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, htk=cfg.htk)
    k = np.flatnonzero(H.any(axis=0))
    bins = int(k[-1]) + 1 - int(k[0])   # the bins with a weight, as LogMel keeps them
    frames = cfg.sr / cfg.hop_length
    grouped = sum((m1 - m0) * (k1 - k0) for m0, m1, k0, k1 in mel_groups(H[:, k[0]:k[-1] + 1]))
    n_gate, hop_gate = gate_sizes(cfg.sr)
    gate_frames = cfg.sr / hop_gate
    # soxr 'HQ': 20-bit (about 120 dB) stop band, pass band to 91.3% of the new Nyquist; Kaiser's estimate of the taps
    taps = scipy.signal.kaiserord(120, (1 - 0.913) * min(cfg.sr, native_sr) / 2 / (native_sr / 2))[0]
    return dict(
        frames=frames,
        mel_flops=frames * 2 * 2 * grouped,            # each weight twice (Re^2, Im^2), a multiply and an add
        # the window's taps and the squares (complex128 read, float32 written), six passes over the dB
        rest_bytes=frames * (16 * bins + 8 * bins + 6 * 2 * 4 * cfg.n_mels),
        gate_frames=2 * gate_frames,                   # a forward and an inverse FFT per frame
        # power, mask, smoothing passes and the overlap-add: about twelve float32 passes over each frame's bins
        gate_bytes=gate_frames * 12 * 4 * (n_gate // 2 + 1),
        resample_taps=int(taps),
        resample_flops=2 * taps * cfg.sr if native_sr != cfg.sr else 0.0)


def stages(corpus: Corpus, cfg: FeatureConfig, step: int = 4) -> dict:
    "Seconds per audio-second of each stage of the package's pipeline, one thread, on every step-th clip."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clips = corpus.clips[::step]
    audio_s = float(sum(c.duration for c in clips))
    logmel = _logmel(tuple(asdict(cfg).items()))
    t = dict(hash=0.0, decode=0.0, resample=0.0, gate=0.0)
    ys, keys = [], []
    load_audio(clips[0].path, cfg.sr), denoise(np.full(cfg.sr, 1e-3, np.float32), cfg.sr)   # lazy imports
    for c in clips:
        key, dt = timed(cache_key, c.path, cfg)
        t['hash'] += dt
        (y, sr, _), dt = timed(decode_audio, c.path)
        t['decode'] += dt
        if sr != cfg.sr:
            y, dt = timed(lambda: soxr.resample(y, sr, cfg.sr, quality='soxr_hq'))
            t['resample'] += dt
        y, dt = timed(lambda: np.asarray(denoise(y, cfg.sr, method=cfg.denoise), np.float32))
        t['gate'] += dt
        ys.append(y), keys.append(key)
    with torch.inference_mode():   # the extractor as the workers run it: each clip alone; the profiler splits its ops
        logmel(torch.from_numpy(ys[0])[None], torch.tensor([len(ys[0])]))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            feats = [logmel(torch.from_numpy(y)[None], torch.tensor([len(y)]))[0][0].numpy() for y in ys]
    with tempfile.TemporaryDirectory(dir=cache_parent()) as cache:
        t['save'] = sum(timed(save_entry, Path(cache) / f'{k}{ENTRY_SUFFIX}', S, k)[1] for k, S in zip(keys, feats))
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    fft = ops.pop('aten::_fft_r2c', 0.0)
    mel = ops.pop('aten::mm', 0.0)
    t.update(fft=fft, mel=mel, rest=sum(ops.values()))
    torch.set_num_threads(threads)
    return {k: v / audio_s for k, v in t.items()}


def roofline(measured: dict, rates: dict, w: dict) -> dict:
    "Per stage: the time its counted work takes at the measured rates (s per audio-s) and the achieved fraction."
    limit = dict(fft=w['frames'] * rates['fft'], mel=w['mel_flops'] / rates['matmul'],
                 rest=w['rest_bytes'] / rates['copy'],
                 gate=w['gate_frames'] * rates['gate_fft'] + w['gate_bytes'] / rates['copy'],
                 resample=w['resample_flops'] / rates['matmul'])
    return {k: dict(measured=measured[k], limit=v, fraction=v / measured[k]) for k, v in limit.items() if measured[k]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=os.environ.get('SER_NBDEV_AESDD'), help='AESDD folder (default $SER_NBDEV_AESDD)')
    p.add_argument('--workers', type=int, default=2, help='processes of the package pipeline')
    p.add_argument('--runs', type=int, default=3, help='repetitions of the two comparisons (medians printed)')
    p.add_argument('--no-e2e', action='store_true', help='only the feature step and the stages')
    p.add_argument('--out', default=None, help='record file (default bench/results/features_<corpus>.json)')
    args = p.parse_args(argv)
    cfg = FeatureConfig()
    machine = dict(cpu=cpu_name(), flags=cpu_flags(), torch=torch.__version__, librosa=librosa.__version__,
                   threads=torch.get_num_threads())
    print(f"{machine['cpu']}; {' '.join(machine['flags'])}; torch {torch.__version__}, {machine['threads']} threads; "
          f'librosa {librosa.__version__}; cfg {cfg}')
    rates = limits(cfg)
    print(f"limit     one core: FFT {cfg.n_fft} float64 {1e6 * rates['fft_torch']:.2f} us (torch) "
          f"{1e6 * rates['fft_scipy']:.2f} us (scipy); FFT {gate_sizes(cfg.sr)[0]} float32 "
          f"{1e6 * rates['gate_fft_torch']:.2f} / {1e6 * rates['gate_fft_scipy']:.2f} us; float32 product "
          f"{rates['matmul_torch'] / 1e9:.0f} (torch) {rates['matmul_numpy'] / 1e9:.0f} (numpy) GFLOP/s; "
          f"in-cache copy {rates['copy'] / 1e9:.0f} GB/s")
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    corpora = [('embedded', load_corpus())] + ([('aesdd', load_corpus(args.data))] if args.data else [])
    worst, record = 0.0, dict(machine=machine, limits=rates, runs=args.runs, workers=args.workers, corpora={})
    for name, corpus in corpora:
        audio_s = float(sum(corpus.column('duration')))
        print(f'corpus {name}: {len(corpus)} clips, {audio_s:.1f} audio-s')
        rec = record['corpora'][name] = dict(clips=len(corpus), audio_s=audio_s)
        ys = [load_audio(c.path, sr=cfg.sr)[0] for c in corpus.clips]
        feat_s = sum(len(y) for y in ys) / cfg.sr
        for device in devices:
            speedups = []
            for _ in range(args.runs):
                t_lib, t_ext, diff = bench_features(ys, cfg, device)
                worst = max(worst, diff)
                speedups.append(t_lib / t_ext)
                print(f'  features  librosa {feat_s / t_lib:.0f} audio-s/s | extract ({device}) {feat_s / t_ext:.0f} '
                      f'audio-s/s | speedup {t_lib / t_ext:.2f}x | max_abs_db_diff {diff:.1e}')
            rec[f'speedup_{device}'] = speedups
        del ys
        if not args.no_e2e:
            e2e = []
            for _ in range(args.runs):
                t_study, t_pkg = bench_e2e(corpus, cfg, args.workers)
                e2e.append(t_study / t_pkg)
                print(f'  e2e       study {audio_s / t_study:.1f} audio-s/s | package ({args.workers} workers) '
                      f'{audio_s / t_pkg:.1f} audio-s/s | e2e_speedup {t_study / t_pkg:.2f}x')
            rec['e2e_speedup'] = e2e
        measured = stages(corpus, cfg)
        roof = roofline(measured, rates, work(cfg, corpus.clips[0].sr))
        rec.update(stages=measured, roofline=roof, work=work(cfg, corpus.clips[0].sr))
        print('  cpu       one thread, ms per audio-s: ' + ', '.join(f'{k} {1e3 * v:.3f}' for k, v in measured.items())
              + f' = {1e3 * sum(measured.values()):.2f}')
        for k, r in roof.items():
            print(f"  limit     {k:8s} {1e3 * r['measured']:.3f} ms per audio-s, the counted work at the measured "
                  f"rate {1e3 * r['limit']:.3f} ms: {r['fraction']:.0%} of the limit")
    rec['max_abs_db_diff'] = worst
    last = record['corpora'][corpora[-1][0]]
    out = Path(args.out) if args.out else RESULTS / f'features_{corpora[-1][0]}.json'
    with atomic_file(out, 'w') as f:
        json.dump(record, f, indent=1)
    e2e = f"{np.median(last['e2e_speedup']):.1f}x" if 'e2e_speedup' in last else 'n/a'
    print(f"speedup {np.median(last['speedup_cpu']):.1f}x max_abs_db_diff {worst:.1e} e2e_speedup {e2e}")


if __name__ == '__main__':
    main()
