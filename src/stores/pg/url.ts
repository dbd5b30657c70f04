// The fleet database URL (issue 11, RT1 F6): it must never carry a password, in any form
// pg-connection-string accepts (user info, `?password=`, `?sslpassword=`, any case, percent-encoded
// names), because argv, unit files and logs are readable; and the form of it a message may show:
// scheme, user, host, port, database, nothing of the query.

/** Parse as pg-connection-string does (spaces and stray % encoded, a dummy host for `@/`); null when it cannot. */
function parseLikePg(url: string): URL | null {
  let str = url;
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(str)) str = encodeURI(str).replace(/%25(\d\d)/g, "%$1");
  try {
    return new URL(str, "postgres://base");
  } catch {
    try {
      return new URL(str.replace("@/", "@___DUMMY___/"), "postgres://base");
    } catch {
      return null;
    }
  }
}

const SECRET_PARAMS = new Set(["password", "sslpassword"]);

/** Why this URL must not be used (it carries a password or does not parse), or null. Never repeats the URL. */
export function fleetUrlProblem(url: string): string | null {
  const parsed = parseLikePg(url);
  if (parsed === null) return "the store URL does not parse; give postgres://USER@HOST:PORT/DATABASE";
  const secretParam = [...parsed.searchParams.keys()].some((k) => SECRET_PARAMS.has(k.trim().toLowerCase()));
  if (parsed.password !== "" || /^[^?#]*:[^/?#@]*@/.test(url.replace(/^postgres(ql)?:\/\//, "")) || secretParam) {
    return "the URL must not carry the password in any form (user:password@, password=, sslpassword=): argv, unit files and logs are readable by others; put the password in --db-password-file (the gateway: store_password_file)";
  }
  return null;
}

/** The URL as a message may show it: scheme, user, host, port and database only. */
export function describeFleetUrl(url: string): string {
  const parsed = parseLikePg(url);
  if (parsed === null) return "postgres://(unparsable URL)";
  const user = parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`;
  const host = parsed.hostname === "___DUMMY___" ? "" : parsed.hostname;
  const port = parsed.port === "" ? "" : `:${parsed.port}`;
  return `${parsed.protocol}//${user}${host}${port}${parsed.pathname}`;
}
