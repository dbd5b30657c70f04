// Header lists as the gateway handles them: in the order received, names lower case, a repeated
// header repeated (never joined, never truncated).

export type HeaderList = readonly (readonly [name: string, value: string])[];

/** Every value of a header, in order. */
export function headerValues(headers: HeaderList, name: string): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) if (n === name) out.push(v);
  return out;
}

/** The first value of a header, or undefined. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}
