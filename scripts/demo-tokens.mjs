#!/usr/bin/env node
// Writes the demo data set to stdout as Redis protocol (for `redis-cli --pipe`): 22 keys
// `token:<ACCOUNT>` for 3 main accounts and their 19 sub-accounts, the shape the trading bots
// write. Most values are raw JWT strings; the main accounts and a few sub-accounts hold
// Tradovate-style JSON. Every token expires in an hour. Nothing here is a real credential: the
// signatures are random bytes.
import { randomBytes } from "node:crypto";

const now = Math.floor(Date.now() / 1000);
const expiresAt = now + 3600;

const mains = [
  { account: "APEX_136189", userId: 136189, name: "apex136189" },
  { account: "APEX_266668", userId: 266668, name: "apex266668" },
  { account: "APEX_272045", userId: 272045, name: "apex272045" },
];
// Funded (PA...) and evaluation (APEX...) sub-accounts: the main's digits + a 7-digit sequence.
const subs = [
  ...[1, 2, 3, 4, 5, 6, 7].map((n) => ({ main: mains[0], account: `PAAPEX136189${seq(n)}` })),
  ...[1, 2, 3, 4, 5, 6].map((n) => ({ main: mains[1], account: `PAAPEX266668${seq(n)}` })),
  ...[1, 2, 3, 4, 5, 6].map((n) => ({ main: mains[2], account: `PAAPEX272045${seq(n)}` })),
];
// Sub-accounts stored as JSON rather than a raw token.
const jsonSubs = new Set(["PAAPEX1361890000002", "PAAPEX2666680000003"]);

function seq(n) {
  return String(n).padStart(7, "0");
}

function b64url(value) {
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
}

function jwt(claims) {
  const header = b64url({ alg: "HS256", typ: "JWT" });
  return `${header}.${b64url(claims)}.${randomBytes(32).toString("base64url")}`;
}

function accessToken(userId, name) {
  return jwt({ sub: String(userId), name, iat: now, exp: expiresAt, jti: randomBytes(8).toString("hex") });
}

function tradovateJson(userId, name) {
  return JSON.stringify({
    accessToken: accessToken(userId, name),
    mdAccessToken: accessToken(userId, name),
    expirationTime: new Date(expiresAt * 1000).toISOString(),
    userId,
    name,
  });
}

function resp(...args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

let out = "";
for (const main of mains) {
  out += resp("SET", `token:${main.account}`, tradovateJson(main.userId, main.name));
}
for (const sub of subs) {
  const value = jsonSubs.has(sub.account)
    ? tradovateJson(sub.main.userId, sub.main.name)
    : accessToken(sub.main.userId, sub.main.name);
  out += resp("SET", `token:${sub.account}`, value);
}
process.stdout.write(out);
