// The gateway's pass-through proxy. Node's http client and server cost more CPU per request than
// the whole proxy budget (measured: a bare node:http proxy peaks at ~0.4x nginx here), so signed-in
// requests take a shorter way: each client connection gets its own upstream connection; request
// heads are parsed strictly (formats/http1.ts), checked for a session and rewritten (hop-by-hop
// headers out, Remote-User and X-Forwarded-* in, the session cookie removed); bodies and responses
// pass through as bytes, with their framing followed so that responses stay matched to requests.
//
// Everything else (the gateway's own pages, upgrades, Expect, HTTP/1.0, paths that normalise
// differently, requests without a session) is handed to the node:http server with the bytes read
// so far: it sees the connection as if it had accepted it. A connection handed over stays there.

import { connect, type Socket } from "node:net";
import { BodyTracker, asksToClose, headerValues, parseRequestHead, parseResponseHead, requestFraming, responseFraming, type Head } from "../../formats/http1.js";

export interface FastProxyOptions {
  readonly upstream: { readonly host: string; readonly port: number; readonly hostHeader: string };
  readonly pagesPrefix: string;
  readonly cookieName: string;
  readonly forwardedProto: string;
  /** The signed-in user for these Cookie header values, or null. */
  sessionUser(cookies: string[]): string | null;
  /** Give the connection (with `pending` bytes put back) to the node:http server. */
  handOver(socket: Socket): void;
  upstreamError(): void;
  /** A connection with nothing in flight is closed after this long. */
  readonly idleMs: number;
  /** A request head must be complete this long after its first byte. */
  readonly headTimeoutMs: number;
}

const DROP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade", "host", "remote-user", "x-forwarded-user", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "cookie"]);
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS"]);

interface Pending {
  readonly method: string;
  closeAfter: boolean;
  /** The head as sent, kept for one retry when the app closed an idle connection under it. */
  retry: Buffer | null;
}

function status(code: number, text: string): string {
  return `HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\n\r\n${text}\n`;
}

/** The listener for client connections (plain sockets or decrypted TLS sockets). */
export function createFastProxy(o: FastProxyOptions): (socket: Socket) => void {
  const P = o.pagesPrefix;

  /** The user when the request can take the fast path, else null. */
  function eligible(head: Head): string | null {
    if (head.minor !== 1 || head.target[0] !== "/") return null;
    const q = head.target.indexOf("?");
    const path = q < 0 ? head.target : head.target.slice(0, q);
    if (path === P || path.startsWith(`${P}/`) || path === "/healthz" || /\/\.|%|\\/.test(path)) return null;
    let hosts = 0;
    const cookies: string[] = [];
    for (const [n, v] of head.headers) {
      if (n === "host") hosts++;
      else if (n === "cookie") cookies.push(v);
      else if (n === "upgrade" || n === "expect") return null;
    }
    if (hosts !== 1 || cookies.length === 0) return null;
    return o.sessionUser(cookies);
  }

  function rewrite(head: Head, user: string, remote: string, closeAfter: boolean): Buffer {
    const drop = new Set(DROP);
    for (const t of headerValues(head, "connection")) drop.add(t.toLowerCase());
    let out = `${head.method} ${head.target} HTTP/1.1\r\nhost: ${o.upstream.hostHeader}\r\n`;
    const cookies: string[] = [];
    let forwardedFor = "";
    let clientHost = "";
    for (const [n, v] of head.headers) {
      if (n === "cookie") {
        for (const c of v.split(";")) if (c.trim() && !c.trim().startsWith(`${o.cookieName}=`)) cookies.push(c.trim());
      } else if (n === "x-forwarded-for") forwardedFor = forwardedFor ? `${forwardedFor}, ${v}` : v;
      else if (n === "host") clientHost = v;
      if (!drop.has(n)) out += `${n}: ${v}\r\n`;
    }
    if (cookies.length) out += `cookie: ${cookies.join("; ")}\r\n`;
    out += `remote-user: ${user}\r\nx-forwarded-for: ${forwardedFor ? `${forwardedFor}, ${remote}` : remote}\r\nx-forwarded-proto: ${o.forwardedProto}\r\nx-forwarded-host: ${clientHost}\r\n`;
    if (closeAfter) out += "connection: close\r\n";
    return Buffer.from(out + "\r\n", "latin1");
  }

  class FastConnection {
    private buf: Buffer = Buffer.alloc(0);
    private upstream: Socket | null = null;
    private reqBody: BodyTracker | null = null;
    private readonly pending: Pending[] = [];
    private resHead: Buffer | null = null;
    private resBody: BodyTracker | null = null;
    /** Response bytes of the current exchange already sent to the client (no retry after that). */
    private responded = false;
    private handingOver = false;
    private closing = false;
    /** The request whose body is being forwarded asked for Connection: close. */
    private closeAfterBody = false;
    private headTimer: NodeJS.Timeout | null = null;
    private readonly onData = (chunk: Buffer) => this.clientData(chunk);
    private readonly onEnd = () => this.clientEnded();
    private readonly onClose = () => this.destroy();
    private readonly onTimeout = () => {
      if (this.pending.length === 0 && !this.reqBody) this.destroy();
    };

    constructor(private readonly client: Socket) {
      client.setNoDelay(true);
      client.setTimeout(o.idleMs);
      client.on("data", this.onData);
      client.on("end", this.onEnd);
      client.on("close", this.onClose);
      client.on("error", this.onClose);
      client.on("timeout", this.onTimeout);
    }

    /** Cut both connections at once (errors, timeouts, the client gone). */
    destroy(): void {
      if (this.headTimer) clearTimeout(this.headTimer);
      this.client.destroy();
      this.upstream?.destroy();
    }

    /** Close after what was written has gone out (the last response must not be lost). */
    private finish(last?: string): void {
      if (this.headTimer) clearTimeout(this.headTimer);
      this.closing = true;
      const up = this.upstream;
      this.upstream = null;
      up?.destroy();
      if (last) this.client.end(last);
      else this.client.end();
    }

    private clientData(chunk: Buffer): void {
      if (this.closing) return;
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      if (!this.handingOver) this.processClient();
    }

    private clientEnded(): void {
      this.closing = true;
      if (this.pending.length === 0) this.finish();
    }

    private processClient(): void {
      while (this.buf.length > 0 && !this.handingOver && !this.closing) {
        if (this.reqBody) {
          let n: number;
          try {
            n = this.reqBody.consume(this.buf);
          } catch {
            return this.destroy();
          }
          if (n > 0) this.toUpstream(this.buf.subarray(0, n));
          this.buf = this.buf.subarray(n);
          if (!this.reqBody.done) return;
          this.reqBody = null;
          if (this.closeAfterBody) {
            this.closing = true;
            this.buf = Buffer.alloc(0);
          }
          continue;
        }
        const parsed = parseRequestHead(this.buf);
        if (parsed.kind === "incomplete") {
          this.headTimer ??= setTimeout(() => this.destroy(), o.headTimeoutMs);
          return;
        }
        if (this.headTimer) {
          clearTimeout(this.headTimer);
          this.headTimer = null;
        }
        if (parsed.kind === "bad") return this.refuse(parsed.reason === "head too large" ? 431 : 400, parsed.reason === "head too large" ? "Request Header Fields Too Large" : "Bad Request");
        const head = parsed.head;
        const user = eligible(head);
        if (user === null) {
          this.handingOver = true;
          return this.maybeHandOver();
        }
        const framing = requestFraming(head);
        if (framing.kind === "bad") return this.refuse(400, "Bad Request");
        const closeAfter = asksToClose(head);
        const out = rewrite(head, user, this.client.remoteAddress ?? "-", closeAfter);
        this.pending.push({ method: head.method, closeAfter, retry: framing.kind === "none" && IDEMPOTENT.has(head.method) ? out : null });
        this.toUpstream(out);
        this.buf = this.buf.subarray(head.length);
        if (framing.kind !== "none") this.reqBody = new BodyTracker(framing);
        if (closeAfter && this.reqBody) this.closeAfterBody = true;
        else if (closeAfter) {
          this.closing = true;
          this.buf = Buffer.alloc(0);
        }
      }
    }

    /** A malformed request: answered when nothing is in flight, else the connection is cut. */
    private refuse(code: number, text: string): void {
      if (this.pending.length > 0) return this.destroy();
      this.finish(status(code, text));
    }

    private maybeHandOver(): void {
      if (this.pending.length > 0 || this.reqBody) {
        this.client.pause();
        return;
      }
      if (this.headTimer) clearTimeout(this.headTimer);
      const c = this.client;
      c.removeListener("data", this.onData);
      c.removeListener("end", this.onEnd);
      c.removeListener("close", this.onClose);
      c.removeListener("error", this.onClose);
      c.removeListener("timeout", this.onTimeout);
      c.setTimeout(0);
      c.pause();
      this.upstream?.destroy();
      this.upstream = null;
      if (this.buf.length) c.unshift(this.buf);
      this.buf = Buffer.alloc(0);
      o.handOver(c);
      c.resume();
    }

    private connectUpstream(): Socket {
      const up = connect({ host: o.upstream.host, port: o.upstream.port });
      up.setNoDelay(true);
      up.on("data", (chunk: Buffer) => this.upstreamData(up, chunk));
      up.on("end", () => this.upstreamClosed(up));
      up.on("close", () => this.upstreamClosed(up));
      up.on("error", () => this.upstreamClosed(up));
      this.upstream = up;
      return up;
    }

    private toUpstream(data: Buffer): void {
      const up = this.upstream ?? this.connectUpstream();
      if (!up.write(data)) {
        this.client.pause();
        up.once("drain", () => {
          if (!this.handingOver) this.client.resume();
        });
      }
    }

    private upstreamData(up: Socket, chunk: Buffer): void {
      if (up !== this.upstream) return;
      let i = 0;
      let finished = 0;
      let closeAfter = false;
      try {
        while (i < chunk.length) {
          if (this.pending.length - finished === 0) throw new Error("unsolicited bytes from the app");
          if (this.resBody) {
            i += this.resBody.consume(chunk, i);
            if (!this.resBody.done) break;
            this.resBody = null;
            closeAfter ||= this.pending[finished]!.closeAfter;
            finished++;
            continue;
          }
          const rest = chunk.subarray(i);
          const before = this.resHead?.length ?? 0;
          this.resHead = this.resHead ? Buffer.concat([this.resHead, rest]) : rest;
          const parsed = parseResponseHead(this.resHead);
          if (parsed.kind === "incomplete") {
            i = chunk.length;
            break;
          }
          if (parsed.kind === "bad") throw new Error(parsed.reason);
          const head = parsed.head;
          i += head.length - before;
          this.resHead = null;
          if (head.status === 101) throw new Error("an upgrade the client did not ask for");
          if (head.status < 200) continue; // 100 Continue, 103 Early Hints: the final response follows
          const framing = responseFraming(head, this.pending[finished]!.method);
          if (framing.kind === "bad") throw new Error(framing.reason);
          if (head.minor === 0 || asksToClose(head)) this.pending[finished]!.closeAfter = true;
          this.resBody = new BodyTracker(framing);
          if (this.resBody.done) {
            this.resBody = null;
            closeAfter ||= this.pending[finished]!.closeAfter;
            finished++;
          }
        }
      } catch {
        o.upstreamError();
        return this.destroy();
      }
      this.responded = true;
      if (!this.client.write(chunk)) {
        up.pause();
        this.client.once("drain", () => up.resume());
      }
      if (finished === 0) return;
      this.pending.splice(0, finished);
      this.responded = this.resHead !== null || this.resBody !== null;
      if (closeAfter) return this.finish();
      if (this.pending.length === 0) {
        if (this.closing) return this.finish();
        if (this.handingOver) this.maybeHandOver();
      }
    }

    private upstreamClosed(up: Socket): void {
      if (up !== this.upstream) return;
      this.upstream = null;
      up.destroy();
      if (this.pending.length === 0 && !this.reqBody) return; // an idle connection the app closed
      if (this.resBody?.closeDelimited) return this.finish();
      if (!this.responded && !this.reqBody && this.pending.every((p) => p.retry)) {
        // The app closed a kept-alive connection as requests went out on it: send them again.
        const fresh = this.connectUpstream();
        for (const p of this.pending) {
          fresh.write(p.retry!);
          p.retry = null;
        }
        return;
      }
      o.upstreamError();
      if (!this.responded) this.finish(status(502, "Bad Gateway"));
      else this.destroy();
    }
  }

  return (socket) => void new FastConnection(socket);
}
