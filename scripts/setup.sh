#!/usr/bin/env bash
# Installs what tokamak needs to build and test, from Debian's packages (pinned by the distribution
# release). Idempotent: installs only what is missing. Run as root (CI and dev machines are).
#
#   scripts/setup.sh            install missing build dependencies
#   scripts/setup.sh --bundle D download the .deb files into D for an air-gapped GPU host, where
#                               scripts/offline_deps.sh unpacks them
set -euo pipefail

PACKAGES=(cmake ninja-build g++ zlib1g-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev
          libcli11-dev libgtest-dev libboost1.81-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [[ "${1:-}" == "--bundle" ]]; then
  dest=${2:?usage: scripts/setup.sh --bundle DIR}
  mkdir -p "$dest"
  apt-get update -qq
  # libboost1.81-dev (headers only, for src/http) needs nothing but libstdc++-12-dev, which g++ brings.
  (cd "$dest" && apt-get download libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 zlib1g-dev \
    libutf8proc-dev libutf8proc2 nlohmann-json3-dev libcli11-dev libgtest-dev libboost1.81-dev)
  echo "downloaded $(ls "$dest"/*.deb | wc -l) packages into $dest"
  exit 0
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
