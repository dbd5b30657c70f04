#!/usr/bin/python3
"""Drive a program through a pseudo-terminal like a person: wait for a prompt, type an answer.

usage: pty_drive.py STEPS_JSON -- COMMAND [ARGS...]
STEPS_JSON is a list of [regex, answer]; the answer is typed followed by Enter, except the
special answers "^C" (interrupt) and "^D" (end of input). Prints one JSON object:
{"exit": code or -signal, "output": everything the program wrote, "failed_step": index or null}.
"""
import json
import os
import pty
import re
import select
import sys
import time

steps = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

output = b""


def read_some(timeout):
    global output
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    output += data
    return True


failed = None
pos = 0
for i, (pattern, answer) in enumerate(steps):
    deadline = time.time() + 15
    rx = re.compile(pattern.encode(), re.S)
    while True:
        m = rx.search(output, pos)
        if m:
            pos = m.end()
            break
        if time.time() > deadline or read_some(0.2) is None:
            failed = i
            break
    if failed is not None:
        break
    if answer == "^C":
        os.write(fd, b"\x03")
    elif answer == "^D":
        os.write(fd, b"\x04")
    else:
        os.write(fd, answer.encode() + b"\r")

end = time.time() + 15
while time.time() < end:
    if read_some(0.2) is None:
        break
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
print(json.dumps({"exit": code, "output": output.decode("utf-8", "replace"), "failed_step": failed}))
