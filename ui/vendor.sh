#!/usr/bin/env bash
# Re-vendor the UI's browser libraries from the npm registry, reproducibly:
# versions are pinned in ui/package.json and ui/package-lock.json (with
# integrity hashes); `npm ci` installs exactly those, then the ES module
# builds and their licences are copied into ui/vendor/. The copies are
# committed, so building Skein never needs Node. Run: bash ui/vendor.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp package.json package-lock.json "$tmp/"
npm ci --prefix "$tmp" --ignore-scripts --no-audit --no-fund >/dev/null
mkdir -p vendor
cp "$tmp/node_modules/js-yaml/dist/js-yaml.mjs" vendor/js-yaml.mjs
cp "$tmp/node_modules/js-yaml/LICENSE" vendor/js-yaml.LICENSE.txt
version=$(node -p "require('$tmp/node_modules/js-yaml/package.json').version")
echo "vendored js-yaml $version into ui/vendor/"
sha256sum vendor/js-yaml.mjs
