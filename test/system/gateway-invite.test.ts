// Self-service enrollment: otpgate invite prints a one-time link; the gateway's page shows a new
// secret, takes a confirming code, and writes the user's state file like otpgate enroll (0400, the
// user's own, accepted by otpgate verify and by pam_google_authenticator.so's format).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { cookieHeader, cookiesFrom, gatewayStateDir, http, login, startGateway, type Reply, type RunningGateway } from "../helpers/gateway.js";
import { enrolledUser, oathTotp, runCli, systemReady, tempDir, throwawayUser } from "../helpers/system.js";

async function rig(t: TestContext, extra: Record<string, unknown> = {}, options: { passwords?: boolean } = {}) {
  const dir = tempDir(t);
  // The password file is the gateway's own: in the directory its user owns.
  const passwords = join(gatewayStateDir(dir), "passwords");
  if (options.passwords) {
    mkdirSync(gatewayStateDir(dir), { mode: 0o700 });
    writeFileSync(passwords, "", { mode: 0o600 });
  }
  const settings = {
    public_url: "https://app.test",
    invites_dir: join(dir, "invites"),
    issuer: "Example Lab",
    allowed_hosts: ["app.test"],
    ...(options.passwords ? { password_file: passwords } : {}),
    ...extra,
  };
  const gw = await startGateway(dir, settings);
  t.after(() => gw.stop());
  // otpgate invite runs with the gateway's own configuration (its user:, keys, sessions).
  return { dir, gw, config: gw.configPath, passwords };
}

function invite(config: string, ...args: string[]): { link: string; path: string; token: string } {
  const r = runCli(["invite", ...args, "--config", config]);
  if (r.status !== 0) throw new Error(`otpgate invite failed: ${r.stderr}`);
  const link = r.stdout.trim();
  const u = new URL(link);
  return { link, path: u.pathname, token: u.pathname.split("/").pop()! };
}

interface EnrollForm {
  readonly page: Reply;
  readonly secret: string;
  readonly fields: Record<string, string>;
  readonly cookies: Record<string, string>;
}

async function openInvite(gw: RunningGateway, path: string, cookies: Record<string, string> = {}): Promise<EnrollForm> {
  const page = await http(gw.base, "GET", path, { cookie: cookieHeader(cookies) });
  assert.equal(page.status, 200, page.body);
  const secret = /<code>([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, "");
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(page.body)![1]!;
  return { page, secret, fields: { csrf: field("csrf"), draft: field("draft") }, cookies: { ...cookies, ...cookiesFrom(page) } };
}

function confirm(gw: RunningGateway, path: string, form: EnrollForm, fields: Record<string, string>): Promise<Reply> {
  return http(gw.base, "POST", path, { cookie: cookieHeader(form.cookies) }, new URLSearchParams({ ...form.fields, ...fields }).toString());
}

describe("otpgate invite + the gateway's enrollment page", () => {
  test("link -> QR page -> confirming code -> state file like enroll; the link works once; the new code signs in", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, config, dir } = await rig(t);
    const user = throwawayUser(t);
    const inv = invite(config, user.name, "--expires", "2h");
    assert.match(inv.link, /^https:\/\/app\.test\/_otpgate\/enroll\/[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(join(dir, "invites")).mode & 0o777, 0o700);
    assert.ok(!readdirSync(join(dir, "invites")).some((n) => readFileSync(join(dir, "invites", n), "utf8").includes(inv.token)), "the token is not on disk");

    const form = await openInvite(gw, inv.path);
    assert.ok(form.page.body.includes(`href="otpauth://totp/${user.name}?secret=${form.secret}&#38;issuer=Example%20Lab"`), "the app shows the issuer and the user");
    assert.match(form.page.body, /<svg[^>]*viewBox/, "an inline QR code (no external assets)");
    assert.match(String(form.page.headers["content-security-policy"]), /default-src 'none'/);
    assert.equal(form.page.headers["cache-control"], "no-store");
    assert.doesNotMatch(form.page.body, /name="password"/, "no password factor configured");
    assert.equal(existsSync(join(user.home, ".google_authenticator")), false, "nothing is written by showing the page");

    const wrong = await confirm(gw, inv.path, form, { code: oathTotp(form.secret, 10) });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /That code did not match/);
    assert.ok(wrong.body.includes(`<code>${form.secret.replace(/(.{4})(?=.)/g, "$1 ")}</code>`), "the same secret is shown again");
    assert.equal(existsSync(join(user.home, ".google_authenticator")), false);

    const done = await confirm(gw, inv.path, form, { code: oathTotp(form.secret) });
    assert.equal(done.status, 200, done.body);
    const codes = [...done.body.matchAll(/<li>([0-9]{8})<\/li>/g)].map((m) => m[1]!);
    assert.equal(codes.length, 5, "five emergency codes shown once");
    const path = join(user.home, ".google_authenticator");
    const st = statSync(path);
    assert.equal(st.mode & 0o777, 0o400);
    assert.equal(st.uid, user.uid);
    assert.equal(readFileSync(path, "latin1"), `${form.secret}\n" RATE_LIMIT 3 30\n" DISALLOW_REUSE\n" TOTP_AUTH\n${codes.join("\n")}\n`, "the layout google-authenticator writes");
    const verify = runCli(["verify", "--user", user.name, oathTotp(form.secret, -1)]);
    assert.equal(verify.status, 0, verify.stderr);

    assert.equal((await http(gw.base, "GET", inv.path)).status, 404, "used once");
    assert.equal((await confirm(gw, inv.path, form, { code: oathTotp(form.secret) })).status, 404);
    assert.equal((await login(gw, user.name, oathTotp(form.secret))).status, 303, "and the new secret signs in");
    await gw.waitForLog(/"event":"enroll","result":"accepted"/);
    assert.doesNotMatch(gw.logs().join("\n"), new RegExp(`${form.secret}|${inv.token}|${codes[0]}`), "no secret, token or code in the log");
  });

  test("refusals: expired, revoked, replaced and forged links; missing CSRF; tampered or foreign drafts; brute force; two confirmations at once", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, config, dir } = await rig(t, { regulation: { max_retries: 3, find_time: "1m", ban_time: "5m" } });
    const user = throwawayUser(t);
    const state = join(user.home, ".google_authenticator");

    const old = invite(config, user.name);
    const current = invite(config, user.name);
    assert.equal((await http(gw.base, "GET", old.path)).status, 404, "a new invitation replaces the old link");
    assert.match((await http(gw.base, "GET", old.path)).body, /Ask your administrator for a new link/);
    assert.equal((await http(gw.base, "GET", "/_otpgate/enroll/" + "A".repeat(43))).status, 404, "a forged token");
    assert.equal((await http(gw.base, "GET", "/_otpgate/enroll/..%2F..%2Fetc%2Fpasswd")).status, 404);

    const list = runCli(["invite", "--list", "--config", config]);
    assert.match(list.stdout, new RegExp(`^${user.name}\\texpires 20`, "m"));
    assert.doesNotMatch(list.stdout, new RegExp(current.token), "--list shows no links");

    const form = await openInvite(gw, current.path);
    const noCsrf = await http(gw.base, "POST", current.path, { cookie: cookieHeader(form.cookies) }, new URLSearchParams({ draft: form.fields.draft!, code: oathTotp(form.secret) }).toString());
    assert.equal(noCsrf.status, 403);
    const tampered = await confirm(gw, current.path, form, { code: oathTotp(form.secret), draft: form.fields.draft!.slice(0, -2) + (form.fields.draft!.endsWith("AA") ? "BB" : "AA") });
    assert.equal(tampered.status, 400);
    assert.match(tampered.body, /Open the link again/);

    // A draft shown for another invitation cannot be confirmed on this one.
    const other = throwawayUser(t);
    const otherInv = invite(config, other.name);
    const otherForm = await openInvite(gw, otherInv.path, form.cookies);
    assert.equal((await confirm(gw, current.path, { ...form, fields: { ...form.fields, draft: otherForm.fields.draft! } }, { code: oathTotp(otherForm.secret) })).status, 400);
    assert.equal(existsSync(state), false);

    // Two confirmations of the same invitation at once: one wins, the other finds it gone.
    const both = await Promise.all([confirm(gw, current.path, form, { code: oathTotp(form.secret) }), confirm(gw, current.path, form, { code: oathTotp(form.secret) })]);
    // The loser either finds the invitation claimed (404) or, when the winner already finished,
    // the account enrolled (409): never a second enrollment.
    const statuses = both.map((r) => r.status).sort();
    assert.equal(statuses[0], 200, `one confirmation wins: ${JSON.stringify(statuses)}`);
    assert.ok(statuses[1] === 404 || statuses[1] === 409, `the other finds the invitation gone or the account enrolled: ${JSON.stringify(statuses)}`);
    assert.equal(readFileSync(state, "latin1").split("\n")[0], form.secret);

    // Brute force against a confirmation page ends in a ban.
    const bf = await openInvite(gw, otherInv.path);
    for (let i = 0; i < 4; i++) assert.equal((await confirm(gw, otherInv.path, bf, { code: String(100000 + i) })).status, 400);
    const banned = await confirm(gw, otherInv.path, bf, { code: oathTotp(bf.secret) });
    assert.equal(banned.status, 429, "banned: even the right code waits");
    assert.equal(existsSync(join(other.home, ".google_authenticator")), false);

    // Revoked and expired invitations.
    const revoke = runCli(["invite", "--revoke", other.name, "--config", config]);
    assert.equal(revoke.status, 0, revoke.stderr);
    assert.equal((await http(gw.base, "GET", otherInv.path)).status, 404);
    assert.equal(runCli(["invite", "--revoke", other.name, "--config", config]).status, 1);
    const third = throwawayUser(t);
    const expiring = invite(config, third.name);
    const file = join(
      dir,
      "invites",
      readdirSync(join(dir, "invites")).find((n) => JSON.parse(readFileSync(join(dir, "invites", n), "utf8")).user === third.name)!,
    );
    writeFileSync(file, readFileSync(file, "utf8").replace(/"expiresAt":[0-9]+/, `"expiresAt":${Date.now() - 1}`));
    assert.equal((await http(gw.base, "GET", expiring.path)).status, 404, "expired");
  });

  test("enrolled users need --replace; the link then replaces the state file; the CLI's errors", async (t) => {
    if (!systemReady(t, ["oathtool"])) return;
    const { gw, config } = await rig(t);
    const { user, secret } = enrolledUser(t);
    const state = join(user.home, ".google_authenticator");
    const before = readFileSync(state, "latin1");
    const cases: [string[], RegExp][] = [
      [["invite", user.name, "--config", config], /already enrolled .*pass --replace/],
      [["invite", "nosuchuser", "--config", config], /there is no account "nosuchuser"/],
      [["invite", user.name], /--config FILE is required/],
      [["invite", user.name, "--config", config, "--expires", "90d", "--replace"], /--expires must be between 1m and 30d/],
      [["invite", user.name, "--config", config, "--expires", "soon", "--replace"], /--expires must be a duration/],
      [["invite", "--list", user.name, "--config", config], /give one USER, or --list, or --revoke USER/],
    ];
    for (const [args, message] of cases) {
      const r = runCli(args);
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, message);
    }
    const asUser = runCli(["invite", user.name, "--config", config, "--replace"], { uid: user.uid, gid: user.gid });
    assert.equal(asUser.status, 2);
    assert.match(asUser.stderr, /run otpgate invite as root/);
    assert.equal(readFileSync(state, "latin1"), before, "nothing changed");

    const inv = invite(config, user.name, "--replace");
    const form = await openInvite(gw, inv.path);
    assert.equal(readFileSync(state, "latin1"), before, "still the old file while the page is open");
    const done = await confirm(gw, inv.path, form, { code: oathTotp(form.secret) });
    assert.equal(done.status, 200, done.body);
    assert.equal(readFileSync(state, "latin1").split("\n")[0], form.secret);
    assert.equal(statSync(state).uid, user.uid);
    assert.equal(runCli(["verify", "--user", user.name, oathTotp(secret)]).status, 1, "the old secret no longer works");

    // Without --replace, a user who enrolled since the invitation keeps the file.
    const late = throwawayUser(t);
    const lateInv = invite(config, late.name);
    assert.equal(runCli(["enroll", "--user", late.name, "-t", "-d", "-W", "-u", "-q"]).status, 0);
    const lateBefore = readFileSync(join(late.home, ".google_authenticator"), "latin1");
    const page = await http(gw.base, "GET", lateInv.path);
    assert.equal(page.status, 409);
    assert.match(page.body, /already has sign-in codes/);
    assert.equal(readFileSync(join(late.home, ".google_authenticator"), "latin1"), lateBefore);
  });

  test("with the password factor on, a user without a password chooses one on the page", async (t) => {
    if (!systemReady(t, ["oathtool", "python3-argon2"])) return;
    const { gw, config, passwords } = await rig(t, {}, { passwords: true });
    const user = throwawayUser(t);
    const inv = invite(config, user.name);
    const form = await openInvite(gw, inv.path);
    assert.match(form.page.body, /name="password" type="password" autocomplete="new-password"/);
    const short = await confirm(gw, inv.path, form, { code: oathTotp(form.secret), password: "short", password2: "short" });
    assert.equal(short.status, 400);
    assert.match(short.body, /at least 10 characters/);
    const differ = await confirm(gw, inv.path, form, { code: oathTotp(form.secret), password: "long enough one", password2: "long enough two" });
    assert.match(differ.body, /The two passwords differ/);
    assert.equal(readFileSync(passwords, "utf8"), "", "nothing written yet");
    assert.equal(existsSync(join(user.home, ".google_authenticator")), false);
    const done = await confirm(gw, inv.path, form, { code: oathTotp(form.secret), password: "long enough one", password2: "long enough one" });
    assert.equal(done.status, 200, done.body);
    assert.match(readFileSync(passwords, "utf8"), new RegExp(`^${user.name}:\\$argon2id\\$`));
    assert.equal((await login(gw, user.name, oathTotp(form.secret), "/", { password: "long enough one" })).status, 303);
  });
});
