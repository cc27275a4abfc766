#!/usr/bin/env bash
# The older-runtime lane: `smsguard verify` and `smsguard predict` on a real bundle with tflite-runtime
# 2.14 (its last release) and numpy < 2, in a virtual environment of its own holding nothing else but
# smsguard's base install (numpy only). The environment is kept in the cache folder for reruns.
#
#   devices/tflite_runtime_lane.sh BUNDLE_DIR
#   devices/tflite_runtime_lane.sh --find-python     (prints the Python the lane would build its environment with)
#
# tflite-runtime 2.14 was built for CPython 3.8-3.11 only: the lane takes the first of python3.11 ...
# python3.8, python3, /usr/bin/python3 that is one of those and can make a virtual environment (or
# PYTHON=..., alone, when set), whatever the first python3 on PATH is.
#
# Exit status: verify's (0: every model of the bundle runs in tflite-runtime and matches the export
# machine), 2 for a bad argument, 77 when this machine cannot run the lane (the reason is the last line,
# starting with SKIP).
set -euo pipefail

bundle=${1:?usage: devices/tflite_runtime_lane.sh BUNDLE_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${SMSGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smsguard}
venv=$cache/tflite-runtime-2.14
candidates=(${PYTHON:-python3.11 python3.10 python3.9 python3.8 python3 /usr/bin/python3})
requirements=("tflite-runtime==2.14.*" "numpy<2")

unset PYTHONPATH PYTHONHOME  # the lane's environment must import the smsguard it installs, never a checkout
skip() { echo "SKIP: $*" >&2; exit 77; }

find_python() {  # the first candidate that is CPython 3.8-3.11 and can make a virtual environment with pip
    local candidate probe
    probe=$(mktemp -d)
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))' >/dev/null 2>&1 &&
            "$candidate" -m venv "$probe/venv" >/dev/null 2>&1; then
            rm -rf "$probe"
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
        rm -rf "$probe/venv"
    done
    rm -rf "$probe"
    return 1
}
no_python="tflite-runtime 2.14 needs CPython 3.8 to 3.11 with venv; none of ${candidates[*]} is one (Debian: apt-get install python3-venv on bookworm; or set PYTHON=)"
if [ "$bundle" = --find-python ]; then
    find_python || skip "$no_python"
    exit 0
fi
[ -f "$bundle/manifest.json" ] || { echo "ERROR bundle '$bundle' has no manifest.json" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64) ;;
    *) skip "tflite-runtime 2.14 has no wheel for $(uname -s) $(uname -m)" ;;
esac

stamp="$venv/.installed-$(printf '%s ' "${requirements[@]}" | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
    python=$(find_python) || skip "$no_python"
    echo "* Creating $venv with $python ($("$python" -V 2>&1)) and ${requirements[*]}" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" "setuptools>=77" ||
        { rm -rf "$venv"; skip "could not install ${requirements[*]} from PyPI"; }
    touch "$stamp"
fi
# smsguard from this checkout, as a device installs it: `pip install smsguard` plus one runtime, no
# extras. Built from a copy, so that the checkout gets no build/ folder.
source=$(mktemp -d)
trap 'rm -rf "$source"' EXIT
cp -r "$repo/pyproject.toml" "$repo/setup.py" "$repo/README.md" "$repo/LICENSE" "$repo/smsguard" "$source"
find "$source/smsguard" \( -name "*.so" -o -name __pycache__ \) -prune -exec rm -rf {} +  # built again by pip, for this Python
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps "$source"
"$venv/bin/python" -m pip check --disable-pip-version-check >&2

cd "$cache"  # so that smsguard is imported from the environment, not from the checkout
"$venv/bin/python" - <<'PY' >&2
import importlib.metadata as m, platform, smsguard
print(f"* Python {platform.python_version()} on {platform.machine()}: tflite-runtime {m.version('tflite-runtime')}, "
      f"numpy {m.version('numpy')}, smsguard {m.version('smsguard')} from {smsguard.__file__}")
PY
"$venv/bin/smsguard" predict --bundle "$bundle" --backend tflite-runtime --model model.float32.tflite \
    "WINNER!! Claim your £900 prize now, call 09061701461" "Are we still on for dinner tonight?"
"$venv/bin/smsguard" verify "$bundle" --backend tflite-runtime
