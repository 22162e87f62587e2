#!/usr/bin/env bash
# Downloads the .deb files of gan's libraries (libpng, libjpeg-turbo, zlib, OpenBLAS, inih, cJSON,
# their -dev packages and the libraries those need), plus pkg-config and the Fashion-MNIST data
# (and CMake with GAN_FETCH_CMAKE=1), into one folder, for tools/gpu-check.sh to unpack on a machine without a package
# registry. Nothing is installed here.
#
#   tools/fetch-debs.sh [DIR]                   DIR defaults to third_party/debs (~45 MB)
#   GAN_FETCH_CMAKE=1 tools/fetch-debs.sh [DIR]  also CMake, for a GPU machine without one
#
# Run it on a machine with apt and the SAME distribution and release as the GPU machine (the same
# container image, for instance): the libraries are built against that release's C library.
# Packages every system has (libc6, libgcc-s1, libstdc++6, ... "Priority: required") are left
# out on purpose: gpu-check.sh puts the unpacked libraries on LD_LIBRARY_PATH, and a second C
# library there would break every program. The folder gets a MANIFEST naming the release.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-third_party/debs}

# What gan links (CMakeLists.txt) or loads (src/blas.c dlopens OpenBLAS), as -dev packages; the
# runtime libraries come with them as dependencies.
wanted=(
  libpng-dev libjpeg-dev zlib1g-dev
  libopenblas-dev libopenblas0-pthread
  libinih-dev libcjson-dev
  pkgconf                      # pkg-config, which CMake uses to find inih and cJSON
  dataset-fashion-mnist        # the data of the short training run (30 MB)
)
# CMake and its libraries (curl, krb5, ICU: ~40 MB more) only when asked for.
if [ "${GAN_FETCH_CMAKE:-0}" = 1 ]; then
  wanted+=(cmake)
fi

# Never shipped: the C and C++ runtime, the toolchain's own packages and the base system (the
# GPU machine has them, matching its compiler; krb5 and OpenSSL come only through libc6-dev),
# and anything of priority required or important.
never='^(libc6|libc6-dev|libc-dev-bin|libc-bin|linux-libc-dev|libgcc-s1|libgcc-[0-9]+-dev|libstdc\+\+6|libstdc\+\+-[0-9]+-dev|gcc-[0-9]+-base|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|rpcsvc-proto|libgomp1|debconf|dpkg|perl|perl-base|perl-modules-[0-9.]+|libperl[0-9.]+|usrmerge|usr-is-merged|init-system-helpers|procps|tar|coreutils|base-files|libgssapi-krb5-2|libkrb5-3|libk5crypto3|libkrb5support0|libkeyutils1|libcom-err2|libssl3)$'

command -v apt-get >/dev/null || { echo "fetch-debs: needs apt-get (run on Debian/Ubuntu)" >&2; exit 1; }

# The packages a real install would bring, as apt resolves them on an empty system (first
# alternatives only, no recommends); then everything a base system already has is dropped.
echo "fetch-debs: resolving dependencies of ${wanted[*]}"
mapfile -t closure < <(apt-get install -s -o Dir::State::Status=/dev/null --no-install-recommends \
                         "${wanted[@]}" | sed -n 's/^Inst \([^ ]*\) .*/\1/p')
[ "${#closure[@]}" -gt 0 ] || { echo "fetch-debs: apt resolved nothing (run apt-get update?)" >&2; exit 1; }

selected=()
for p in "${closure[@]}"; do
  [[ $p =~ $never ]] && continue
  priority=$(apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Priority: //p' | head -1)
  case "$priority" in required|important) continue ;; esac
  selected+=("$p")
done

mkdir -p "$dir"
echo "fetch-debs: downloading ${#selected[@]} packages into $dir"
(cd "$dir" && apt-get download "${selected[@]}")

{
  echo "# .deb files for tools/gpu-check.sh, fetched $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  # shellcheck disable=SC1091
  echo "release: $(. /etc/os-release && echo "$ID $VERSION_ID ($PRETTY_NAME)")"
  echo "architecture: $(dpkg --print-architecture)"
  echo "packages: ${selected[*]}"
} >"$dir/MANIFEST"
du -sh "$dir"
echo "fetch-debs: done; copy $dir to the GPU machine (same path in the checkout) and run tools/gpu-check.sh"
