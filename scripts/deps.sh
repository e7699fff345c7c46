#!/bin/sh
# Installs the Debian packages meshplan builds with, when any is missing.
set -e
# zlib1g-dev: the tests decode PNG screenshots; chromium: test_pictures renders the HTML
# report headless (the test skips without it).
# libopenmpi-dev and openmpi-bin: optional (meshplan sweep over MPI ranks; docs/sweep.md)
# `scripts/deps.sh fuzz` adds clang and its libFuzzer runtime (scripts/fuzz.sh only);
# `scripts/deps.sh valgrind` adds valgrind (scripts/valgrind.sh only).
pkgs="build-essential cmake pkg-config libglpk-dev libxml2-dev libcriterion-dev libjansson-dev zlib1g-dev libopenmpi-dev openmpi-bin chromium"
[ "$1" = fuzz ] && pkgs="$pkgs clang libclang-rt-dev"
[ "$1" = valgrind ] && pkgs="$pkgs valgrind"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq $missing >/dev/null
