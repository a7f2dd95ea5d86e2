"""Speed and memory of `ser-nbdev predict --timeline` on a long recording made from the embedded corpus.

Usage: python bench/timeline.py [--minutes 10] [--sr 48000] [--threads 1] [--onnx]
Writes the recording (its clips joined end to end, resampled to --sr, written block by block) and an untrained
checkpoint into a temporary folder, runs the console script on it, and prints audio seconds per second of wall
time and the command's peak resident memory (ru_maxrss of the child process). The network's weights do not change
the work, so an untrained one measures the same speed as a trained one."""
import argparse, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import soundfile as sf


def make_recording(path: Path, minutes: float, sr: int) -> float:
    "Join the embedded corpus's clips (again and again) into `minutes` of audio at `sr`; returns its seconds."
    from ser_nbdev.data import load_audio, load_corpus
    clips, n, want = load_corpus(None).clips, 0, int(minutes * 60 * sr)
    with sf.SoundFile(path, 'w', sr, 1, subtype='PCM_16') as f:
        while n < want:
            for c in clips:
                y = load_audio(c.path, sr)[0][:want - n]
                f.write(y)
                n += len(y)
                if n >= want:
                    break
    return n / sr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--sr', type=int, default=48_000, help="the recording's rate (default: a microphone's 48 kHz)")
    ap.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS of the command (default: 1)')
    ap.add_argument('--onnx', action='store_true', help='also run the exported .onnx model')
    args = ap.parse_args()
    import torch
    from ser_nbdev.mel import FeatureConfig
    from ser_nbdev.train import TrainConfig, new_model, save_checkpoint
    tool = str(Path(sys.executable).parent / 'ser-nbdev')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds = make_recording(tmp / 'long.wav', args.minutes, args.sr)
        cfg, labels = TrainConfig(), ['anger', 'disgust', 'fear', 'happiness', 'sadness']
        torch.manual_seed(0)
        save_checkpoint(tmp / 'model.pt', new_model(cfg, 5), labels, feature_cfg=FeatureConfig(), train_cfg=cfg)
        models = [tmp / 'model.pt']
        if args.onnx:
            subprocess.run([tool, 'export', str(models[0]), str(tmp / 'model.onnx')], check=True, env=env,
                           capture_output=True)
            models.append(tmp / 'model.onnx')
        print(f'recording: {seconds:.0f} s at {args.sr} Hz ({(tmp / "long.wav").stat().st_size / 1e6:.0f} MB); '
              f'OMP_NUM_THREADS={args.threads}')
        for model in models:
            cmd = [tool, 'predict', str(model), str(tmp / 'long.wav'), '--timeline', '--out', str(tmp / 'tl.csv'),
                   '--plot', str(tmp / 'tl.png')]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            out, err = proc.communicate()
            assert status == 0, err
            rows = len((tmp / 'tl.csv').read_text().splitlines()) - 1
            print(f'{model.suffix}: {rows} windows in {wall:.1f} s = {seconds / wall:.0f} audio-s/s; '
                  f'peak RSS {usage.ru_maxrss / 1024:.0f} MB')


if __name__ == '__main__':
    main()
