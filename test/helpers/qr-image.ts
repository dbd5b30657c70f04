// Turn a QR code drawn in a terminal back into a picture, so a real scanner (zbarimg) can read it.

import { deflateSync } from "node:zlib";

/** Parse terminal QR output (UTF8 half blocks or ANSI reverse video) into rows of "ink" cells. */
export function inkGrid(text: string, mode: "UTF8" | "ANSI"): boolean[][] {
  const lines = text.split("\n").filter((l) => l.length > 0);
  const rows: boolean[][] = [];
  if (mode === "UTF8") {
    for (const line of lines) {
      const top: boolean[] = [];
      const bottom: boolean[] = [];
      for (const ch of line) {
        top.push(ch === "█" || ch === "▀");
        bottom.push(ch === "█" || ch === "▄");
      }
      rows.push(top, bottom);
    }
  } else {
    for (const line of lines) {
      const row: boolean[] = [];
      let on = false;
      for (const part of line.split(/(\x1b\[[0-9;]*m)/)) {
        if (part === "\x1b[7m") on = true;
        else if (part === "\x1b[27m" || part === "\x1b[0m") on = false;
        else if (!part.startsWith("\x1b")) for (let i = 0; i < part.length; i += 2) row.push(on);
      }
      rows.push(row);
    }
  }
  return rows;
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** Grayscale PNG: `light(r, c)` cells white, others black, scaled, with a white margin. */
export function gridPng(rows: boolean[][], light: (cell: boolean) => boolean, scale = 6, margin = 4): Buffer {
  const h = rows.length;
  const w = Math.max(...rows.map((r) => r.length));
  const W = (w + 2 * margin) * scale;
  const H = (h + 2 * margin) * scale;
  const raw = Buffer.alloc((W + 1) * H, 255);
  for (let y = 0; y < H; y++) {
    raw[y * (W + 1)] = 0;
    const r = Math.floor(y / scale) - margin;
    for (let x = 0; x < W; x++) {
      const c = Math.floor(x / scale) - margin;
      const cell = rows[r]?.[c];
      const white = cell === undefined ? true : light(cell);
      raw[y * (W + 1) + 1 + x] = white ? 255 : 0;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
