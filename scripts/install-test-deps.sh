#!/usr/bin/env bash
# Installs the Debian packages the system tests and the benchmark use (run as root):
# the reference PAM module and tool, pamtester, oathtool, pyotp, argon2-cffi, openssl, faketime, hyperfine, zbarimg,
# OpenSSH server and client, paramiko, pam_radius_auth, nginx, caddy (the README's Caddy setup), chromium, PostgreSQL (the fleet store's tests start throwaway clusters with initdb + pg_ctl). Package scripts may not start any daemon (policy-rc.d):
# the tests start their own sshd on loopback and never touch the machine's.
set -euo pipefail
packages=(libpam-google-authenticator pamtester oathtool python3-pyotp faketime hyperfine passwd zbar-tools python3 openssh-server openssh-client python3-paramiko libpam-radius-auth freeradius-utils nftables systemd nginx caddy chromium wrk python3-argon2 openssl postgresql)
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
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ "$had_policy" = 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
