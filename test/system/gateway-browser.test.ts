// A real browser (Debian's chromium through playwright-core) against otpgate gateway: protected URL
// -> login page -> user + code -> the app; a WebSocket through the gateway; logout; a replayed code;
// and self-service enrollment from an invitation, its QR code read back from a screenshot.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { startGateway, startUpstream } from "../helpers/gateway.js";
import { ROOT, enrolledUser, oathTotp, runCli, systemReady, tempDir, throwawayUser, zbarimg } from "../helpers/system.js";

test("browser: login page, the app behind it, a WebSocket, logout, replay refused", { timeout: 120_000 }, async (t) => {
  if (!systemReady(t, ["chromium", "oathtool"])) return;
  const { chromium } = await import("playwright-core");
  const dir = tempDir(t);
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const { user, secret } = enrolledUser(t);
  const gw = await startGateway(dir, { public_url: "http://127.0.0.1", upstream: `http://127.0.0.1:${upstream.port}`, allowed_hosts: ["127.0.0.1"] });
  t.after(() => gw.stop());
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 390, height: 760 } });
  await page.goto(`${gw.base}/notebook/42`);
  assert.match(page.url(), /\/_otpgate\/login\?rd=%2Fnotebook%2F42$/);
  assert.equal(await page.getByLabel("User name").isVisible(), true);
  const shots = join(ROOT, "build/test-artifacts");
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "gateway-login.png"), fullPage: true });
  t.diagnostic(`screenshot: ${join(shots, "gateway-login.png")}`);

  await page.getByLabel("User name").fill(user.name);
  const code = oathTotp(secret);
  await page.getByLabel("One-time code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${gw.base}/notebook/42`);
  assert.equal((await page.textContent("body"))?.trim(), `upstream page for ${user.name}`);

  const echoed = await page.evaluate(
    (url) =>
      new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send("hello through otpgate");
        ws.onmessage = (e) => resolve(String(e.data));
        ws.onerror = () => reject(new Error("websocket error"));
      }),
    `ws://127.0.0.1:${gw.port}/ws`,
  );
  assert.equal(echoed, "hello through otpgate");

  await page.goto(`${gw.base}/_otpgate/logout`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/_otpgate\/login$/);
  await page.goto(`${gw.base}/notebook/42`);
  assert.match(page.url(), /\/_otpgate\/login/);
  await page.getByLabel("User name").fill(user.name);
  await page.getByLabel("One-time code").fill(code);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForSelector("p.error");
  assert.match((await page.textContent("p.error")) ?? "", /Wrong user name or code/);
});

test("browser: an invitation link shows a QR code that a scanner reads; its code confirms; the new account signs in", { timeout: 120_000 }, async (t) => {
  if (!systemReady(t, ["chromium", "oathtool", "zbarimg"])) return;
  const { chromium } = await import("playwright-core");
  const dir = tempDir(t);
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const user = throwawayUser(t);
  const settings = { public_url: "http://127.0.0.1", upstream: `http://127.0.0.1:${upstream.port}`, allowed_hosts: ["127.0.0.1"], invites_dir: join(dir, "invites"), issuer: "Browser Lab" };
  const gw = await startGateway(dir, settings);
  t.after(() => gw.stop());
  const config = join(dir, "cli.yaml");
  writeFileSync(
    config,
    `public_url: ${gw.base}\ninvites_dir: ${settings.invites_dir}\nkeys_file: ${join(gw.stateDir, "gateway.keys")}\nuser: ${gw.gatewayUser!.name}\ndecision_socket: ${gw.server!.socket}\n`,
  );
  const inv = runCli(["invite", user.name, "--config", config]);
  assert.equal(inv.status, 0, inv.stderr);
  const link = inv.stdout.trim();

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run"],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 390, height: 900 } });
  await page.goto(link);
  const shots = join(ROOT, "build/test-artifacts");
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "gateway-enroll.png"), fullPage: true });
  const qrPng = join(dir, "qr.png");
  await page.locator(".qr").screenshot({ path: qrPng });
  const uri = new URL(zbarimg(qrPng));
  assert.equal(uri.protocol, "otpauth:");
  assert.equal(uri.searchParams.get("issuer"), "Browser Lab");
  const secret = uri.searchParams.get("secret")!;
  await page.getByLabel("The 6-digit code the app shows").fill(oathTotp(secret));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.waitForSelector("ol.codes li");
  assert.equal(await page.locator("ol.codes li").count(), 5);
  assert.equal(readFileSync(join(user.home, ".google_authenticator"), "latin1").split("\n")[0], secret);

  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("User name").fill(user.name);
  await page.getByLabel("One-time code").fill(oathTotp(secret));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${gw.base}/`);
  assert.equal((await page.textContent("body"))?.trim(), `upstream page for ${user.name}`);
});
