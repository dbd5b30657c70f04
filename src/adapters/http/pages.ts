// The gateway's own pages: server-rendered, no external assets or scripts, usable on a phone.

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const escape = escapeHtml;

export const STYLE = `*{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,sans-serif;background:#f3f4f6;color:#111}
main{max-width:24rem;margin:6vh auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 2px 12px #0002}
h1{font-size:1.3rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input{width:100%;padding:.7rem;font-size:1.1rem;border:1px solid #999;border-radius:.4rem}
input:focus{outline:3px solid #2563eb55;border-color:#2563eb}
button,a.button{display:block;text-align:center;text-decoration:none;margin-top:1.2rem;width:100%;padding:.8rem;font-size:1.1rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff}
a.button.secondary{background:#e5e7eb;color:#111}
p.error{background:#fee2e2;color:#7f1d1d;padding:.6rem;border-radius:.4rem}p.note{color:#444;font-size:.9rem}
.qr svg{display:block;width:100%;max-width:16rem;margin:0 auto}code,.codes{font:1rem ui-monospace,monospace;overflow-wrap:anywhere}
ol.codes{columns:2;padding-left:1.5rem}`;

const head = (title: string, prefix: string) =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(title)}</title><link rel="stylesheet" href="${prefix}/style.css"></head>
<body><main>
<h1>${escape(title)}</h1>`;

const error = (text: string | undefined) => (text ? `<p class="error" role="alert">${escape(text)}</p>` : "");

/** The one message for every failed sign-in, whatever failed. */
export function loginFailure(withPassword: boolean): string {
  return withPassword ? "Wrong user name, password or code. Check the code in your app and try again." : "Wrong user name or code. Check the code in your app and try again.";
}

export function loginPage(o: { prefix: string; csrf: string; returnTo: string; user?: string; error?: string; password?: boolean }): string {
  return `${head("Sign in", o.prefix)}
${error(o.error)}
<form method="post" action="${o.prefix}/login" autocomplete="off">
<input type="hidden" name="csrf" value="${escape(o.csrf)}">
<input type="hidden" name="rd" value="${escape(o.returnTo)}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escape(o.user ?? "")}">
${o.password ? `<label for="password">Password</label>\n<input id="password" name="password" type="password" autocomplete="current-password" required>\n` : ""}<label for="code">One-time code</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" maxlength="8" required>
<button type="submit">Sign in</button>
</form>
<p class="note">The code is shown by your authenticator app. An 8-digit emergency code works too.</p>
</main></body></html>`;
}

export interface EnrollPageOptions {
  readonly prefix: string;
  readonly action: string;
  readonly csrf: string;
  readonly user: string;
  /** Sealed draft (secret and emergency codes), carried by the form until the code confirms it. */
  readonly draft: string;
  readonly qrSvg: string;
  readonly groupedSecret: string;
  readonly uri: string;
  readonly digits: number;
  /** Ask for a new password (the password factor is on and the user has none yet). */
  readonly newPassword: boolean;
  readonly error?: string;
}

export function enrollPage(o: EnrollPageOptions): string {
  return `${head("Set up your sign-in codes", o.prefix)}
<p>For the account <strong>${escape(o.user)}</strong>.</p>
${error(o.error)}
<h2>1. Add the account to your authenticator app</h2>
<p>Scan this QR code with the app (Google Authenticator, FreeOTP, Aegis, 1Password, ...).</p>
<div class="qr" role="img" aria-label="QR code of the secret key">${o.qrSvg}</div>
<p class="note">On this phone? <a href="${escape(o.uri)}">Open it in the app</a>, or type the key by hand:<br><code>${escape(o.groupedSecret)}</code></p>
<h2>2. Confirm with a code</h2>
<form method="post" action="${escape(o.action)}" autocomplete="off">
<input type="hidden" name="csrf" value="${escape(o.csrf)}">
<input type="hidden" name="draft" value="${escape(o.draft)}">
<label for="code">The ${o.digits}-digit code the app shows</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{${o.digits}}" maxlength="${o.digits}" required>
${
  o.newPassword
    ? `<label for="password">Choose a password (at least 10 characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required>
<label for="password2">The password again</label>
<input id="password2" name="password2" type="password" autocomplete="new-password" minlength="10" required>
`
    : ""
}<button type="submit">Confirm</button>
</form>
<p class="note">This link works once. Until you confirm, nothing changes.</p>
</main></body></html>`;
}

export function enrolledPage(o: { prefix: string; user: string; scratchCodes: readonly string[] }): string {
  return `${head("You are set up", o.prefix)}
<p>From now on <strong>${escape(o.user)}</strong> signs in with a code from the app.</p>
<h2>Emergency codes</h2>
<p>Each of these works once, if you lose your phone. Write them down or print this page now: they are not shown again.</p>
<ol class="codes">${o.scratchCodes.map((c) => `<li>${escape(c)}</li>`).join("")}</ol>
<a class="button" href="${o.prefix}/login">Sign in</a>
</main></body></html>`;
}

export function messagePage(title: string, text: string, prefix: string): string {
  return `${head(title, prefix)}<p>${escape(text)}</p><p><a href="${prefix}/login">Sign in</a></p></main></body></html>`;
}

export function signOutPage(o: { prefix: string; csrf: string }): string {
  return `${head("Sign out", o.prefix)}
<form method="post" action="${o.prefix}/logout"><input type="hidden" name="csrf" value="${escape(o.csrf)}"><button type="submit">Sign out</button></form>
</main></body></html>`;
}
