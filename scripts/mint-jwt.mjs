#!/usr/bin/env node
// Mints an HS256 JWT for a Supabase API role, the way Supabase's local stack makes its keys:
// claims {"iss":"supabase-demo","role":ROLE,"exp":1983812996}. With Supabase's default local
// secret this reproduces Supabase's well-known local anon and service-role keys exactly.
//
//   node scripts/mint-jwt.mjs SECRET ROLE        # ROLE: anon | authenticated | service_role
//
// Uses node's own crypto: no package needed.
import { createHmac } from "node:crypto";

const [secret, role] = process.argv.slice(2);
if (!secret || !role) {
  console.error("usage: mint-jwt.mjs SECRET ROLE");
  process.exit(2);
}

// 2032-11-10: the expiry of Supabase's local demo keys, far enough ahead for any test run.
const EXP = 1983812996;

const base64url = (text) => Buffer.from(text).toString("base64url");
const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const payload = base64url(JSON.stringify({ iss: "supabase-demo", role, exp: EXP }));
const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");

process.stdout.write(`${header}.${payload}.${signature}\n`);
