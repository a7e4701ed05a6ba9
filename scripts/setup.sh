#!/usr/bin/env bash
# Installs what tokamak needs to build and test, from Debian's packages (pinned by the distribution
# release), and the Python virtual environment of the server tests (.venv, pinned by
# tests/server/requirements.txt). Idempotent: installs only what is missing, and rebuilds .venv
# only when the requirements change. Run as root (CI and dev machines are).
#
#   scripts/setup.sh            install missing build dependencies, make or refresh .venv
#   TOKAMAK_NO_VENV=1 scripts/setup.sh   the Debian packages only
#   scripts/setup.sh --bundle D download the .deb files into D for an air-gapped GPU host, where
#                               scripts/offline_deps.sh unpacks them
set -euo pipefail

PACKAGES=(cmake ninja-build g++ zlib1g-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev
          libcli11-dev libgtest-dev libboost1.81-dev python3 python3-venv curl)

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

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[[ -n "${TOKAMAK_NO_VENV:-}" ]] && exit 0

# The server tests' Python (tests/server): Debian's python3 (not whatever PATH prefers), every
# package pinned with ==. The stamp holds the hash of the requirements and the interpreter, so a
# second run costs a sha256sum.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
req="$root/tests/server/requirements.txt"
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3)
want="$(sha256sum "$req" | cut -d' ' -f1) $("$py" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$venv/bin/python" && -f "$venv/.tokamak-stamp" && "$(cat "$venv/.tokamak-stamp")" == "$want" ]]; then
  exit 0
fi
echo "setup: creating $venv from tests/server/requirements.txt"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
echo "$want" >"$venv/.tokamak-stamp"
