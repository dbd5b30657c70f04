// HTTP/1.1 message heads and body framing (RFC 9112), for the gateway's pass-through proxy. Strict
// on purpose: anything a request-smuggling attack needs (both Content-Length and Transfer-Encoding,
// conflicting lengths, codings other than chunked, bare LF, obs-fold, whitespace before the colon,
// control characters) is refused rather than interpreted. Pure functions over bytes.

export interface Head {
  /** Requests: method and request-target; responses: "" */
  readonly method: string;
  readonly target: string;
  /** Responses: status code; requests: 0. */
  readonly status: number;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  readonly minor: number;
  /** Lower-case names, values without surrounding whitespace, in order. */
  readonly headers: readonly (readonly [string, string])[];
  /** Bytes of the head including the blank line. */
  readonly length: number;
}

export type HeadResult = { readonly kind: "incomplete" } | { readonly kind: "bad"; readonly reason: string } | { readonly kind: "head"; readonly head: Head };

export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEADERS = 100;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: [\x09\x20-\x7e\x80-\xff]*)?$/;

function parseHead(buf: Buffer, kind: "request" | "response", limit: number): HeadResult {
  const end = buf.indexOf("\r\n\r\n", 0, "latin1");
  if (end < 0) return buf.length > limit ? { kind: "bad", reason: "head too large" } : { kind: "incomplete" };
  if (end + 4 > limit) return { kind: "bad", reason: "head too large" };
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const first = lines[0]!;
  let method = "";
  let target = "";
  let status = 0;
  let minor: number;
  if (kind === "request") {
    const m = REQUEST_LINE.exec(first);
    if (!m) return { kind: "bad", reason: "malformed request line" };
    method = m[1]!;
    target = m[2]!;
    minor = Number(m[3]);
  } else {
    const m = STATUS_LINE.exec(first);
    if (!m) return { kind: "bad", reason: "malformed status line" };
    minor = Number(m[1]);
    status = Number(m[2]);
  }
  if (lines.length - 1 > MAX_HEADERS) return { kind: "bad", reason: "too many header fields" };
  const headers: (readonly [string, string])[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return { kind: "bad", reason: "malformed header line" };
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (!TOKEN.test(name)) return { kind: "bad", reason: "malformed header name" };
    if (BAD_VALUE.test(value)) return { kind: "bad", reason: "control character in a header" };
    headers.push([name.toLowerCase(), value.trim()]);
  }
  return { kind: "head", head: { method, target, status, minor, headers, length: end + 4 } };
}

export const parseRequestHead = (buf: Buffer, limit = MAX_HEAD_BYTES): HeadResult => parseHead(buf, "request", limit);
export const parseResponseHead = (buf: Buffer, limit = 64 * 1024): HeadResult => parseHead(buf, "response", limit);

/** All values of a header, comma-joined lists split, lower-case names. */
export function headerValues(head: Head, name: string): string[] {
  const out: string[] = [];
  for (const [n, v] of head.headers) if (n === name) for (const part of v.split(",")) if (part.trim()) out.push(part.trim());
  return out;
}

/** Connection: close among the connection options. */
export function asksToClose(head: Head): boolean {
  return headerValues(head, "connection").some((t) => t.toLowerCase() === "close");
}

export type Framing = { readonly kind: "none" } | { readonly kind: "length"; readonly bytes: number } | { readonly kind: "chunked" } | { readonly kind: "close" };
export type FramingResult = Framing | { readonly kind: "bad"; readonly reason: string };

function contentLength(head: Head): number | "absent" | "bad" {
  const values = headerValues(head, "content-length");
  if (values.length === 0) return head.headers.some(([n]) => n === "content-length") ? "bad" : "absent";
  if (!values.every((v) => /^[0-9]{1,15}$/.test(v) && Number(v) === Number(values[0]))) return "bad";
  return Number(values[0]);
}

/** How a request's body is delimited; refuses every ambiguity (RFC 9112 section 6). */
export function requestFraming(head: Head): FramingResult {
  const te = head.headers.filter(([n]) => n === "transfer-encoding");
  const cl = contentLength(head);
  if (te.length > 0) {
    if (cl !== "absent") return { kind: "bad", reason: "both Transfer-Encoding and Content-Length" };
    if (te.length > 1 || te[0]![1].toLowerCase() !== "chunked") return { kind: "bad", reason: "a transfer coding other than chunked" };
    return { kind: "chunked" };
  }
  if (cl === "bad") return { kind: "bad", reason: "invalid Content-Length" };
  return cl === "absent" || cl === 0 ? { kind: "none" } : { kind: "length", bytes: cl };
}

/** How a response's body is delimited, given the request it answers. */
export function responseFraming(head: Head, requestMethod: string): FramingResult {
  if (requestMethod === "HEAD" || (head.status >= 100 && head.status < 200) || head.status === 204 || head.status === 304) return { kind: "none" };
  const te = headerValues(head, "transfer-encoding");
  const cl = contentLength(head);
  if (te.length > 0) {
    if (cl !== "absent") return { kind: "bad", reason: "both Transfer-Encoding and Content-Length" };
    return te[te.length - 1]!.toLowerCase() === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  if (cl === "bad") return { kind: "bad", reason: "invalid Content-Length" };
  return cl === "absent" ? { kind: "close" } : cl === 0 ? { kind: "none" } : { kind: "length", bytes: cl };
}

const enum Chunk {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  EndLf,
}

/**
 * Follows a body's framing over the bytes as they arrive, without changing them: how many bytes of
 * a buffer belong to the body, and when it ends. Malformed chunked framing is an error.
 */
export class BodyTracker {
  private remaining: number;
  private state = Chunk.Size;
  private size = 0;
  private digits = 0;
  private lineBytes = 0;
  private finished: boolean;

  constructor(private readonly framing: Framing) {
    this.remaining = framing.kind === "length" ? framing.bytes : 0;
    this.finished = framing.kind === "none";
  }

  get done(): boolean {
    return this.finished;
  }

  /** The body ends when the connection does (a response without length or chunking). */
  get closeDelimited(): boolean {
    return this.framing.kind === "close";
  }

  /** Bytes of `buf` from `start` that belong to the body (the rest is the next message). Throws on bad framing. */
  consume(buf: Buffer, start = 0): number {
    if (this.finished) return 0;
    const available = buf.length - start;
    switch (this.framing.kind) {
      case "close":
        return available;
      case "length": {
        const n = Math.min(available, this.remaining);
        this.remaining -= n;
        if (this.remaining === 0) this.finished = true;
        return n;
      }
      case "chunked":
        return this.chunked(buf, start);
      default:
        return 0;
    }
  }

  private chunked(buf: Buffer, start: number): number {
    let i = start;
    while (i < buf.length && !this.finished) {
      if (this.state === Chunk.Data) {
        const n = Math.min(buf.length - i, this.remaining);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = Chunk.DataCr;
        continue;
      }
      const c = buf[i++]!;
      switch (this.state) {
        case Chunk.Size: {
          const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (v >= 0) {
            if (++this.digits > 15) throw new Error("chunk size too large");
            this.size = this.size * 16 + v;
          } else if (this.digits > 0 && (c === 0x3b || c === 0x20 || c === 0x09)) {
            this.state = Chunk.Ext;
            this.lineBytes = 0;
          } else if (this.digits > 0 && c === 0x0d) this.state = Chunk.SizeLf;
          else throw new Error("malformed chunk size");
          break;
        }
        case Chunk.Ext:
          if (c === 0x0d) this.state = Chunk.SizeLf;
          else if (c === 0x0a || ++this.lineBytes > 1024) throw new Error("malformed chunk extension");
          break;
        case Chunk.SizeLf:
          if (c !== 0x0a) throw new Error("chunk size line without LF");
          if (this.size === 0) this.state = Chunk.TrailerStart;
          else {
            this.remaining = this.size;
            this.state = Chunk.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case Chunk.DataCr:
          if (c !== 0x0d) throw new Error("chunk data not followed by CRLF");
          this.state = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (c !== 0x0a) throw new Error("chunk data not followed by CRLF");
          this.state = Chunk.Size;
          break;
        case Chunk.TrailerStart:
          if (c === 0x0d) this.state = Chunk.EndLf;
          else {
            this.state = Chunk.TrailerLine;
            this.lineBytes = 1;
          }
          break;
        case Chunk.TrailerLine:
          if (c === 0x0d) this.state = Chunk.TrailerLf;
          else if (c === 0x0a || ++this.lineBytes > 8192) throw new Error("malformed trailer");
          break;
        case Chunk.TrailerLf:
          if (c !== 0x0a) throw new Error("malformed trailer");
          this.state = Chunk.TrailerStart;
          break;
        case Chunk.EndLf:
          if (c !== 0x0a) throw new Error("malformed end of chunked body");
          this.finished = true;
          break;
      }
    }
    return i - start;
  }
}
