#!/bin/sh
# Builds meshplan with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs the whole test suite.
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DMESHPLAN_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j"$(nproc)"
