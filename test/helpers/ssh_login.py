#!/usr/bin/python3
"""Log in to an sshd with paramiko: public key first (unless --no-key), then keyboard-interactive
answering every prompt with ANSWER (or, with --password, the "password" method with ANSWER);
run `id -un`. Prints JSON: {"ok", "stage", "remote", "prompts"}."""
import json
import sys
import paramiko

host, port, user, keyfile, answer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
use_key = "--no-key" not in sys.argv
use_password = "--password" in sys.argv
prompts = []
result = {"ok": False, "stage": "connect", "remote": None, "prompts": prompts}
t = paramiko.Transport((host, port))
try:
    t.start_client(timeout=10)
    if use_key:
        result["stage"] = "publickey"
        rest = t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(keyfile))
        result["after_publickey"] = rest
    if use_password:
        result["stage"] = "password"
        t.auth_password(user, answer)
    else:
        result["stage"] = "keyboard-interactive"

        def handler(title, instructions, ps):
            prompts.append([p for p, _ in ps])
            return [answer for _ in ps]

        t.auth_interactive(user, handler)
    result["stage"] = "command"
    ch = t.open_session(timeout=10)
    ch.exec_command("id -un")
    out = ch.makefile().read().decode().strip()
    result["remote"] = out
    result["ok"] = ch.recv_exit_status() == 0 and out == user
except Exception as e:  # noqa: BLE001 - any failure is a refused login for the test
    result["error"] = f"{type(e).__name__}: {e}"
finally:
    t.close()
print(json.dumps(result))
