// The gateway's own pages: server-rendered, no external assets, usable on a phone.

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const STYLE = `*{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,sans-serif;background:#f3f4f6;color:#111}
main{max-width:22rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 2px 12px #0002}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input{width:100%;padding:.7rem;font-size:1.1rem;border:1px solid #999;border-radius:.4rem}
input:focus{outline:3px solid #2563eb55;border-color:#2563eb}
button{margin-top:1.2rem;width:100%;padding:.8rem;font-size:1.1rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff}
p.error{background:#fee2e2;color:#7f1d1d;padding:.6rem;border-radius:.4rem}p.note{color:#444;font-size:.9rem}`;

export function loginPage(o: { prefix: string; csrf: string; returnTo: string; user?: string; error?: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in</title><link rel="stylesheet" href="${o.prefix}/style.css"></head>
<body><main>
<h1>Sign in</h1>
${o.error ? `<p class="error" role="alert">${escape(o.error)}</p>` : ""}
<form method="post" action="${o.prefix}/login" autocomplete="off">
<input type="hidden" name="csrf" value="${escape(o.csrf)}">
<input type="hidden" name="rd" value="${escape(o.returnTo)}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escape(o.user ?? "")}">
<label for="code">One-time code</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}" maxlength="8" required>
<button type="submit">Sign in</button>
</form>
<p class="note">The code is shown by your authenticator app. An 8-digit emergency code works too.</p>
</main></body></html>`;
}

export function messagePage(title: string, text: string, prefix: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escape(title)}</title><link rel="stylesheet" href="${prefix}/style.css"></head><body><main><h1>${escape(title)}</h1><p>${escape(text)}</p><p><a href="${prefix}/login">Sign in</a></p></main></body></html>`;
}
