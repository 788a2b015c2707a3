#!/usr/bin/env bash
# Install the Debian packages quarters needs, when they are missing.
# As root: installs them with apt-get. Otherwise: names them and stops.
set -euo pipefail
# gdal-bin (GDAL 3.6, ogrinfo/ogr2ogr) and python3-qgis (QGIS 3.22, headless) are real OGC API
# clients the tests read the server with (tests/test_gdal_client.py, tests/test_qgis_client.py)
packages=(postgresql-15-postgis-3 chromium gdal-bin python3-qgis)
[ "${1:-}" = "--bench" ] && packages+=(wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "quarters needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
