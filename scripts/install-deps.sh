#!/usr/bin/env bash
# Installs the Debian packages anvil builds, tests and runs with; skips what is already there.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libopenblas-dev libgtest-dev libgmock-dev
      nlohmann-json3-dev libcli11-dev zlib1g-dev python3-venv python3-pip dataset-fashion-mnist
      python3-sklearn clang-14 libclang-rt-14-dev  # clang + its runtimes: `make test-fuzz`
      python3-statsmodels  # its datasets/*.csv: time series (sunspots) for examples/lstm_sunspots
      fortunes bible-kjv-text)  # text corpora for the language-model examples and tests
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "anvil: installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
