#!/bin/sh
# Runs inside `docker build` (see Dockerfile), as one RUN step, offline:
#  1. checks the installer (pip's own wheel) against installer.sha256 and runs pip from the wheel
#     (pip is not installed into the image);
#  2. installs exactly requirements.txt (--no-index --require-hashes: every wheel hash-pinned)
#     into /opt/vault/site, without pip's cache and without compiling;
#  3. copies the reference's source next to it and writes the vault-reference launcher;
#  4. compiles .pyc with --invalidation-mode checked-hash (no mtimes inside, same bytes each build);
#  5. normalises owners and modes, removes the build context, and clamps every mtime newer than
#     SOURCE_DATE_EPOCH to it (linuxkit copies mtimes into the customer ramdisk: PCR2, 9.5.3).
set -eu
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (Dockerfile ARG)}"
ctx=/tmp/build
prefix=/opt/vault
site=$prefix/site
export PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
python=$(command -v python3)

cd "$ctx/wheels"
sha256sum --check --strict --quiet "$ctx/installer.sha256"
installer=$ctx/wheels/$(awk 'NR == 1 { print $2 }' "$ctx/installer.sha256")
cd /

"$python" "$installer/pip" install --no-index --find-links "$ctx/wheels" --require-hashes \
    --only-binary :all: --no-compile --no-warn-script-location --target "$site" -r "$ctx/requirements.txt"

# console scripts of the dependencies (cbor2, cffi-gen-src): not used in the enclave
rm -rf "$site/bin"
cp -R "$ctx/app/reference" "$site/reference"
mkdir -p /usr/local/bin
cat > /usr/local/bin/vault-reference <<LAUNCHER
#!$python -I
import sys
sys.path.insert(0, "$site")
from reference.cli import main
sys.exit(main())
LAUNCHER

"$python" -m compileall -q -j 1 --invalidation-mode checked-hash "$site"

chown -R 0:0 "$prefix" /usr/local/bin/vault-reference
find "$prefix" -type d -exec chmod 0755 {} +
find "$prefix" -type f -exec chmod 0644 {} +
chmod 0755 /usr/local/bin/vault-reference

rm -rf "$ctx"
# /proc, /sys, /dev and the files Docker bind-mounts during RUN are not part of the layer.
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /etc/hosts -o -path /etc/hostname \
    -o -path /etc/resolv.conf \) -prune -o -newermt "@$SOURCE_DATE_EPOCH" \
    -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
