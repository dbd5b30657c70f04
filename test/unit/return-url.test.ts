// Return URLs (issue 9, item 8): whatever the browser sends, the result can be written as a
// Location header (printable ASCII), non-ASCII is percent-encoded the same way everywhere, and no
// encoding trick opens a redirect.
import assert from "node:assert/strict";
import { test } from "node:test";
import { validateHeaderValue } from "node:http";
import { safeReturnUrl } from "../../src/core/web/index.js";

const policy = { allowedHosts: ["app.example.com", "bücher.example", "rstudio.example.com:8443"], fallback: "/" };
const safe = (raw: string) => safeReturnUrl(raw, policy);

test("non-ASCII in local paths is percent-encoded as UTF-8, raw or already encoded alike", () => {
  assert.equal(safe(new URLSearchParams("rd=/%C4%80").get("rd")!), "/%C4%80", "the form decodes rd=/%C4%80 to /\u0100");
  assert.equal(safe("/%C4%80"), "/%C4%80", "already encoded stays as it is");
  assert.equal(safe("/\u0100"), "/%C4%80");
  assert.equal(safe("/caf\u00e9?q=\u00fc#\u00e4"), "/caf%C3%A9?q=%C3%BC#%C3%A4", "path, query and fragment");
  assert.equal(safe("/\u{1f600}"), "/%F0%9F%98%80", "astral characters as 4 bytes");
  assert.equal(safe('/a b"<x>`{|}^'), "/a%20b%22%3Cx%3E%60%7B%7C%7D%5E", "characters a URI cannot carry");
  assert.equal(safe("/a?x=1&y=%2F#top"), "/a?x=1&y=%2F#top", "what a URI may carry is kept byte for byte");
  assert.equal(safe("/\ud800"), "/", "a lone surrogate cannot be encoded: refused");
  assert.equal(safe("/\u0085x"), "/", "C1 control characters are refused like C0");
  assert.equal(safe("/%C2%85x"), "/", "also when encoded");
});

test("absolute URLs: IDN hosts become punycode, non-ASCII in path and query is encoded; the allow-list matches either spelling", () => {
  assert.equal(safe("https://bücher.example/\u0100?q=\u00e9"), "https://xn--bcher-kva.example/%C4%80?q=%C3%A9");
  assert.equal(safe("https://xn--bcher-kva.example/x"), "https://xn--bcher-kva.example/x");
  assert.equal(safe("https://app.example.com/?next=https://bücher.example"), "https://app.example.com/?next=https://b%C3%BCcher.example");
  assert.equal(safe("https://app.example.com/a|b^c"), "https://app.example.com/a%7Cb%5Ec");
  assert.equal(safe("https://bucher.example/"), "/", "a look-alike host is not allowed");
  assert.equal(safe("https://b\u00fccher.example.evil.test/"), "/");
  assert.equal(safe("https://app.example.com/\ud800"), "/", "a lone surrogate in an absolute URL");
});

test("every result can be written as a Location header, whatever the input", () => {
  const inputs = ["/\u0100", "/%C4%80", "/%E0%A4%A", "/%", "https://app.example.com/\u0100", "/\u2028", "/\ufeff", "/x\u00ff", "https://bücher.example/ü", "/" + "\u0100".repeat(2000)];
  for (let cp = 0x20; cp < 0x3000; cp += 7) inputs.push(`/p${String.fromCodePoint(cp)}q?${String.fromCodePoint(cp)}`);
  for (const raw of inputs) {
    const out = safe(raw);
    assert.match(out, /^[\x21-\x7e]+$/, JSON.stringify(raw.slice(0, 20)));
    assert.doesNotThrow(() => validateHeaderValue("location", out));
    assert.ok(out === "/" || out.startsWith("/") || out.startsWith("https://"), out);
    assert.ok(!out.startsWith("//"), out);
  }
  assert.equal(safe("/" + "\u0100".repeat(2000)), "/", "too long once encoded: the fallback");
});

test("encoding does not open redirects: the old tricks still fall back", () => {
  for (const url of [
    "//evil.com",
    "/\\evil.com",
    "/%2F%2Fevil.com",
    "/%252F%252Fevil.com",
    "/%5Cevil.com",
    "https:evil.com",
    "https://evil.com",
    "https://app.example.com@evil.com/",
    "\u3002/evil.com",
    "/\uff0f\uff0fevil.com/../",
  ]) {
    const out = safe(url);
    const target = new URL(out, "https://app.example.com/");
    assert.equal(target.host, "app.example.com", `${JSON.stringify(url)} -> ${out}`);
  }
  assert.equal(safe("/\uff0f\uff0fevil.com"), "/%EF%BC%8F%EF%BC%8Fevil.com", "full-width slashes are encoded, not folded into //");
});
