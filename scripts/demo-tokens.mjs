#!/usr/bin/env node
// Writes the demo data set to stdout as Redis protocol (for `redis-cli --pipe`): 22 keys
// `token:<ACCOUNT>` for 3 main accounts and their 19 sub-accounts, the shape the trading bots
// write. The tokens come from tradovate-local (the stand-in for Tradovate's auth endpoints):
// one login per main account, and that one token is shared by the main account and all of its
// PA sub-accounts, as trading back ends do. The main accounts and two sub-accounts hold
// Tradovate-style JSON, the other sub-accounts the bare token. Every token expires 80 minutes
// after it was minted (Tradovate's lifetime). Nothing here is a real credential.
//
//   node scripts/demo-tokens.mjs [TRADOVATE_URL]     (default http://127.0.0.1:8088/v1)

const base = (process.argv[2] ?? "http://127.0.0.1:8088/v1").replace(/\/+$/, "");

const mains = [
  { account: "APEX_136189", name: "apex136189", subs: 7 },
  { account: "APEX_266668", name: "apex266668", subs: 6 },
  { account: "APEX_272045", name: "apex272045", subs: 6 },
];
// Sub-accounts stored as JSON rather than a raw token.
const jsonSubs = new Set(["PAAPEX1361890000002", "PAAPEX2666680000003"]);

function seq(n) {
  return String(n).padStart(7, "0");
}

// A login at the stand-in: a new session and its token (the documented response fields).
async function login(name) {
  const response = await fetch(`${base}/auth/accesstokenrequest`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({
      name,
      password: "demo-password-not-a-secret",
      appId: "token-manager-dev",
      appVersion: "1.0",
      cid: 0,
      sec: "dev-only",
      deviceId: "token-manager-dev",
    }),
  });
  const body = await response.json();
  if (!response.ok || !body.accessToken) {
    throw new Error(`accesstokenrequest for ${name} at ${base} failed: HTTP ${response.status} ${body.errorText ?? ""}`);
  }
  return body;
}

function tradovateJson(session) {
  const { accessToken, mdAccessToken, expirationTime, userId, name } = session;
  return JSON.stringify({ accessToken, mdAccessToken, expirationTime, userId, name });
}

function resp(...args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

let out = "";
for (const main of mains) {
  const session = await login(main.name);
  out += resp("SET", `token:${main.account}`, tradovateJson(session));
  const digits = main.account.slice("APEX_".length);
  for (let n = 1; n <= main.subs; n++) {
    const account = `PAAPEX${digits}${seq(n)}`;
    const value = jsonSubs.has(account) ? tradovateJson(session) : session.accessToken;
    out += resp("SET", `token:${account}`, value);
  }
}
process.stdout.write(out);
