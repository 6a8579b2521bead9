#!/bin/sh
# Installs the spanlens-lsp package with its [local] extra (the built-in engine: xllamacpp, a
# prebuilt llama.cpp server run in-process, and gguf) and their dependencies into bundled/libs
# for one platform (the .vsix is per platform: tree-sitter grammars and the engine are compiled
# wheels).
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
# xllamacpp's macOS wheels are built for macOS 13 and later: a second platform tag lets pip take
# them (every other package resolves as before; the engine then needs macOS 13).
platforms="--platform $platform"
case "$target" in
  darwin-x64) platforms="$platforms --platform macosx_13_0_x86_64" ;;
  darwin-arm64) platforms="$platforms --platform macosx_13_0_arm64" ;;
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
    $platforms --implementation cp --python-version "$version" --only-binary=:all: \
    $constraints "$(echo "$work"/wheel/spanlens_lsp-*.whl)[local]"
  [ "$version" = 3.10 ] && $pip freeze --path "$work/3.10" | grep -v '^spanlens' > "$work/pins.txt"
  cp -Rn "$work/$version/." "$here/bundled/libs/"
done
# Not needed at run time: pip (a dependency of sqlite-utils' plugin installer), scripts,
# caches, and nvidia-ml-py's stray example.
rm -rf "$here/bundled/libs/pip" "$here/bundled/libs/bin" "$here/bundled/libs/example.py"
# xllamacpp's Linux library carries its debug info (106 MB on x64, 30 MB without it): dropped where this
# machine's strip reads the format; kept, with a line saying so, where it does not.
for library in "$here"/bundled/libs/xllamacpp/*.so; do
  [ -e "$library" ] || continue
  strip --strip-debug "$library" 2>/dev/null || echo "kept the debug info of $library" >&2
done
find "$here/bundled/libs" -name __pycache__ -type d -prune -exec rm -rf {} +
cp "$here/bundled-src/spanlens_server.py" "$here/bundled/tool/"
echo "bundled server for $target: $(du -sh "$here/bundled" | cut -f1)"
