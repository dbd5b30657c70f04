#!/usr/bin/env bash
# Regenerates test/fixtures/google-authenticator/: state files written by the real
# google-authenticator tool (Debian's libpam-google-authenticator) for many flag combinations.
# Each fixture NAME.ga comes with NAME.flags (the flags used). The tests parse every fixture,
# serialize it back byte for byte, and rebuild it from its settings with otpgate's writer.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/google-authenticator"
command -v google-authenticator >/dev/null || { echo "install libpam-google-authenticator first" >&2; exit 2; }
mkdir -p "$out"
rm -f "$out"/*.ga "$out"/*.flags
n=0
gen() {
  local name=$1; shift
  n=$((n + 1))
  HOME=/tmp google-authenticator "$@" -f -C -Q NONE -q -s "$out/$name.ga" </dev/null >/dev/null
  printf '%s\n' "$*" > "$out/$name.flags"
}
gen totp-default-reuse-rate -t -d -r 3 -R 30 -w 3
gen totp-allow-reuse-norate -t -D -u -W
gen totp-window17 -t -d -u -w 17
gen totp-window1 -t -D -u -w 1
gen totp-window21-rate10 -t -d -w 21 -r 10 -R 600
gen totp-step60 -t -D -W -u -S 60 -e 10
gen totp-step1-rate1 -t -d -S 1 -r 1 -R 15 -w 5
gen totp-no-codes -t -d -u -W -e 0
gen totp-one-code -t -D -u -w 3 -e 1
gen totp-ten-codes -t -d -r 5 -R 120 -w 4 -e 10
gen hotp-window5 -c -w 5 -u -e 3
gen hotp-minimal -c -W -u
gen hotp-rate -c -w 3 -r 2 -R 60
gen hotp-step-ignored -c -S 45 -u -w 2 -e 2
echo "wrote $n fixtures to $out"
