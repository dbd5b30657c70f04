#!/usr/bin/env bash
# Installs the Debian packages the system tests and the benchmark use (run as root):
# the reference PAM module and tool, pamtester, oathtool, pyotp, faketime, hyperfine, zbarimg.
set -euo pipefail
packages=(libpam-google-authenticator pamtester oathtool python3-pyotp faketime hyperfine passwd zbar-tools python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; run this script as root" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
