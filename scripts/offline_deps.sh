#!/usr/bin/env bash
# Air-gapped GPU hosts: build tokamak from Debian packages downloaded elsewhere.
#
#   On a machine with Debian's archive:   scripts/setup.sh --bundle .deps
#   On the air-gapped host:               eval "$(scripts/offline_deps.sh .deps)"
#
# unpacks every .deb of the folder into .deps/root (no root rights, nothing outside the folder)
# and prints the CMAKE_PREFIX_PATH export that makes CMake find them.
set -euo pipefail
dir=$(cd "${1:?usage: scripts/offline_deps.sh DIR}" && pwd)
root="$dir/root"
if [[ ! -f "$root/.unpacked" ]]; then
  mkdir -p "$root"
  for deb in "$dir"/*.deb; do dpkg -x "$deb" "$root"; done
  touch "$root/.unpacked"
fi
echo "export CMAKE_PREFIX_PATH=\"$root/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}\""
