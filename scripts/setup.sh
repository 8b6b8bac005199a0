#!/usr/bin/env bash
# Install what a fresh machine lacks, then the project into a virtual environment (reused if current).
#   VENV=path   where the virtual environment lives (default .venv)
#   PYTHON=exe  the Python that creates it (default python3; 3.10 or newer)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Debian packages, as "command:package": the host C++ compiler links TVM's exported libraries; the
# cross compilers link Raspberry Pi builds; qemu-user runs the emulated Raspberry Pi; the Arm GNU
# toolchain with newlib builds microcontroller firmware, which qemu-system-arm runs on emulated boards.
need=()
for pair in g++:g++ make:make aarch64-linux-gnu-g++:g++-aarch64-linux-gnu \
            arm-linux-gnueabihf-g++:g++-arm-linux-gnueabihf qemu-aarch64:qemu-user \
            arm-none-eabi-gcc:gcc-arm-none-eabi qemu-system-arm:qemu-system-arm; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -d /usr/lib/arm-none-eabi/newlib ] || need+=(libnewlib-arm-none-eabi)
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The instruction-counting qemu plugin (C, built with the host gcc into the cache; cached by its source's hash).
build_plugin() { "$VENV/bin/python" -m edge_mnv2.remote.instructions.plugin >/dev/null; }

stamp="$VENV/.edge-mnv2-installed"
want=$(cat pyproject.toml setup.py MANIFEST.in scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  build_plugin
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "setup: installing edge-mnv2 and its dependencies into $VENV (first time: a few minutes)"
# torch first and pinned: 2.13.0 is the local CPU build; letting a resolver pick torch pulls CUDA.
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
build_plugin
echo "$want" > "$stamp"
