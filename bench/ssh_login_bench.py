#!/usr/bin/python3
"""Time full SSH logins (key + keyboard-interactive code + one command) against one sshd, switching
its PAM service file between variants before each login, interleaved. Prints JSON
{variant: [milliseconds, ...]}.

usage: ssh_login_bench.py HOST PORT USER KEYFILE SECRET PAMFILE RUNS NAME=STACKFILE...
"""
import json
import shutil
import sys
import time

import paramiko
import pyotp

host, port, user, keyfile, secret, pamfile, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
variants = [a.split("=", 1) for a in sys.argv[8:]]
key = paramiko.Ed25519Key.from_private_key_file(keyfile)
totp = pyotp.TOTP(secret)
times = {name: [] for name, _ in variants}


def login():
    t = paramiko.Transport((host, port))
    try:
        t.start_client(timeout=10)
        t.auth_publickey(user, key)
        t.auth_interactive(user, lambda title, instr, ps: [totp.now() for _ in ps])
        ch = t.open_session(timeout=10)
        ch.exec_command("true")
        if ch.recv_exit_status() != 0:
            raise RuntimeError("command failed")
    finally:
        t.close()


for i in range(runs + 2):
    for name, stack in variants:
        shutil.copyfile(stack, pamfile)
        start = time.perf_counter()
        login()
        elapsed = (time.perf_counter() - start) * 1000
        if i >= 2:  # warm-up
            times[name].append(elapsed)
print(json.dumps(times))
