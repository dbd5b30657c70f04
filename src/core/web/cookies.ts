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

/**
 * The value of one cookie: exactly parseCookies(values).get(name) (the first occurrence of the name
 * after trimming wins, parts without a name or "=" are skipped), without building the map or
 * splitting every header. Forward-auth reads only the session cookie, at every request.
 */
export function cookieValue(values: readonly string[], name: string): string | undefined {
  if (name === "") return undefined;
  for (const header of values) {
    let start = 0;
    let eq = -1; // the next "=" at or after `start` (found once, reused across parts: linear time)
    while (start <= header.length) {
      let end = header.indexOf(";", start);
      if (end < 0) end = header.length;
      if (eq !== header.length && eq < start) {
        eq = header.indexOf("=", start);
        if (eq < 0) eq = header.length;
      }
      // parseCookies skips a part whose "=" is missing or first (eq <= 0 within the part).
      if (eq > start && eq < end && header.slice(start, eq).trim() === name) return header.slice(eq + 1, end).trim();
      start = end + 1;
    }
  }
  return undefined;
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
