// Lazy access to the QR library (see qr-lib.ts).

export type QrLib = typeof import("./qr-lib.js");

export function loadQrLib(): Promise<QrLib> {
  return import("./qr-lib.js");
}
