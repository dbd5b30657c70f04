// QR code generation with the `qrcode` package. Bundled into its own file (dist/otpgate-qr.cjs) and
// loaded only by the commands that draw codes, so the login path never parses it.

import QRCode from "qrcode";
import type { ModuleGrid } from "../core/qr-render.js";

const OPTIONS = { errorCorrectionLevel: "M" } as const;

export function qrGrid(text: string): ModuleGrid {
  const code = QRCode.create(text, OPTIONS);
  const modules = code.modules;
  return { size: modules.size, isDark: (row, col) => Boolean(modules.get(row, col)) };
}

export function qrPng(text: string): Promise<Buffer> {
  return QRCode.toBuffer(text, { ...OPTIONS, type: "png", margin: 4, scale: 8 });
}

export function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { ...OPTIONS, type: "svg", margin: 4 });
}
