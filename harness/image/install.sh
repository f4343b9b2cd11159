#!/bin/sh
# Runs inside `docker build --network=none` (see Dockerfile), as one RUN step:
#  1. runs pip from its own wheel (pip is not installed into the image);
#  2. installs the project's wheel and its dependencies from wheels/ only (--no-index) into
#     /opt/vault-harness/site;
#  3. writes launchers for vault-harness and vault-eif, and removes the build context.
set -eu
ctx=/tmp/build
site=/opt/vault-harness/site
python=$(command -v python3)
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

installer=$(ls "$ctx"/wheels/pip-*.whl | head -n 1)
project=$(ls "$ctx"/wheels/nitro_vault_reference-*.whl | head -n 1)
"$python" "$installer/pip" install --no-index --find-links "$ctx/wheels" --only-binary :all: \
    --no-warn-script-location --target "$site" "$project"
rm -rf "$site/bin"

mkdir -p /usr/local/bin
for tool in vault-harness:nitro_vault.harness.cli vault-eif:nitro_vault.enclave_build.cli; do
  name=${tool%%:*}
  module=${tool#*:}
  cat > "/usr/local/bin/$name" <<LAUNCHER
#!$python -I
import sys
sys.path.insert(0, "$site")
from $module import main
sys.exit(main())
LAUNCHER
  chmod 0755 "/usr/local/bin/$name"
done
rm -rf "$ctx"
