#!/usr/bin/env bash
# Make sure the native multiscalar backend can be built: libdecaf's headers, a C
# compiler, and the headers of the Python that builds it ($1). As root on a
# Debian-like system, missing ones are installed with apt-get. Otherwise, or
# when apt-get fails, it says in one line that the slower libsodium backend is
# used and how to get the native one, and exits 2 (the caller goes on).
# VEIL_MSM_DECAF_HEADER and VEIL_MSM_NO_APT=1 exist for its test.
set -u
python="$1"
header="${VEIL_MSM_DECAF_HEADER:-/usr/include/decaf/decaf/point_255.h}"
missing=()
[ -f "$header" ] || missing+=(libdecaf-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[ -f "$include/Python.h" ] || missing+=(python3-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
hint="the slower libsodium multiscalar backend is in use; for the native one (3-6x faster verification) run as root: apt-get install ${missing[*]} && make install"
if [ "$(id -u)" != 0 ] || [ "${VEIL_MSM_NO_APT:-}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "privacy.msm: missing ${missing[*]}: $hint"
    exit 2
fi
echo "privacy.msm: installing ${missing[*]} with apt-get for the native multiscalar backend ..."
if ! { apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; }; then
    echo "privacy.msm: apt-get could not install ${missing[*]}: $hint"
    exit 2
fi
