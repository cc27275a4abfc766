#!/usr/bin/env bash
# The 64-bit ARM lane: smsguard's aarch64 wheel, cross-built here from the sdist with Debian's
# gcc-aarch64-linux-gnu, installed by the emulated Python's own pip in a root with no compiler; then the
# runtime and `smsguard verify` on a real bundle, with LiteRT, ONNX Runtime and the wheel's native kernel,
# in Raspberry Pi OS's userland (Debian bookworm arm64, Python 3.11) under qemu user-mode emulation of
# the Raspberry Pi CPUs: Cortex-A53 (Pi 3, Zero 2 W), Cortex-A72 (Pi 4, 400) and Cortex-A76 (Pi 5).
# Emulation proves packaging, ABI and numbers, not speed: it prints no timings.
#
#   devices/arm64_lane.sh BUNDLE_DIR [OUT_DIR]  (ARM64_CPUS="cortex-a72" for one CPU only; OUT_DIR keeps the
#                                                wheel; PYTHON=... builds it, 3.11+ with `build`, `auditwheel`)
#
# First run: about 1 minute as root (debootstrap, the aarch64 wheels); later runs reuse the root file
# system in the cache folder. Exit status: 0 when every model matches on every CPU, 1 when one does
# not, 2 for a bad argument, 77 when this machine cannot run the lane (the reason is the last line,
# starting with SKIP).
set -euo pipefail

bundle=${1:?usage: devices/arm64_lane.sh BUNDLE_DIR [OUT_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
cache=${SMSGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smsguard}
root=$cache/arm64-root
cpus=${ARM64_CPUS:-cortex-a53 cortex-a72 cortex-a76}
wheels=("numpy>=1.23" "ai-edge-litert>=1.2" "onnxruntime>=1.17")  # smsguard's base install and its litert and onnx extras
platforms=(manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux2014_aarch64)  # manylinux2014 alone finds no ai-edge-litert

skip() { echo "SKIP: $*" >&2; exit 77; }
step() { echo "* $*" >&2; }
[ -f "$bundle/manifest.json" ] || { echo "ERROR bundle '$bundle' has no manifest.json" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)

# -- tools: Debian's qemu-user-static and debootstrap ------------------------------------------------
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || skip "needs qemu-user-static and debootstrap (apt-get install qemu-user-static debootstrap, as root)"
    step "Installing qemu-user-static and debootstrap"
    { apt-get install -y -q qemu-user-static debootstrap || { apt-get update -q && apt-get install -y -q qemu-user-static debootstrap; }; } >/dev/null 2>&1 ||
        skip "could not install qemu-user-static and debootstrap with apt-get"
fi

# -- the root file system: bookworm arm64 with python3, unpacked without running any ARM code --------
mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    sed -n -E 's/^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?(https?:[^[:space:]]*debian)\/?([[:space:]].*)?$/\3/p' |
    grep -v -- -security | head -n1 || true)  # the Debian mirror this machine's apt already uses
mirror=${mirror:-http://deb.debian.org/debian}
if [ ! -x "$root/usr/bin/python3.11" ]; then
    [ "$(id -u)" = 0 ] || skip "debootstrap needs root to build $root"
    step "Building a Debian bookworm arm64 root in $root from $mirror"
    rm -rf "$root.partial"
    mkdir -p "$cache"
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 bookworm "$root.partial" "$mirror" >"$cache/arm64-debootstrap.log" 2>&1 ||
        { rm -rf "$root.partial"; skip "debootstrap failed (see $cache/arm64-debootstrap.log)"; }
    for deb in "$root.partial"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root.partial"; done
    rm -f "$root.partial"/var/cache/apt/archives/*.deb
    rm -rf "$root"
    mv "$root.partial" "$root"
fi

# -- the aarch64 wheels, installed from the host -----------------------------------------------------
stamp="$root/opt/.site-$(printf '%s ' "${wheels[@]}" | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
    step "Installing ${wheels[*]} for aarch64 into $root/opt/site"
    rm -rf "$root/opt/site" "$root"/opt/.site-*
    python3 -m pip install --quiet --disable-pip-version-check --target "$root/opt/site" "${platforms[@]/#/--platform=}" \
        --only-binary=:all: --python-version 3.11 --implementation cp "${wheels[@]}" >/dev/null 2>&1 ||
        { rm -rf "$root/opt/site"; skip "could not download the aarch64 wheels of ${wheels[*]} from PyPI"; }
    touch "$stamp"
fi

# -- smsguard's aarch64 wheel, cross-built from the sdist with Debian's toolchain ----------------------
# gcc-aarch64-linux-gnu from the host's apt; the Python headers are the root's own version's arm64
# package (libpython3.11-dev), fetched by apt with a private state folder (the host's apt config is
# left alone); setup.py's flags and its stable-ABI tag (cp311-abi3), retagged manylinux by auditwheel.
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    [ "$(id -u)" = 0 ] || skip "needs gcc-aarch64-linux-gnu (apt-get install gcc-aarch64-linux-gnu, as root)"
    step "Installing gcc-aarch64-linux-gnu"
    { apt-get install -y -q gcc-aarch64-linux-gnu || { apt-get update -q && apt-get install -y -q gcc-aarch64-linux-gnu; }; } >/dev/null 2>&1 ||
        skip "could not install gcc-aarch64-linux-gnu with apt-get"
fi
headers=$cache/arm64-python-dev
if [ ! -f "$headers/usr/include/aarch64-linux-gnu/python3.11/pyconfig.h" ]; then
    step "Fetching the arm64 Python 3.11 headers (libpython3.11-dev:arm64)"
    apt_dir=$(mktemp -d)
    mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$apt_dir/sources.list"
    apt_private=(-q -o "Dir::State=$apt_dir/state" -o "Dir::Cache=$apt_dir/cache" -o "Dir::Etc::SourceList=$apt_dir/sources.list"
        -o Dir::Etc::SourceParts=/dev/null -o Dir::State::status=/dev/null -o APT::Architecture=arm64 -o APT::Architectures::=arm64)
    { apt-get "${apt_private[@]}" update && (cd "$apt_dir" && apt-get "${apt_private[@]}" download libpython3.11-dev:arm64); } >"$cache/arm64-headers.log" 2>&1 ||
        { rm -rf "$apt_dir"; skip "could not fetch libpython3.11-dev:arm64 (see $cache/arm64-headers.log)"; }
    rm -rf "$headers.partial"
    dpkg-deb -x "$apt_dir"/libpython3.11-dev_*_arm64.deb "$headers.partial"
    rm -rf "$apt_dir" "$headers"
    mv "$headers.partial" "$headers"
fi
"$python" -c 'import build, auditwheel' 2>/dev/null || skip "needs the build and auditwheel packages in $python (pip install 'smsguard[dev]')"
work=$(mktemp -d)
package=$(mktemp -d "$root/opt/smsguard-lane.XXXXXX")  # this run's install of the wheel, in the root
trap 'rm -rf "$work" "$package"' EXIT
step "Building the sdist, and from it the aarch64 wheel with $(aarch64-linux-gnu-gcc --version | head -n1)"
"$python" -m build --sdist --outdir "$work" "$repo" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; echo "ERROR the sdist could not be built" >&2; exit 1; }
# setuptools with Debian's cross compiler, the root's Python headers, and the target's platform name
env CC=aarch64-linux-gnu-gcc LDSHARED="aarch64-linux-gnu-gcc -shared" CFLAGS="-O2" LDFLAGS="" \
    CPPFLAGS="-I$headers/usr/include/python3.11 -I$headers/usr/include -I$headers/usr/include/aarch64-linux-gnu/python3.11" \
    _PYTHON_HOST_PLATFORM=linux-aarch64 SMSGUARD_NATIVE=required \
    "$python" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir "$work/built" "$work"/smsguard-*.tar.gz >>"$work/build.log" 2>&1 ||
    { tail -20 "$work/build.log" >&2; echo "ERROR the aarch64 wheel could not be built" >&2; exit 1; }
PATH="$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH" \
    "$python" -m auditwheel repair --wheel-dir "$work/wheel" "$work"/built/smsguard-*.whl >>"$work/build.log" 2>&1 ||
    { tail -20 "$work/build.log" >&2; echo "ERROR auditwheel found more than glibc in the aarch64 wheel" >&2; exit 1; }
wheel=$(ls "$work"/wheel/smsguard-*.whl)
[ -z "${2:-}" ] || { mkdir -p "$2" && cp "$wheel" "$2/"; }
step "Built $(basename "$wheel") ($(stat -c %s "$wheel") bytes)"

# -- the wheel, installed by the emulated Python's pip: no compiler in the root, none may be used ----------
for compiler in gcc cc aarch64-linux-gnu-gcc clang; do
    [ ! -e "$root/usr/bin/$compiler" ] || { echo "ERROR the root has a compiler ($root/usr/bin/$compiler): the lane must run without one" >&2; exit 1; }
done
pip_dir=$(dirname "$("$python" -c 'import pip; print(pip.__file__)')")
mkdir -p "$package/pip" && cp -r "$pip_dir" "$package/pip/"  # this run's own copy: lanes may run side by side on one cache
cp "$wheel" "$package/"
# Host paths for what pip writes: under -L, qemu maps a path into the root only when it exists there already.
(cd / && env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 PYTHONPATH="$package/pip" CC=/bin/false PIP_ONLY_BINARY=:all: \
    qemu-aarch64-static -cpu cortex-a72 -L "$root" "$root/usr/bin/python3.11" -m pip install --quiet --no-index --no-deps --root-user-action=ignore \
    --disable-pip-version-check --no-compile --target "$package/site" "$package/$(basename "$wheel")") >&2 ||
    { echo "ERROR the emulated Python's pip did not install $(basename "$wheel")" >&2; exit 1; }
step "Installed $(basename "$wheel") with the emulated Python's pip, in a root with no compiler"

# -- run: each Raspberry Pi CPU ---------------------------------------------------------------------
declare -A part=([cortex-a53]=0xd03 [cortex-a72]=0xd08 [cortex-a76]=0xd0b)
declare -A features=(
    [cortex-a53]="fp asimd evtstrm crc32 cpuid"
    [cortex-a72]="fp asimd evtstrm crc32 cpuid"
    [cortex-a76]="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
)
emulated() {  # CPU COMMAND...: Python 3.11 of the root, on that CPU, with the wheels (smsguard's and its dependencies')
    local cpu=$1; shift
    cd /  # so that `python -` imports smsguard from the installed wheel, not from the caller's folder
    env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 PYTHONPATH="/opt/site:/opt/${package##*/}/site" PYTHONDONTWRITEBYTECODE=1 \
        qemu-aarch64-static -cpu "$cpu" -L "$root" "$root/usr/bin/python3.11" "$@"
}
status=0
for cpu in $cpus; do
    [ -n "${part[$cpu]:-}" ] || { echo "ERROR unknown CPU '$cpu'; choose from: ${!part[*]}" >&2; exit 2; }
    # ONNX Runtime reads /proc/cpuinfo at import and crashes on the host's; under -L it reads this one
    mkdir -p "$root/proc"
    for core in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' \
            "$core" "${features[$cpu]}" "${part[$cpu]}"
    done >"$root/proc/cpuinfo"
    step "Emulated $cpu"
    emulated "$cpu" - "$bundle" <<'PY' || status=1
import importlib.metadata as m, json, platform, sys
from smsguard.runtime import Classifier
print(f"* Python {platform.python_version()} on {platform.machine()} ({platform.libc_ver()[0]} {platform.libc_ver()[1]}): "
      + ", ".join(f"{d} {m.version(d)}" for d in ("numpy", "ai-edge-litert", "onnxruntime")), file=sys.stderr)
from smsguard.runtime import _native
kernel = _native.extension().__file__.split("/site/")[1] if _native.available() else "none"
print(f"* native kernel: {_native.best_isa() or 'not built'} ({kernel})", file=sys.stderr)
texts = ["WINNER!! Claim your £900 prize now, call 09061701461", "Are we still on for dinner tonight?"]
for backend in ("litert", "onnxruntime", "native"):
    classifier = Classifier.load(sys.argv[1], backend=backend)
    labels = classifier.predict(texts)
    print(json.dumps({"cpu": platform.machine(), "backend": backend, "model": classifier.model.name, "labels": labels}))
    assert labels == ["spam", "ham"], labels
PY
    emulated "$cpu" -m smsguard verify "$bundle" || status=1
done
exit $status
