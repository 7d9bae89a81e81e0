#!/usr/bin/env bash
# The agent speed benchmark on a lent GPU machine (device="cuda", large vector envs).
#
# That machine has python3 with torch (CUDA), numpy and pluggy, but not gymnasium, SB3 or the
# chitchat data, and nothing can be fetched there. So, on this machine first (pure-Python wheels,
# kept in the git-ignored build/ folder):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d build/gpu-wheels \
#       gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2 chitchat-dataset==0.9.0
# then run this script there from the repository root with build/gpu-wheels carried along.
# Results go to $OUT (the device tool's folder) or results/gpu. DEVICE=cpu (with small SIZES) is a
# dry run of the same script on a CPU, to check it before spending device time.
set -euo pipefail
device=${DEVICE:-cuda}
out=${OUT:-results/gpu}
mkdir -p "$out"
site=/tmp/nlp-envs-site
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" build/gpu-wheels/*.whl
# Install nlp-envs itself (no dependencies) so that its entry points, the built-in agents, exist.
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
export PYTHONPATH="$site" PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
cd /tmp  # import nlp_envs and agents from the installed copy, not the source tree
repo=$OLDPWD
python3 "$repo/benchmarks/agent_speed.py" --device "$device" --parts g --sizes "${SIZES:-1024,4096,16384}" \
    --vector-steps "${VECTOR_STEPS:-200}" --json "$out/agent_speed_gpu_g.json" 2>&1 | tee "$out/agent_speed_gpu.log"
python3 "$repo/benchmarks/agent_speed.py" --device "$device" --parts a --steps 20000 --repeats 1 \
    --json "$out/agent_speed_gpu_a.json" 2>&1 | tee -a "$out/agent_speed_gpu.log"
