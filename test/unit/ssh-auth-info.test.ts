import assert from "node:assert/strict";
import { test } from "node:test";
import { hasCompletedPublickey } from "../../src/core/ssh-auth-info.js";

const KEY = "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

test("SSH_AUTH_INFO_0: only a completed publickey method counts", () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ["", false],
    ["\n", false],
    ["password\n", false],
    ["keyboard-interactive\n", false],
    ["keyboard-interactive-pam\n", false],
    [`${KEY}\n`, true],
    [KEY, true],
    [`password\n${KEY}\n`, true],
    [`${KEY}\nkeyboard-interactive\n`, true],
    ["publickey-hostbound ssh-ed25519 AAAA\n", false],
    ["publickey\n", false],
    ["publickey \n", false],
    ["publickey  ssh-ed25519 AAAA\n", false],
    [" publickey ssh-ed25519 AAAA\n", false],
    ["xpublickey ssh-ed25519 AAAA\n", false],
    ["password publickey ssh-ed25519 AAAA\n", false],
    ["publickey ssh-ed25519 !!!\n", false],
    ["publickey ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ= ID x (serial 1) CA ssh-ed25519 SHA256:abc\n", true],
    ["\u0000publickey ssh-ed25519 AAAA", false],
    ["garbage \u001b[31m\n", false],
  ];
  for (const [info, expected] of cases) assert.equal(hasCompletedPublickey(info), expected, JSON.stringify(info));
});
