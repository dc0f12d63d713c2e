#!/bin/sh
# Carries a build made here to a GPU machine, where `ctest -L cuda` then runs as it would here.
#   tests/gpu_bundle.sh pack [BUILD]   here: build outputs CTest needs -> gpu-bundle.tar.gz
#   tests/gpu_bundle.sh setup          there, in the repository root: unpacks the bundle and
#                                      makes the paths the build baked in resolve
# then, there:   cd build && ctest -L cuda --output-on-failure
# The build bakes absolute paths into its CTest files and binaries (the source and build
# folders, the test environment's python): `setup` links the source path to the checkout it
# runs in, build/ to the unpacked build, and the python path to the machine's python3 (which
# must have torch). gpu-bundle.tar.gz is ignored by git; name it in the device run's carry.
set -eu
cmd=${1:-}
bundle=gpu-bundle.tar.gz
case "$cmd" in
  pack)
    build=${2:-build}
    [ -f "$build/CMakeCache.txt" ] || { echo "gpu_bundle: no build in $build" >&2; exit 1; }
    # CTest files, the library, the programs, test binaries and examples (not object files).
    files=$(cd "$build" && find . -name CTestTestfile.cmake -o -name CMakeCache.txt \
      -o -name 'libanvil.so*' -o -name anvil -type f -o -path './tests/test_*' -type f \
      -o -path './tests/harness/harness_fixtures' -o -path './bench/bench_*' -type f -o -path './examples/*' -type f -perm -u+x |
      grep -v CMakeFiles)
    (cd "$build" && tar czf "$OLDPWD/$bundle" $files)
    echo "gpu_bundle: $(du -h $bundle | cut -f1) in $bundle"
    ;;
  setup)
    [ -f "$bundle" ] || { echo "gpu_bundle: $bundle is missing (carry it)" >&2; exit 1; }
    mkdir -p build && tar xzf "$bundle" -C build
    cache=build/CMakeCache.txt
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    bin=$(sed -n 's/^anvil_BINARY_DIR:STATIC=//p' "$cache")
    py=$(sed -n 's/^ANVIL_PYTHON:FILEPATH=//p' "$cache")
    here=$(pwd)
    if [ "$src" != "$here" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")"; ln -s "$here" "$src"; fi
    [ "$bin" = "$src/build" ] || { [ -e "$bin" ] || { mkdir -p "$(dirname "$bin")"; ln -s "$here/build" "$bin"; }; }
    if [ -n "$py" ] && [ ! -e "$py" ]; then mkdir -p "$(dirname "$py")"; ln -s "$(command -v python3)" "$py"; fi
    echo "gpu_bundle: build at $bin, sources at $src, python $py"
    ;;
  *) echo "usage: tests/gpu_bundle.sh pack [BUILD] | setup" >&2; exit 2 ;;
esac
