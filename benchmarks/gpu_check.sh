#!/usr/bin/env bash
# Issue 15's GPU checks, for a person with an NVIDIA GPU and a CUDA build of torch (>= 2.11).
# Run from the repository root; nothing is installed, trainset runs from the source tree:
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default: gpu_check-<UTC time>
#
# Writes into OUT_DIR:
#   environment.txt  nvidia-smi, python, torch, CUDA, the GPU torch sees
#   pytest.log       `pytest -m gpu tests/gpu`: every demo run trained on CUDA for 2 epochs (loss falls,
#                    exact resume, CPU evaluation of the CUDA checkpoint, bf16), DDP over NCCL with 2 GPUs
#   bench.txt/.json  benchmarks/bench_training.py --goal: samples/s per model on CPU (1, 2 threads) and
#                    GPU (fp32, bf16), min and median of 3 rounds, with the GPU name and versions, and
#                    the flu goal: diffusion U-Net on the GPU >= 20x its 2-thread CPU throughput
#   surv_only/       the second goal, when snakemake is installed: the demo SURV_ONLY mix built with
#                    seed 0 and its flu_diffusion run trained on the GPU, then evaluated;
#                    surv_only/summary.json says whether training took <= 300 s and ks_peak_size < 0.3
#   summary.txt      one line per check with its exit status
#
# Environment: PYTHON (default python), EPOCHS (flu_diffusion epochs, default 60: pick the most
# that fit in 5 minutes on your GPU, see bench.txt), PRECISION (fp32 or bf16, default bf16),
# BATCH_SIZE (default 32, the demo's), CORES (snakemake --cores, default 8), SKIP_WORKFLOW=1.
set -uo pipefail

OUT=${1:-gpu_check-$(date -u +%Y%m%dT%H%M%SZ)}
PY=${PYTHON:-python}
EPOCHS=${EPOCHS:-60}
PRECISION=${PRECISION:-bf16}
BATCH_SIZE=${BATCH_SIZE:-32}
CORES=${CORES:-8}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/summary.txt"

note() { echo "$*" | tee -a "$OUT/summary.txt"; }

[[ -f src/trainset/__init__.py ]] || { echo "run from the trainset repository root" >&2; exit 2; }

{
  date -u
  nvidia-smi 2>&1 || echo "nvidia-smi: not found"
  "$PY" - <<'EOF'
import platform, torch
print("python", platform.python_version())
print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())
print("cuda available:", torch.cuda.is_available(), "devices:", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i}", torch.cuda.get_device_name(i), "bf16:", torch.cuda.is_bf16_supported())
EOF
} >"$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

"$PY" -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log"
note "pytest -m gpu tests/gpu: exit ${PIPESTATUS[0]} (details: pytest.log)"

"$PY" benchmarks/bench_training.py --goal --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
note "bench_training.py --goal: exit ${PIPESTATUS[0]} (details: bench.txt, bench.json)"

if [[ ${SKIP_WORKFLOW:-0} == 1 ]]; then
  note "surv_only: skipped (SKIP_WORKFLOW=1)"
elif ! "$PY" -c "import snakemake" 2>/dev/null; then
  note "surv_only: skipped: snakemake is not installed (pip install -e '.[workflow]' or the test extra)"
else
  mkdir -p "$OUT/surv_only"
  # Only the demo flu_diffusion run on SURV_ONLY, seed 0, on the GPU; every other run and search removed.
  "$PY" - "$OUT/surv_only/overlay.yaml" "$EPOCHS" "$PRECISION" "$BATCH_SIZE" <<'EOF'
import sys, yaml
path, epochs, precision, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
defaults = yaml.safe_load(open("config/config.yaml"))
overlay = {"seed": 0, "runs": {n: None for n in defaults["runs"]}, "searches": {n: None for n in defaults.get("searches") or {}}}
run = defaults["runs"]["flu_diffusion"]
assert run["dataset"] == "SURV_ONLY", run
overlay["runs"]["flu_diffusion_gpu"] = {**run, "training": {**run["training"], "device": "cuda", "precision": precision,
                                                            "epochs": epochs, "batch_size": batch}}
yaml.safe_dump(overlay, open(path, "w"), sort_keys=False)
EOF
  "$PY" -m snakemake -s Snakefile --configfile "$OUT/surv_only/overlay.yaml" --directory "$OUT/surv_only" \
      --cores "$CORES" results/reports/flu_diffusion_gpu/metrics.json 2>&1 | tail -40 | tee "$OUT/surv_only/snakemake.log"
  status=${PIPESTATUS[0]}
  "$PY" - "$OUT/surv_only" <<'EOF'
import csv, json, sys
from pathlib import Path
folder = Path(sys.argv[1])
out = {"goal": "demo SURV_ONLY, seed 0: a GPU training run of <= 300 s, then ks_peak_size < 0.3"}
bench = folder / "results/benchmarks/train_model/flu_diffusion_gpu.tsv"
metrics = folder / "results/reports/flu_diffusion_gpu/metrics.json"
history = folder / "results/models/flu_diffusion_gpu/history.json"
if bench.exists():
    out["train_seconds"] = float(next(csv.DictReader(bench.open(), delimiter="\t"))["s"])
if history.exists():
    out["epochs_trained"] = len(json.loads(history.read_text()))

def find(node, key):
    if isinstance(node, dict):
        if key in node and isinstance(node[key], (int, float)):
            return node[key]
        for value in node.values():
            found = find(value, key)
            if found is not None:
                return found
    return None

if metrics.exists():
    out["ks_peak_size"] = find(json.loads(metrics.read_text()), "ks_peak_size")
config = folder / "results/models/flu_diffusion_gpu/config.json"
if config.exists():
    out["run_training"] = json.loads(config.read_text()).get("training")
import torch
out.update(gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, torch=torch.__version__,
           cuda=torch.version.cuda)
out["met"] = bool(out.get("train_seconds") is not None and out["train_seconds"] <= 300
                  and out.get("ks_peak_size") is not None and out["ks_peak_size"] < 0.3)
(folder / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out, indent=1))
EOF
  note "surv_only: snakemake exit $status; goal in surv_only/summary.json"
fi
echo "results in $OUT"
cat "$OUT/summary.txt"
