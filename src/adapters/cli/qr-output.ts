// Showing an otpauth URI as a QR code in the terminal. PNG/SVG files are written by qr-targets.ts
// (the one file writer for enroll and qr).

import type { QrMode } from "../../core/qr-render.js";
import { renderQr } from "../../core/qr-render.js";
import { UsageError } from "../../core/errors.js";
import { loadQrLib } from "../../platform/qr.js";
import type { Output } from "./output.js";

export async function showQr(io: Output, uri: string, mode: QrMode): Promise<void> {
  const lib = await loadQrLib();
  io.prompt(renderQr(lib.qrGrid(uri), mode));
}

export function parseQrMode(value: string): QrMode | "NONE" {
  const normal = value.toUpperCase().replace(/-/g, "_");
  const modes = ["NONE", "ANSI", "ANSI_INVERSE", "ANSI_GREY", "UTF8", "UTF8_INVERSE", "UTF8_GREY"] as const;
  const mode = modes.find((m) => m === normal);
  if (!mode) throw new UsageError(`Invalid qr-mode "${value}"; use NONE, ANSI, ANSI_INVERSE, ANSI_GREY, UTF8, UTF8_INVERSE or UTF8_GREY`);
  return mode;
}
