#!/bin/sh
# Installs the spanlens-lsp package and its dependencies into bundled/libs for one platform
# (the .vsix is per platform: tree-sitter grammars are compiled wheels).
#   scripts/bundle-server.sh TARGET PIP
# TARGET: linux-x64 | linux-arm64 | darwin-x64 | darwin-arm64 | win32-x64; PIP: a pip command.
set -eu
target=$1
pip=$2
case "$target" in
  linux-x64) platform=manylinux2014_x86_64 ;;
  linux-arm64) platform=manylinux2014_aarch64 ;;
  darwin-x64) platform=macosx_10_13_x86_64 ;;
  darwin-arm64) platform=macosx_11_0_arm64 ;;
  win32-x64) platform=win_amd64 ;;
  *) echo "unknown target '$target' (linux-x64, linux-arm64, darwin-x64, darwin-arm64, win32-x64)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$pip wheel --quiet --disable-pip-version-check --no-deps "$repo" -w "$work/wheel"
rm -rf "$here/bundled"
mkdir -p "$here/bundled/libs" "$here/bundled/tool"
# One install per CPython version, all pinned to what 3.10 resolves (so every version sees the
# same pure files); compiled modules carry the version in their names, so merging the installs
# serves 3.10-3.13 from one folder.
for version in 3.10 3.11 3.12 3.13; do
  constraints=
  [ "$version" = 3.10 ] || constraints="-c $work/pins.txt"
  # shellcheck disable=SC2086
  $pip install --quiet --disable-pip-version-check --no-compile --target "$work/$version" \
    --platform "$platform" --implementation cp --python-version "$version" --only-binary=:all: \
    $constraints "$work"/wheel/spanlens_lsp-*.whl
  [ "$version" = 3.10 ] && $pip freeze --path "$work/3.10" | grep -v '^spanlens' > "$work/pins.txt"
  cp -Rn "$work/$version/." "$here/bundled/libs/"
done
# Not needed at run time: pip (a dependency of sqlite-utils' plugin installer), scripts,
# caches, and nvidia-ml-py's stray example.
rm -rf "$here/bundled/libs/pip" "$here/bundled/libs/bin" "$here/bundled/libs/example.py"
find "$here/bundled/libs" -name __pycache__ -type d -prune -exec rm -rf {} +
cp "$here/bundled-src/spanlens_server.py" "$here/bundled/tool/"
echo "bundled server for $target: $(du -sh "$here/bundled" | cut -f1)"
