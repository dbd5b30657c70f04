// Cookie headers as the gateway reads them. One parser decides which cookie is the session, and the
// same parser decides what is stripped before the app sees the request, so a cookie the gateway
// accepts (`otpgate_session =TOKEN`, split over several Cookie headers, ...) can never reach the app.

/** name -> value of every cookie in the given Cookie header values; the first occurrence of a name wins. */
export function parseCookies(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const header of values) {
    for (const part of header.split(";")) {
      const eq = part.indexOf("=");
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
    }
  }
  return out;
}

/** The Cookie header without the named cookies (names compared after trimming, as parseCookies does); null when nothing is left. */
export function cookiesWithout(values: readonly string[], names: readonly string[]): string | null {
  const drop = new Set(names);
  const kept: string[] = [];
  for (const header of values) {
    for (const part of header.split(";")) {
      const trimmed = part.trim();
      if (!trimmed) continue;
      const eq = trimmed.indexOf("=");
      const name = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim();
      if (!drop.has(name)) kept.push(trimmed);
    }
  }
  return kept.length ? kept.join("; ") : null;
}
