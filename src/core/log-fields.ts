// Log lines as escaped key=value fields. Values come from outside (user names, RADIUS attributes,
// hosts, state-file option values): a value that is not a plain token is written as a JSON string
// with every byte outside printable ASCII escaped, so nobody can forge a field (`result=accepted`),
// start a new line, or send terminal escapes to whoever reads the log.

export type LogValue = string | number | boolean | null | undefined;

const PLAIN = /^[A-Za-z0-9._:@/+,-]{1,256}$/;
const MAX_VALUE = 256;

/** One value: a plain token as it is, anything else quoted and escaped; null is "-". */
export function logValue(value: Exclude<LogValue, undefined>): string {
  if (value === null) return "-";
  const text = String(value);
  if (PLAIN.test(text)) return text;
  const cut = text.length > MAX_VALUE ? text.slice(0, MAX_VALUE) + "…" : text;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** `key=value key=value`, in the given order; undefined values are left out. */
export function logFields(fields: Readonly<Record<string, LogValue>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${logValue(value)}`);
  }
  return parts.join(" ");
}
