// Showing an otpauth URI as a QR code: in the terminal, and as PNG/SVG files (mode 0600: they hold
// the secret).

import { writeFileSync } from "node:fs";
import type { QrMode } from "../../core/qr-render.js";
import { renderQr } from "../../core/qr-render.js";
import { UsageError } from "../../core/errors.js";
import { loadQrLib } from "../../platform/qr.js";
import type { Output } from "./output.js";

export async function showQr(io: Output, uri: string, mode: QrMode): Promise<void> {
  const lib = await loadQrLib();
  io.prompt(renderQr(lib.qrGrid(uri), mode));
}

export async function writeQrFiles(uri: string, files: { readonly png?: string | undefined; readonly svg?: string | undefined }, overwrite: boolean): Promise<string[]> {
  const lib = await loadQrLib();
  const written: string[] = [];
  const save = (path: string, data: string | Buffer) => {
    try {
      writeFileSync(path, data, { mode: 0o600, flag: overwrite ? "w" : "wx" });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(code === "EEXIST" ? `${path} already exists; choose another file or pass -f` : `cannot write ${path} (${code})`);
    }
    written.push(path);
  };
  if (files.png) save(files.png, await lib.qrPng(uri));
  if (files.svg) save(files.svg, await lib.qrSvg(uri));
  return written;
}

export function parseQrMode(value: string): QrMode | "NONE" {
  const normal = value.toUpperCase().replace(/-/g, "_");
  const modes = ["NONE", "ANSI", "ANSI_INVERSE", "ANSI_GREY", "UTF8", "UTF8_INVERSE", "UTF8_GREY"] as const;
  const mode = modes.find((m) => m === normal);
  if (!mode) throw new UsageError(`Invalid qr-mode "${value}"; use NONE, ANSI, ANSI_INVERSE, ANSI_GREY, UTF8, UTF8_INVERSE or UTF8_GREY`);
  return mode;
}
