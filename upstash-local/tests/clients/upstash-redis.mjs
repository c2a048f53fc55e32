// Drives upstash-local with Upstash's official TypeScript client, @upstash/redis (the version
// pinned in the repo's package.json). Run by upstash-local/tests/clients.rs, which starts the
// server; reads UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and
// UPSTASH_REDIS_REST_READ_ONLY_TOKEN. Prints one line per check; exits 1 naming every
// mismatch.
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";

const url = process.env.UPSTASH_REDIS_REST_URL;
const token = process.env.UPSTASH_REDIS_REST_TOKEN;
const readOnlyToken = process.env.UPSTASH_REDIS_REST_READ_ONLY_TOKEN;
if (!url || !token || !readOnlyToken) {
  console.error("UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and UPSTASH_REDIS_REST_READ_ONLY_TOKEN must be set");
  process.exit(2);
}

const failures = [];
async function check(name, body) {
  try {
    await body();
    console.log(`ok   ${name}`);
  } catch (error) {
    failures.push(name);
    console.log(`FAIL ${name}: ${error?.stack ?? error}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition()` holds (events arrive asynchronously), at most 5 s. */
async function eventually(what, condition) {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function eventuallyAsync(what, condition) {
  const deadline = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function rejects(promise, needle) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `expected an error containing ${JSON.stringify(needle)}`);
  assert.ok(String(error.message).includes(needle), `error ${JSON.stringify(error.message)} lacks ${JSON.stringify(needle)}`);
}

// The same checks over each way the client talks: auto-pipelining (its default: commands go
// out together through /pipeline), one request per command, and without base64 encoding.
const clients = {
  "auto-pipelining": new Redis({ url, token, enableTelemetry: false }),
  "single requests": new Redis({ url, token, enableAutoPipelining: false, enableTelemetry: false }),
  "plain encoding": new Redis({ url, token, enableAutoPipelining: false, responseEncoding: false, enableTelemetry: false }),
};

// A Redis of its own (the test harness starts one per run): start from empty.
assert.equal(await clients["single requests"].flushdb(), "OK");

for (const [mode, redis] of Object.entries(clients)) {
  const k = (name) => `js:${mode}:${name}`;

  await check(`${mode}: strings`, async () => {
    assert.equal(await redis.set(k("s"), "hello"), "OK");
    assert.equal(await redis.get(k("s")), "hello");
    assert.equal(await redis.set(k("ex"), "v", { ex: 100 }), "OK");
    const ttl = await redis.ttl(k("ex"));
    assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await redis.set(k("ex"), "again", { nx: true }), null);
    assert.equal(await redis.incr(k("n")), 1);
    assert.equal(await redis.incrby(k("n"), 41), 42);
    assert.equal(await redis.incrbyfloat(k("n"), 0.5), 42.5);
    assert.equal(await redis.append(k("s"), " world"), 11);
    assert.equal(await redis.mset({ [k("m1")]: "a", [k("m2")]: 2 }), "OK");
    assert.deepEqual(await redis.mget(k("m1"), k("m2"), k("missing")), ["a", 2, null]);
    assert.equal(await redis.getdel(k("m1")), "a");
    assert.equal(await redis.exists(k("m1"), k("m2")), 1);
    // Objects are stored as JSON and come back parsed; non-ASCII text survives.
    const doc = { name: "Zoë ✓ 東京 🚀", list: [1, true, null] };
    assert.equal(await redis.set(k("doc"), doc), "OK");
    assert.deepEqual(await redis.get(k("doc")), doc);
    assert.equal(await redis.set(k("text"), "déjà vu 🎉"), "OK");
    assert.equal(await redis.get(k("text")), "déjà vu 🎉");
    await rejects(redis.incr(k("s")), "ERR value is not an integer or out of range");
  });

  await check(`${mode}: hashes with booleans and numbers`, async () => {
    const h = k("h");
    assert.equal(await redis.hset(h, { on: true, off: false, n: 42, f: 1.5, s: "text" }), 5);
    // Booleans went out as JSON true/false and were stored as the text "true"/"false".
    // (The client's HGETALL keeps numbers that are not safe integers, such as 1.5, as text.)
    assert.deepEqual(await redis.hgetall(h), { on: true, off: false, n: 42, f: "1.5", s: "text" });
    assert.equal(await redis.hget(h, "on"), true);
    assert.equal(await redis.hincrby(h, "n", 8), 50);
    assert.equal(await redis.hexists(h, "off"), 1);
    assert.equal(await redis.hlen(h), 5);
    assert.deepEqual((await redis.hkeys(h)).sort(), ["f", "n", "off", "on", "s"]);
    assert.deepEqual(await redis.hmget(h, "s", "missing"), { s: "text", missing: null });
    assert.equal(await redis.hdel(h, "s"), 1);
  });

  await check(`${mode}: lists`, async () => {
    const l = k("l");
    assert.equal(await redis.rpush(l, "b", "c"), 2);
    assert.equal(await redis.lpush(l, "a"), 3);
    assert.deepEqual(await redis.lrange(l, 0, -1), ["a", "b", "c"]);
    assert.equal(await redis.llen(l), 3);
    assert.equal(await redis.lpop(l), "a");
    assert.equal(await redis.rpop(l), "c");
    assert.equal(await redis.lindex(l, 0), "b");
  });

  await check(`${mode}: sets`, async () => {
    const s = k("set");
    assert.equal(await redis.sadd(s, "a", "b", "c"), 3);
    assert.deepEqual((await redis.smembers(s)).sort(), ["a", "b", "c"]);
    assert.equal(await redis.sismember(s, "b"), 1);
    assert.equal(await redis.scard(s), 3);
    assert.equal(await redis.srem(s, "a"), 1);
  });

  await check(`${mode}: sorted sets`, async () => {
    const z = k("z");
    assert.equal(await redis.zadd(z, { score: 2, member: "b" }, { score: 1, member: "a" }), 2);
    assert.deepEqual(await redis.zrange(z, 0, -1), ["a", "b"]);
    assert.deepEqual(await redis.zrange(z, 0, -1, { withScores: true }), ["a", 1, "b", 2]);
    assert.equal(await redis.zscore(z, "b"), 2);
    assert.equal(await redis.zincrby(z, 2.5, "a"), 3.5);
    assert.equal(await redis.zrank(z, "a"), 1);
    assert.equal(await redis.zcard(z), 2);
  });

  await check(`${mode}: streams`, async () => {
    const x = k("x");
    const first = await redis.xadd(x, "*", { field: "one", n: 1 });
    const second = await redis.xadd(x, "*", { field: "two", n: 2 });
    assert.match(first, /^\d+-\d+$/);
    assert.equal(await redis.xlen(x), 2);
    assert.deepEqual(await redis.xrange(x, "-", "+"), {
      [first]: { field: "one", n: 1 },
      [second]: { field: "two", n: 2 },
    });
    const reversed = await redis.xrevrange(x, "+", "-", 1);
    assert.deepEqual(Object.keys(reversed), [second]);
    const read = await redis.xread(x, "0-0");
    assert.equal(read[0][0], x);
    assert.equal(read[0][1].length, 2);
  });

  await check(`${mode}: scripts`, async () => {
    assert.equal(await redis.eval("return ARGV[1] .. KEYS[1]", [k("key")], ["arg:"]), `arg:${k("key")}`);
    assert.equal(await redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", [k("counter")], [5]), 5);
    const sha = await redis.scriptLoad("return {1, 'two', {3}}");
    assert.deepEqual(await redis.evalsha(sha, [], []), [1, "two", [3]]);
    assert.deepEqual(await redis.scriptExists(sha, "0".repeat(40)), [1, 0]);
    // createScript tries EVALSHA, and on NOSCRIPT falls back to EVAL.
    const script = redis.createScript(`return 'fresh ' .. ARGV[1] .. ' ${mode}'`);
    assert.equal(await script.exec([], ["script"]), `fresh script ${mode}`);
    await rejects(redis.evalsha("0".repeat(40), [], []), "NOSCRIPT");
  });

  await check(`${mode}: pipelines`, async () => {
    const p = redis.pipeline();
    p.set(k("p"), "v").incr(k("pn")).get(k("p")).hset(k("ph"), { flag: true }).hget(k("ph"), "flag");
    assert.deepEqual(await p.exec(), ["OK", 1, "v", 1, true]);
    // A failing command: exec throws, keepErrors answers it in place.
    const failing = redis.pipeline();
    failing.set(k("pt"), "text").incr(k("pt")).get(k("pt"));
    await rejects(failing.exec(), "ERR value is not an integer or out of range");
    const kept = redis.pipeline();
    kept.set(k("pt"), "text").incr(k("pt")).get(k("pt"));
    const results = await kept.exec({ keepErrors: true });
    assert.equal(results[0].result, "OK");
    assert.match(results[1].error, /^ERR value is not an integer/);
    assert.equal(results[2].result, "text");
  });

  await check(`${mode}: multi-exec`, async () => {
    const tx = redis.multi();
    tx.set(k("t"), 1).incr(k("t")).get(k("t")).lpush(k("tl"), "x");
    assert.deepEqual(await tx.exec(), ["OK", 2, 2, 1]);
    const failing = redis.multi();
    failing.set(k("tt"), "text").incr(k("tt"));
    await rejects(failing.exec(), "ERR value is not an integer or out of range");
    // The transaction still ran its other commands, as Redis does.
    assert.equal(await redis.get(k("tt")), "text");
  });

  await check(`${mode}: read-your-writes`, async () => {
    const before = redis.readYourWritesSyncToken;
    await redis.set(k("ryw"), "1");
    const afterWrite = redis.readYourWritesSyncToken;
    assert.match(afterWrite, /^\d+$/);
    assert.notEqual(afterWrite, before);
    // The next request sends the token back and sees the write.
    assert.equal(await redis.get(k("ryw")), 1);
    await redis.set(k("ryw"), "2");
    const later = redis.readYourWritesSyncToken;
    assert.ok(BigInt(later) > BigInt(afterWrite), `${later} after ${afterWrite}`);
    assert.equal(await redis.get(k("ryw")), 2);
  });
}

await check("auto-pipelining batches concurrent commands", async () => {
  const redis = new Redis({ url, token, enableTelemetry: false });
  const before = redis.pipelineCounter;
  const results = await Promise.all([
    redis.set("js:auto:a", "1"),
    redis.incr("js:auto:b"),
    redis.hset("js:auto:h", { ready: true }),
    redis.get("js:auto:a"),
    redis.hget("js:auto:h", "ready"),
  ]);
  assert.deepEqual(results, ["OK", 1, 1, 1, true]);
  // Reads and writes go out as one pipeline each.
  assert.ok(redis.pipelineCounter - before <= 2, `${redis.pipelineCounter - before} pipelines`);
  // A failing command fails alone.
  const mixed = await Promise.allSettled([redis.set("js:auto:c", "x"), redis.incr("js:auto:c"), redis.get("js:auto:c")]);
  assert.deepEqual(mixed.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(mixed[2].value, "x");
});

await check("subscribe and publish", async () => {
  const redis = clients["single requests"];
  const subscriber = redis.subscribe(["js:chat", "js:news"]);
  const counts = [];
  const messages = [];
  const chatOnly = [];
  subscriber.on("subscribe", (count) => counts.push(count));
  subscriber.on("message", (data) => messages.push(data));
  subscriber.on("message:js:chat", (data) => chatOnly.push(data.message));
  subscriber.on("error", (error) => messages.push({ error: String(error) }));
  // One stream per channel, each a subscriber of its own: each counts 1.
  await eventually("both subscriptions", () => counts.length === 2);
  assert.deepEqual(counts, [1, 1]);
  assert.equal(await redis.publish("js:chat", "hello"), 1);
  assert.equal(await redis.publish("js:news", { headline: "Zoë, ✓", n: 1 }), 1);
  assert.equal(await redis.publish("js:chat", JSON.stringify("quoted")), 1);
  await eventually("three messages", () => messages.length >= 3);
  // Each channel is a stream of its own: order holds within a channel.
  assert.deepEqual(messages.filter((m) => m.channel === "js:chat"), [
    { channel: "js:chat", message: "hello" },
    { channel: "js:chat", message: "quoted" },
  ]);
  assert.deepEqual(messages.filter((m) => m.channel !== "js:chat"), [
    { channel: "js:news", message: { headline: "Zoë, ✓", n: 1 } },
  ]);
  assert.deepEqual(chatOnly, ["hello", "quoted"]);
  await subscriber.unsubscribe(["js:chat"]);
  assert.deepEqual(subscriber.getSubscribedChannels(), ["js:news"]);
  // The aborted stream is gone from Redis.
  await eventuallyAsync("js:chat to have no subscriber", async () => (await redis.exec(["PUBSUB", "NUMSUB", "js:chat"]))[1] === 0);
  await subscriber.unsubscribe();
});

await check("psubscribe", async () => {
  const redis = clients["auto-pipelining"];
  const subscriber = redis.psubscribe(["js:news.*"]);
  const counts = [];
  const messages = [];
  subscriber.on("psubscribe", (count) => counts.push(count));
  subscriber.on("pmessage", (data) => messages.push(data));
  subscriber.on("error", (error) => messages.push({ error: String(error) }));
  await eventually("the pattern subscription", () => counts.length === 1);
  assert.deepEqual(counts, [1]);
  assert.equal(await redis.publish("js:news.sport", { goal: true }), 1);
  assert.equal(await redis.publish("js:weather", "rain"), 0);
  await eventually("one pattern message", () => messages.length >= 1);
  await sleep(100);
  assert.deepEqual(messages, [{ pattern: "js:news.*", channel: "js:news.sport", message: { goal: true } }]);
  await subscriber.unsubscribe();
});

await check("read-only token", async () => {
  const redis = new Redis({ url, token: readOnlyToken, enableAutoPipelining: false, enableTelemetry: false });
  assert.equal(await redis.get("js:single requests:s"), "hello world");
  await rejects(redis.set("js:ro", "x"), "NOPERM");
  await rejects(redis.keys("*"), "NOPERM");
});

await check("wrong token", async () => {
  const redis = new Redis({ url, token: "wrong", enableAutoPipelining: false, enableTelemetry: false, retry: false });
  await rejects(redis.get("x"), "WRONGPASS");
});

if (failures.length > 0) {
  console.log(`@upstash/redis against upstash-local: ${failures.length} check(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("@upstash/redis against upstash-local: all checks passed");
process.exit(0);
