#!/usr/bin/env bash
# aekit on a CUDA machine, in one prepared script: the test suite on the GPU
# (AEKIT_TEST_DEVICE=auto), every verb with --device cuda on small data, benchmarks/gpu_speed.py,
# and the one-minute time budget on Fashion-MNIST. Logs, JSON and a summary go under $OUT.
#
# 1. Beforehand, on a machine with the network, in the repository root, fetch what the GPU
#    machine lacks (its image has torch, numpy, scikit-learn, safetensors, pyarrow, pillow,
#    matplotlib, tqdm, onnx, onnxruntime, tensorboard, hypothesis, pytest and pytest-xdist, for
#    Python 3.12; not zstandard, optuna and its needs, argcomplete, pyflakes or mlflow, whose
#    tests then skip) as wheels into .whl/, and Fashion-MNIST's IDX files into
#    .data/fashion-mnist/ (both folders are git-ignored; about 42 MB together):
#
#      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#          --platform manylinux2014_x86_64 -d .whl zstandard optuna alembic sqlalchemy greenlet \
#          colorlog mako argcomplete pyflakes
#      mkdir -p .data && cp -r /usr/share/datasets/fashion-mnist .data/
#
# 2. On the GPU machine (the two folders carried along), from the repository root:
#
#      OUT=/path/to/logs benchmarks/gpu_check.sh                # every stage (about 8 minutes)
#      OUT=/path/to/logs benchmarks/gpu_check.sh setup suite verbs
#      OUT=/path/to/logs benchmarks/gpu_check.sh setup speed budget
#
#    Every call first installs the wheels of .whl/ (AEKIT_WHEELS) into /tmp/site (no index, no
#    dependencies resolved: the folder holds each one) and points AEKIT_DATA at
#    .data/fashion-mnist/ when the system has no Fashion-MNIST. Stages: setup (the machine and
#    what imports), suite, verbs, speed, budget. Each stage has its own time limit; a failing
#    stage does not stop the next. DEVICE=cpu runs the same commands on the CPU (a dry run of
#    the script itself).
#
# Read $OUT/summary.txt first: one line per stage and per verb, with its exit status and time.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-check-out}"
DEVICE="${DEVICE:-cuda}"
WHEELS="${AEKIT_WHEELS:-$ROOT/.whl}"
PY="${PYTHON:-python3}"
WORK="$OUT/work"
AEKIT=("$PY" -m aekit)
SUMMARY="$OUT/summary.txt"
mkdir -p "$OUT" "$WORK" "$OUT/verbs"
export PYTHONUNBUFFERED=1
cd "$ROOT" || exit 1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl >"$OUT/setup-pip.log" 2>&1 \
        || echo "could not install the wheels of $WHEELS (see setup-pip.log)" >>"$SUMMARY"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
        && [ -d "$ROOT/.data/fashion-mnist" ] && [ -z "${AEKIT_DATA:-}" ]; then
    export AEKIT_DATA="$ROOT/.data/fashion-mnist"
fi

note() { echo "$*" | tee -a "$SUMMARY"; }

# run NAME LIMIT_SECONDS COMMAND...: the command's output in $OUT/NAME.log, a line in the summary
run() {
    local name="$1" limit="$2"; shift 2
    local log="$OUT/$name.log" start ms rc
    start=$(date +%s%N)
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    note "$(printf '%-28s rc=%-3s %4d.%01ds  %s' "$name" "$rc" $((ms / 1000)) \
        $((ms % 1000 / 100)) "$( [ "$rc" = 124 ] && echo "TIMED OUT after ${limit}s" \
        || tail -n 1 "$log" | cut -c1-110)")"
    return "$rc"
}

stage_setup() {
    note "== setup: $(date -u +%FT%TZ), device $DEVICE, out $OUT"
    { nvidia-smi || true; "$PY" -c 'import sys, platform, torch
print(sys.version, platform.machine())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0))'; } >"$OUT/setup-env.log" 2>&1
    tail -n 2 "$OUT/setup-env.log" | tee -a "$SUMMARY"
    local module missing=()
    for module in zstandard pyarrow tqdm PIL matplotlib hypothesis xdist optuna argcomplete \
            pyflakes onnx onnxruntime tensorboard mlflow; do
        "$PY" -c "import $module" >/dev/null 2>&1 || missing+=("$module")
    done
    note "setup: ${missing[*]:-nothing} missing; AEKIT_DATA=${AEKIT_DATA:-unset}"
}

stage_suite() {
    note "== suite (AEKIT_TEST_DEVICE=auto)"
    local parallel=()
    "$PY" -c "import xdist" >/dev/null 2>&1 && parallel=(-n 12)
    AEKIT_TEST_DEVICE=auto run suite 420 "$PY" -m pytest -q -p no:cacheprovider "${parallel[@]}" \
        -rfEs --junitxml="$OUT/suite.xml" tests
    grep -E "^(FAILED|ERROR)" "$OUT/suite.log" >"$OUT/suite-failures.txt"
    note "suite: $(grep -cE '^(FAILED|ERROR)' "$OUT/suite.log") failed or errored (suite-failures.txt)"
}

stage_verbs() {
    note "== verbs with --device $DEVICE"
    local w="$WORK" d=(--device "$DEVICE") quick=(--threads 4 --no-progress)
    rm -rf "${w:?}"/*
    run verbs/train 120 "${AEKIT[@]}" train --data digits --out "$w/run" --epochs 5 --latent-dim 8 \
        "${d[@]}" "${quick[@]}"
    run verbs/train-resume 120 "${AEKIT[@]}" train --data digits --out "$w/run" --epochs 5 \
        --latent-dim 8 --resume "${d[@]}" "${quick[@]}"
    run verbs/train-fp32 120 "${AEKIT[@]}" train --data digits --out "$w/fp32" --epochs 3 \
        --latent-dim 8 --precision fp32 "${d[@]}" "${quick[@]}"
    run verbs/train-bf16 120 "${AEKIT[@]}" train --data digits --out "$w/bf16" --epochs 3 \
        --latent-dim 8 --precision bf16 "${d[@]}" "${quick[@]}"
    run verbs/train-conv 120 "${AEKIT[@]}" train --data digits --out "$w/conv" --epochs 3 \
        --latent-dim 8 --kind conv "${d[@]}" "${quick[@]}"
    run verbs/train-vae 120 "${AEKIT[@]}" train --data digits --out "$w/vae" --epochs 3 \
        --latent-dim 8 --kind vae "${d[@]}" "${quick[@]}"
    run verbs/train-dropout-bn 120 "${AEKIT[@]}" train --data digits --out "$w/dbn" --epochs 3 \
        --latent-dim 8 --dropout 0.1 --batch-norm --auto-fix "${d[@]}" "${quick[@]}"
    run verbs/train-clip-l2 120 "${AEKIT[@]}" train --data digits --out "$w/clip" --epochs 3 \
        --latent-dim 8 --clip-norm 0.5 --l2 0.001 --optimizer momentum "${d[@]}" "${quick[@]}"
    run verbs/lr-find 120 "${AEKIT[@]}" lr-find --data digits --out "$w/lr" --latent-dim 8 "${d[@]}" \
        --threads 4
    run verbs/study 180 "${AEKIT[@]}" study --data digits --only sgd,bn,adam --epochs 2 \
        --hidden 64,32 --latent-dim 8 --out "$w/study" "${d[@]}" --threads 4
    run verbs/sweep 180 "${AEKIT[@]}" sweep --data digits --latent-dims 2,8 --epochs 3 \
        --out "$w/sweep" "${d[@]}" "${quick[@]}"
    run verbs/tune 180 "${AEKIT[@]}" tune --data digits --trials 2 --epochs 3 --out "$w/tune" \
        "${d[@]}" "${quick[@]}"
    run verbs/detect 180 "${AEKIT[@]}" detect --data digits --epochs 3 --out "$w/detect" \
        "${d[@]}" "${quick[@]}"
    run verbs/evaluate 60 "${AEKIT[@]}" evaluate --model "$w/run" --data digits "${d[@]}"
    run verbs/encode 60 "${AEKIT[@]}" encode --model "$w/run" --data digits --out "$w/z.npy" "${d[@]}"
    run verbs/decode 60 "${AEKIT[@]}" decode --model "$w/run" --codes "$w/z.npy" --out "$w/x.npy" \
        "${d[@]}"
    run verbs/generate 60 "${AEKIT[@]}" generate --model "$w/run" -n 16 --out "$w/g.npy" "${d[@]}"
    run verbs/generate-vae 60 "${AEKIT[@]}" generate --model "$w/vae" -n 16 --out "$w/gv.npy" "${d[@]}"
    run verbs/explain 120 "${AEKIT[@]}" explain --model "$w/run" --out "$w/explain" --samples 500 \
        "${d[@]}"
    run verbs/compress 60 "${AEKIT[@]}" compress --model "$w/run" --data digits --out "$w/d.aez"
    run verbs/decompress 60 "${AEKIT[@]}" decompress "$w/d.aez" --out "$w/d.npy"
    run verbs/export 60 "${AEKIT[@]}" export --model "$w/run" --out "$w/onnx"
    run verbs/report 60 "${AEKIT[@]}" report "$w/run"
    run verbs/diagnose 60 "${AEKIT[@]}" diagnose "$w/run"
}

stage_speed() {
    note "== speed (benchmarks/gpu_speed.py)"
    local quick=()
    [ "$DEVICE" = cpu ] && quick=(--data digits --epochs 2 --threads 4)
    run speed-tf32 300 "$PY" benchmarks/gpu_speed.py --device "$DEVICE" --epochs 10 \
        --json "$OUT/gpu_speed.json" "${quick[@]}"
    local p
    for p in fp32 bf16; do
        run "speed-deep256-$p" 120 "$PY" benchmarks/gpu_speed.py --device "$DEVICE" \
            --epochs 10 --cases deep-256 --precision "$p" --json "$OUT/gpu_speed_$p.json" \
            "${quick[@]}"
    done
}

stage_budget() {
    note "== the one-minute budget on Fashion-MNIST"
    local data=(--data fashion-mnist --test fashion-mnist:test --time-budget 60)
    [ "$DEVICE" = cpu ] && data=(--data digits --time-budget 10 --threads 4)
    run budget 150 "${AEKIT[@]}" train "${data[@]}" --latent-dim 30 --device "$DEVICE" \
        --out "$WORK/budget" --no-progress
    "$PY" - "$WORK/budget/summary.json" <<'EOF' | tee -a "$SUMMARY"
import json, sys
s = json.load(open(sys.argv[1]))
ratio = s["test_sse_per_sample"] / s["pca_test_sse_per_sample"]
print(f"budget: {s['epochs']} epochs in {s['train_seconds']:.1f} s, "
      f"{s['samples_per_second']:,.0f} samples/s, test error {ratio:.3f}x PCA-30's")
EOF
}

stages=("$@")
[ "${#stages[@]}" -eq 0 ] && stages=(setup suite verbs speed budget)
for stage in "${stages[@]}"; do
    case "$stage" in
        setup|suite|verbs|speed|budget) "stage_$stage" ;;
        *) note "unknown stage $stage (allowed: setup suite verbs speed budget)"; exit 2 ;;
    esac
done
note "== done: $(date -u +%FT%TZ)"
