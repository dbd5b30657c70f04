# A local attacker squatting an abstract socket name (argv: mode, the name without its leading NUL, in hex).
# bind: bind only (connects are refused); garbage: listen and answer 20 zero bytes to anything;
# silent: listen, accept and never answer. Prints "ready" once the name is taken.
import socket, sys, threading, time
mode, name = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\0" + name)
if mode != "bind":
    s.listen(64)
print("ready", flush=True)
held = []
def serve():
    while True:
        c, _ = s.accept()
        held.append(c)
        if mode == "garbage":
            try:
                c.recv(16); c.sendall(b"\0" * 20); c.close()
            except OSError:
                pass
if mode != "bind":
    threading.Thread(target=serve, daemon=True).start()
time.sleep(120)
