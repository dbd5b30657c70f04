#!/usr/bin/python3
"""Log in to an sshd with paramiko: public key, then keyboard-interactive answering the i-th prompt
(counted over every round) with the i-th ANSWER; run `id -un`. Prints JSON: {"ok", "stage",
"remote", "prompts"} (prompts: one list per round sshd sent)."""
import json
import sys
import paramiko

host, port, user, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
answers = list(sys.argv[5:])
prompts = []
result = {"ok": False, "stage": "connect", "remote": None, "prompts": prompts}
t = paramiko.Transport((host, port))
try:
    t.start_client(timeout=10)
    result["stage"] = "publickey"
    t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(keyfile))
    result["stage"] = "keyboard-interactive"

    def handler(title, instructions, ps):
        prompts.append([p for p, _ in ps])
        return [answers.pop(0) if answers else "" for _ in ps]

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
