// Draw a QR code's modules as terminal text. UTF8 packs two module rows into one line with half
// blocks; ANSI draws each module as two reverse-video spaces. The default polarity suits terminals
// with light text on a dark background: light modules are drawn (blocks / reverse video), dark
// modules are left as background; the *_INVERSE modes swap that for light terminals.

export interface ModuleGrid {
  readonly size: number;
  /** true for a dark module. */
  isDark(row: number, col: number): boolean;
}

export type QrMode = "UTF8" | "UTF8_INVERSE" | "UTF8_GREY" | "ANSI" | "ANSI_INVERSE" | "ANSI_GREY";
export const QR_MODES: readonly (QrMode | "NONE")[] = ["NONE", "ANSI", "ANSI_INVERSE", "ANSI_GREY", "UTF8", "UTF8_INVERSE", "UTF8_GREY"];

/** Quiet zone around the code, in modules. */
const QUIET = 2;

const ESC = "\x1b[";
const GREY = `${ESC}30;47m`;

export function renderQr(grid: ModuleGrid, mode: QrMode): string {
  const inverse = mode.endsWith("_INVERSE");
  const grey = mode.endsWith("_GREY");
  // "ink" = drawn with a block or reverse video. Normal: light modules (and the quiet zone) are ink.
  const total = grid.size + 2 * QUIET;
  const ink = (r: number, c: number): boolean => {
    const inside = r >= QUIET && c >= QUIET && r < QUIET + grid.size && c < QUIET + grid.size;
    const dark = inside && grid.isDark(r - QUIET, c - QUIET);
    return inverse || grey ? dark : !dark;
  };
  const lines: string[] = [];
  if (mode.startsWith("UTF8")) {
    for (let r = 0; r < total; r += 2) {
      let line = grey ? GREY : "";
      for (let c = 0; c < total; c++) {
        const top = ink(r, c);
        const bottom = r + 1 < total ? ink(r + 1, c) : inverse || grey ? false : true;
        line += top && bottom ? "█" : top ? "▀" : bottom ? "▄" : " ";
      }
      lines.push(grey ? line + `${ESC}0m` : line);
    }
  } else {
    for (let r = 0; r < total; r++) {
      let line = grey ? GREY : "";
      let on = false;
      for (let c = 0; c < total; c++) {
        const want = ink(r, c);
        if (want !== on) {
          line += want ? `${ESC}7m` : `${ESC}27m`;
          on = want;
        }
        line += "  ";
      }
      lines.push(line + `${ESC}0m`);
    }
  }
  return lines.join("\n") + "\n";
}
