// Pure policies of the web gateway (issue 5): where a login may redirect to (no open redirects),
// brute-force regulation per user and per client address, session timeouts.

export * from "./return-url.js";
export * from "./regulation.js";
export * from "./session.js";
export * from "./cookies.js";
export * from "./headers.js";
export * from "./device-cookie.js";
