#!/usr/bin/python3
"""A faithful stand-in for RStudio Server's rserver-pam (PamMain.cpp + server_core Pam.cpp):

  rserver-pam USER [SERVICE=rstudio] [REQUIRE_PASSWORD_PROMPT=1]

Refuses a terminal on stdin or stdout, reads the password from stdin (at most 200 bytes, no
newline), then pam_start(SERVICE, USER) -> pam_authenticate -> pam_acct_mgmt with RStudio's
conversation: ECHO_OFF prompts are answered with the password (only prompts matching
\\bpassword:\\s*$ when REQUIRE_PASSWORD_PROMPT is 1, else PAM_CONV_ERR), TEXT_INFO with "",
ECHO_ON and ERROR_MSG get PAM_CONV_ERR. No RHOST/TTY, no setcred, no session. Exit 0 on success.
Writes a trace of the conversation to stderr.
"""
import ctypes
import ctypes.util
import os
import re
import sys

PAM_SUCCESS, PAM_CONV_ERR = 0, 19
PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO = 1, 2, 3, 4

if len(sys.argv) < 2 or len(sys.argv) > 4 or os.isatty(0) or os.isatty(1):
    sys.exit(1)
user = sys.argv[1]
service = sys.argv[2] if len(sys.argv) > 2 else "rstudio"
require = (sys.argv[3] if len(sys.argv) > 3 else "1") == "1"
data = os.read(0, 201)
rest = data
while rest:
    rest = os.read(0, 201)
    data += rest
    if len(data) > 200:
        break
if len(data) > 200:
    sys.exit(1)
password = data

libpam = ctypes.CDLL(ctypes.util.find_library("pam") or "libpam.so.0")
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.calloc.restype = ctypes.c_void_p
libc.strdup.restype = ctypes.c_void_p


class PamMessage(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class PamResponse(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(PamMessage)), ctypes.POINTER(ctypes.POINTER(PamResponse)), ctypes.c_void_p)


class PamConv(ctypes.Structure):
    _fields_ = [("conv", CONV), ("appdata_ptr", ctypes.c_void_p)]


prompt_rx = re.compile(rb"\bpassword:\s*$", re.I)


def conv(n, msgs, resp, _app):
    addr = libc.calloc(n, ctypes.sizeof(PamResponse))
    responses = ctypes.cast(addr, ctypes.POINTER(PamResponse))
    for i in range(n):
        m = msgs[i].contents
        text = m.msg or b""
        if m.msg_style == PAM_PROMPT_ECHO_OFF:
            if require and not prompt_rx.search(text):
                sys.stderr.write(f"[conv] ECHO_OFF {text!r} -> PAM_CONV_ERR\n")
                return PAM_CONV_ERR
            sys.stderr.write(f"[conv] ECHO_OFF {text!r} -> password\n")
            responses[i].resp = libc.strdup(password)
        elif m.msg_style == PAM_TEXT_INFO:
            sys.stderr.write(f"[conv] TEXT_INFO {text!r} -> ''\n")
            responses[i].resp = libc.strdup(b"")
        else:
            sys.stderr.write(f"[conv] style {m.msg_style} {text!r} -> PAM_CONV_ERR\n")
            return PAM_CONV_ERR
    resp[0] = responses
    return PAM_SUCCESS


conv_fn = CONV(conv)
pam_conv = PamConv(conv_fn, None)
handle = ctypes.c_void_p()
libpam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(PamConv), ctypes.POINTER(ctypes.c_void_p)]
rc = libpam.pam_start(service.encode(), user.encode(), ctypes.byref(pam_conv), ctypes.byref(handle))
if rc == PAM_SUCCESS:
    rc = libpam.pam_authenticate(handle, 0)
    sys.stderr.write(f"[pam] authenticate -> {rc}\n")
    if rc == PAM_SUCCESS:
        rc = libpam.pam_acct_mgmt(handle, 0)
        sys.stderr.write(f"[pam] acct_mgmt -> {rc}\n")
    libpam.pam_end(handle, rc)
sys.exit(0 if rc == PAM_SUCCESS else 1)
