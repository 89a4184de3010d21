#!/usr/bin/env bash
# Installs the Debian packages given as arguments when any is missing. As root it runs apt-get
# (update first: a fresh machine has no package lists); otherwise it prints the exact command and
# exits 2. It also makes OpenBLAS the BLAS that LibTorch uses (~18x faster training than the
# reference BLAS that libtorch-dev pulls in).
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "vitlab: missing Debian packages: ${missing[*]}" >&2
    echo "run as root:  $cmd" >&2
    exit 2
  fi
  echo "vitlab: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# Debian's alternatives choose OpenBLAS once libopenblas0-pthread is installed; check, don't assume.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) if [ "$(id -u)" -eq 0 ]; then
       alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas | head -n1 || true)
       [ -n "$alt" ] && update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt"
     else
       echo "vitlab: warning: BLAS is $blas, not OpenBLAS; training will be slow" >&2
     fi ;;
esac
