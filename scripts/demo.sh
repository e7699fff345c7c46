#!/bin/sh
# Builds meshplan and runs its main job on the built-in default model and
# cluster.  Extra arguments go to meshplan in place of the default job.
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMESHPLAN_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ $# -gt 0 ]; then
	exec build/meshplan "$@"
fi
# The default job: GPT-3 1.3B on one aws-p3.16xlarge node (8 x V100), global batch 1024.
build/meshplan info --cluster aws-p3.16xlarge --nodes 1
exec build/meshplan compile gpt:1.3b --cluster aws-p3.16xlarge --nodes 1 --batch 1024
