#!/usr/bin/env bash
# Build one pinned Go tool from the module proxy into the shared tool cache.
# Usage: build-go-tool.sh OUT_BINARY MODULE_DIR PACKAGE [extra go build args...]
# The output is keyed by the wrapper module's go.sum and build flags, so a second run with the
# same pins rebuilds nothing, and a changed pin rebuilds exactly that tool.
set -euo pipefail
out=$1 moddir=$2 pkg=$3
shift 3
stamp="$out.stamp"
want=$( { cat "$moddir/go.mod" "$moddir/go.sum"; echo "$pkg $*"; } | sha256sum | cut -d' ' -f1)
if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo ">> building $(basename "$out") from $pkg (first time on this machine; this takes a while)" >&2
( cd "$moddir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath "$@" -o "$out.tmp" "$pkg" )
mv "$out.tmp" "$out"
echo "$want" > "$stamp"
