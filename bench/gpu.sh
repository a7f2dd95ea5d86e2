#!/usr/bin/env bash
# The GPU checks in one call, on a lent GPU machine: tests/test_cuda.py, then bench/train.py on AESDD.
#
# That machine has PyTorch but neither the audio stack nor the corpus, so the features travel instead of the audio,
# with wheels for what the package imports (both in ignored folders, never committed). Prepare here:
#   python bench/train.py --data PATH --save-features .gpu/aesdd_features.npz
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 ... -d .whl \
#       soundfile cffi pycparser librosa audioread decorator pooch soxr platformdirs noisereduce
# then run `bash bench/gpu.sh` there with .gpu and .whl carried. It writes $OUT/train_gpu.json and .log.
# Batches of 32: a GPU step costs about as much for one clip as for 32, and on validation clips 32 scored no lower
# (bench/results/recipe_gpu_batch.json). Extra arguments go to bench/train.py.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SER_NBDEV_CACHE=/tmp/ser_nbdev_cache
OUT=${OUT:-bench/results}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
tests=0; python3 -m pytest -q tests/test_cuda.py || tests=$?  # the benchmark runs either way
features=(--features .gpu/aesdd_features.npz --data /work/shared/data/aesdd)
{
  echo "\$ python bench/train.py ${features[*]} --batch-size 32 --ablation $*   # on a lent GPU: bench/gpu.sh"
  python3 bench/train.py "${features[@]}" --batch-size 32 --ablation --out "$OUT/train_gpu.json" "$@"
} 2>&1 | tee "$OUT/train_gpu.log"
exit $tests
