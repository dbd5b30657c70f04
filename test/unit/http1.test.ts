// The pass-through proxy's HTTP/1.1 parsing: strict heads, unambiguous body framing (the
// request-smuggling cases are refused), and a chunked-body tracker that finds the exact end of a
// body however the bytes are split.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { BodyTracker, parseRequestHead, parseResponseHead, requestFraming, responseFraming, type Head } from "../../src/formats/http1.js";

const req = (text: string) => parseRequestHead(Buffer.from(text, "latin1"));
const head = (text: string): Head => {
  const r = req(text);
  assert.equal(r.kind, "head", `${JSON.stringify(text)}: ${JSON.stringify(r)}`);
  return (r as { head: Head }).head;
};

test("request heads: fields, lower-case names, trimmed values, length up to the blank line", () => {
  const text = "GET /a?b=1 HTTP/1.1\r\nHost: app\r\nCookie:  x=1 \r\nX-Y: a, b\r\n\r\nNEXT";
  const h = head(text);
  assert.equal(h.method, "GET");
  assert.equal(h.target, "/a?b=1");
  assert.equal(h.minor, 1);
  assert.deepEqual(h.headers, [["host", "app"], ["cookie", "x=1"], ["x-y", "a, b"]]);
  assert.equal(h.length, text.length - 4);
  assert.equal(req("GET / HTTP/1.1\r\nHost: a\r\n").kind, "incomplete");
  assert.equal(head("GET / HTTP/1.0\r\n\r\n").minor, 0);
});

test("request heads: every malformed or ambiguous form is refused", () => {
  const bad = [
    "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / http/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n",
    "\r\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "GET / HTTP/1.1\r\n: a\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n",
    "GET /\xe9 HTTP/1.1\r\n\r\n",
  ];
  for (const text of bad) assert.equal(req(text).kind, "bad", JSON.stringify(text));
  assert.deepEqual(parseRequestHead(Buffer.alloc(20_000, 0x41)), { kind: "bad", reason: "head too large" });
  assert.equal(req(`GET / HTTP/1.1\r\n${"X: y\r\n".repeat(101)}\r\n`).kind, "bad");
});

test("request framing: smuggling shapes are refused; lengths must agree", () => {
  const framing = (headers: string) => requestFraming(head(`POST / HTTP/1.1\r\nHost: a\r\n${headers}\r\n`));
  assert.deepEqual(framing(""), { kind: "none" });
  assert.deepEqual(framing("Content-Length: 0\r\n"), { kind: "none" });
  assert.deepEqual(framing("Content-Length: 12\r\n"), { kind: "length", bytes: 12 });
  assert.deepEqual(framing("Content-Length: 12\r\nContent-Length: 12\r\n"), { kind: "length", bytes: 12 });
  assert.deepEqual(framing("Transfer-Encoding: Chunked\r\n"), { kind: "chunked" });
  for (const h of [
    "Content-Length: 12\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "Content-Length: 12\r\nContent-Length: 13\r\n",
    "Content-Length: 12, 13\r\n", "Content-Length: -1\r\n", "Content-Length: 1e3\r\n", "Content-Length: \r\n", "Content-Length: 0x10\r\n",
    "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "Transfer-Encoding: xchunked\r\n", "Transfer-Encoding: chunked, identity\r\n",
  ]) assert.equal(framing(h).kind, "bad", JSON.stringify(h));
});

test("response framing: HEAD, 1xx, 204 and 304 have no body; chunked, length or until close", () => {
  const res = (text: string) => {
    const r = parseResponseHead(Buffer.from(text, "latin1"));
    assert.equal(r.kind, "head", text);
    return (r as { head: Head }).head;
  };
  assert.deepEqual(responseFraming(res("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "HEAD"), { kind: "none" });
  assert.deepEqual(responseFraming(res("HTTP/1.1 204 No Content\r\n\r\n"), "GET"), { kind: "none" });
  assert.deepEqual(responseFraming(res("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"), "GET"), { kind: "none" });
  assert.deepEqual(responseFraming(res("HTTP/1.1 100 Continue\r\n\r\n"), "POST"), { kind: "none" });
  assert.deepEqual(responseFraming(res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET"), { kind: "chunked" });
  assert.deepEqual(responseFraming(res("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "GET"), { kind: "length", bytes: 5 });
  assert.deepEqual(responseFraming(res("HTTP/1.1 200 OK\r\n\r\n"), "GET"), { kind: "close" });
  assert.deepEqual(responseFraming(res("HTTP/1.0 200\r\n\r\n"), "GET"), { kind: "close" });
  assert.equal(responseFraming(res("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET").kind, "bad");
  assert.equal(parseResponseHead(Buffer.from("HTTP/1.1 20 OK\r\n\r\n")).kind, "bad");
  assert.equal(parseResponseHead(Buffer.from("HTTP/1.1 200 OK\r\n")).kind, "incomplete");
});

function chunked(parts: Buffer[], trailers = ""): Buffer {
  return Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from("\r\n")]), Buffer.from(`0\r\n${trailers}\r\n`)]);
}

test("chunked tracker: finds the end exactly, for any split of the bytes", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 6 }), fc.boolean(), fc.array(fc.nat(300), { maxLength: 8 }), (parts, trailer, cuts) => {
      const body = chunked(parts.map((p) => Buffer.from(p)), trailer ? "X-Sum: 1\r\n" : "");
      const stream = Buffer.concat([body, Buffer.from("GET /next HTTP/1.1\r\n")]);
      const t = new BodyTracker({ kind: "chunked" });
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      let consumed = 0;
      let from = 0;
      for (const to of [...points, stream.length]) {
        const piece = stream.subarray(from, to);
        if (!t.done) consumed += t.consume(piece);
        from = to;
      }
      return t.done && consumed === body.length;
    }),
    { numRuns: 300 },
  );
});

test("chunked tracker: malformed framing throws; length tracker stops at the length", () => {
  for (const bad of ["zz\r\n", "5\r\nabcdeXX", "5\nabcde\r\n", "\r\n", "1234567890123456\r\n", "0\r\nbad trailer\n"]) {
    assert.throws(() => new BodyTracker({ kind: "chunked" }).consume(Buffer.from(bad)), Error, JSON.stringify(bad));
  }
  const t = new BodyTracker({ kind: "chunked" });
  assert.equal(t.consume(Buffer.from("5;ext=1\r\nabcde\r\n0\r\n\r\nrest")), 21, "up to the end of the body, not the next message");
  assert.equal(t.done, true);
  const l = new BodyTracker({ kind: "length", bytes: 4 });
  assert.equal(l.consume(Buffer.from("ab")), 2);
  assert.equal(l.done, false);
  assert.equal(l.consume(Buffer.from("cdef")), 2);
  assert.equal(l.done, true);
  assert.equal(new BodyTracker({ kind: "none" }).done, true);
});
