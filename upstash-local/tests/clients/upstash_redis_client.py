"""Drives upstash-local with Upstash's official Python client, upstash-redis (the version
pinned in requirements.txt beside this file).

Run by upstash-local/tests/clients.rs, which starts the server; reads UPSTASH_REDIS_REST_URL,
UPSTASH_REDIS_REST_TOKEN and UPSTASH_REDIS_REST_READ_ONLY_TOKEN. Prints one line per check;
exits 1 naming every mismatch.
"""

import asyncio
import os
import sys
import threading
import time
import traceback

import httpx
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

URL = os.environ.get("UPSTASH_REDIS_REST_URL")
TOKEN = os.environ.get("UPSTASH_REDIS_REST_TOKEN")
READ_ONLY_TOKEN = os.environ.get("UPSTASH_REDIS_REST_READ_ONLY_TOKEN")
if not (URL and TOKEN and READ_ONLY_TOKEN):
    print(
        "UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and "
        "UPSTASH_REDIS_REST_READ_ONLY_TOKEN must be set",
        file=sys.stderr,
    )
    sys.exit(2)

failures = []


def check(name):
    """Runs the decorated function at once as one named check."""

    def run(body):
        try:
            result = body()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
            print(f"ok   {name}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, then the next check runs
            failures.append(name)
            print(f"FAIL {name}: {traceback.format_exc()}", flush=True)
        return body

    return run


def equal(actual, expected):
    if actual != expected:
        raise AssertionError(f"got {actual!r}, expected {expected!r}")


def raises(needle, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except UpstashError as error:
        if needle not in str(error):
            raise AssertionError(f"error {str(error)!r} lacks {needle!r}") from error
        return
    raise AssertionError(f"expected an error containing {needle!r}")


def eventually(what, condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# base64 (the client's default) and plain responses, each over the same checks.
clients = {
    "base64": Redis(URL, TOKEN, allow_telemetry=False),
    "plain": Redis(URL, TOKEN, rest_encoding=None, allow_telemetry=False),
}
equal(clients["base64"].flushdb(), True)

for mode, redis in clients.items():

    def k(name, mode=mode):
        return f"py:{mode}:{name}"

    @check(f"{mode}: strings")
    def _strings(redis=redis, k=k):
        equal(redis.set(k("s"), "hello"), True)
        equal(redis.get(k("s")), "hello")
        equal(redis.set(k("ex"), "v", ex=100), True)
        ttl = redis.ttl(k("ex"))
        assert 0 < ttl <= 100, ttl
        equal(redis.set(k("ex"), "again", nx=True), False)
        equal(redis.incr(k("n")), 1)
        equal(redis.incrby(k("n"), 41), 42)
        equal(redis.incrbyfloat(k("n"), 0.5), 42.5)
        equal(redis.mset({k("m1"): "a", k("m2"): 2}), True)
        equal(redis.mget(k("m1"), k("m2"), k("missing")), ["a", "2", None])
        equal(redis.getdel(k("m1")), "a")
        equal(redis.set(k("text"), "Zoë ✓ 東京 🚀"), True)
        equal(redis.get(k("text")), "Zoë ✓ 東京 🚀")
        raises("ERR value is not an integer or out of range", redis.incr, k("s"))

    @check(f"{mode}: hashes with booleans and numbers")
    def _hashes(redis=redis, k=k):
        h = k("h")
        # True is an int to Python: the client sends it as JSON true, stored as "true".
        equal(redis.hset(h, values={"on": True, "off": False, "n": 42, "f": 1.5, "s": "x"}), 5)
        equal(
            redis.hgetall(h),
            {"on": "true", "off": "false", "n": "42", "f": "1.5", "s": "x"},
        )
        equal(redis.hget(h, "on"), "true")
        equal(redis.hincrby(h, "n", 8), 50)
        equal(redis.hincrbyfloat(h, "f", 1), 2.5)
        equal(redis.hexists(h, "off"), True)
        equal(redis.hmget(h, "s", "missing"), ["x", None])

    @check(f"{mode}: lists")
    def _lists(redis=redis, k=k):
        lst = k("l")
        equal(redis.rpush(lst, "b", "c"), 2)
        equal(redis.lpush(lst, "a"), 3)
        equal(redis.lrange(lst, 0, -1), ["a", "b", "c"])
        equal(redis.lpop(lst), "a")
        equal(redis.llen(lst), 2)

    @check(f"{mode}: sets")
    def _sets(redis=redis, k=k):
        s = k("set")
        equal(redis.sadd(s, "a", "b", "c"), 3)
        equal(sorted(redis.smembers(s)), ["a", "b", "c"])
        equal(redis.sismember(s, "b"), True)
        equal(redis.scard(s), 3)

    @check(f"{mode}: sorted sets")
    def _zsets(redis=redis, k=k):
        z = k("z")
        equal(redis.zadd(z, {"b": 2, "a": 1}), 2)
        equal(redis.zrange(z, 0, -1), ["a", "b"])
        equal(redis.zrange(z, 0, -1, withscores=True), [("a", 1.0), ("b", 2.0)])
        equal(redis.zscore(z, "b"), 2.0)
        equal(redis.zincrby(z, 2.5, "a"), 3.5)

    @check(f"{mode}: streams")
    def _streams(redis=redis, k=k):
        x = k("x")
        first = redis.xadd(x, "*", {"field": "one"})
        second = redis.xadd(x, "*", {"field": "two"})
        assert first < second or len(first) < len(second), (first, second)
        equal(redis.xlen(x), 2)
        equal(redis.xrange(x), [[first, ["field", "one"]], [second, ["field", "two"]]])
        equal(redis.xrevrange(x, count=1), [[second, ["field", "two"]]])
        equal(redis.xread({x: "0-0"}, count=1), [[x, [[first, ["field", "one"]]]]])

    @check(f"{mode}: scripts")
    def _scripts(redis=redis, k=k):
        equal(redis.eval("return ARGV[1] .. KEYS[1]", keys=[k("key")], args=["arg:"]), "arg:" + k("key"))
        sha = redis.script_load("return {1, 'two', {3}}")
        equal(redis.evalsha(sha), [1, "two", [3]])
        equal(redis.script_exists(sha, "0" * 40), [True, False])
        raises("NOSCRIPT", redis.evalsha, "0" * 40)

    @check(f"{mode}: pipelines")
    def _pipelines(redis=redis, k=k):
        pipe = redis.pipeline()
        pipe.set(k("p"), "v")
        pipe.incr(k("pn"))
        pipe.hset(k("ph"), values={"flag": True})
        pipe.get(k("p"))
        equal(pipe.exec(), [True, 1, 1, "v"])

    @check(f"{mode}: multi-exec")
    def _multi(redis=redis, k=k):
        tx = redis.multi()
        tx.set(k("t"), 1)
        tx.incr(k("t"))
        tx.get(k("t"))
        equal(tx.exec(), [True, 2, "2"])

    @check(f"{mode}: read-your-writes")
    def _ryw(redis=redis, k=k):
        redis.set(k("ryw"), "1")
        token = redis._sync_token
        assert token.isdigit(), repr(token)
        # The next request sends it back (Upstash-Sync-Token) and sees the write.
        equal(redis.get(k("ryw")), "1")
        redis.set(k("ryw"), "2")
        assert int(redis._sync_token) > int(token), (redis._sync_token, token)
        equal(redis.get(k("ryw")), "2")


@check("a failing command inside a pipeline is an error in its place")
def _pipeline_error():
    redis = clients["base64"]
    redis.set("py:pt", "text")
    pipe = redis.pipeline()
    pipe.incr("py:pt")
    pipe.get("py:pt")
    # The client raises on the first error entry; the entry is an error, not a whole-request 400.
    raises("ERR value is not an integer or out of range", pipe.exec)


@check("asyncio client, concurrent commands")
async def _asyncio():
    async with AsyncRedis(URL, TOKEN, allow_telemetry=False) as redis:
        results = await asyncio.gather(
            redis.set("py:async:a", "1"),
            redis.incr("py:async:b"),
            redis.hset("py:async:h", values={"ok": True}),
        )
        equal(results, [True, 1, 1])
        equal(await redis.hget("py:async:h", "ok"), "true")
        pipe = redis.pipeline()
        pipe.get("py:async:a")
        pipe.get("py:async:b")
        equal(await pipe.exec(), ["1", "1"])


@check("publish, received over /subscribe and /psubscribe")
def _pubsub():
    redis = clients["base64"]
    lines = {"channel": [], "pattern": []}

    def listen(kind, path):
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
        with httpx.stream("POST", f"{URL}{path}", headers=headers, timeout=None) as response:
            assert response.status_code == 200, response.status_code
            for line in response.iter_lines():
                if line.startswith("data: "):
                    lines[kind].append(line[len("data: "):])
                if len(lines[kind]) >= 3:
                    return

    threads = [
        threading.Thread(target=listen, args=("channel", "/subscribe/py:chat"), daemon=True),
        threading.Thread(target=listen, args=("pattern", "/psubscribe/py:news.*"), daemon=True),
    ]
    for thread in threads:
        thread.start()
    eventually("both subscriptions", lambda: len(lines["channel"]) == 1 and len(lines["pattern"]) == 1)
    equal(redis.publish("py:chat", "hello"), 1)
    equal(redis.publish("py:news.sport", "goal"), 1)
    equal(redis.publish("py:chat", "Zoë, ✓"), 1)
    equal(redis.publish("py:news.weather", '{"rain":true}'), 1)
    for thread in threads:
        thread.join(5)
    equal(lines["channel"], ["subscribe,py:chat,1", "message,py:chat,hello", "message,py:chat,Zoë, ✓"])
    equal(
        lines["pattern"],
        [
            "psubscribe,py:news.*,1",
            "pmessage,py:news.*,py:news.sport,goal",
            'pmessage,py:news.*,py:news.weather,{"rain":true}',
        ],
    )


@check("read-only token")
def _read_only():
    redis = Redis(URL, READ_ONLY_TOKEN, allow_telemetry=False)
    equal(redis.get("py:base64:s"), "hello")
    raises("NOPERM", redis.set, "py:ro", "x")
    raises("NOPERM", redis.keys, "*")


@check("wrong token")
def _wrong_token():
    raises("WRONGPASS", Redis(URL, "wrong", allow_telemetry=False, rest_retries=0).get, "x")


if failures:
    print(f"upstash-redis against upstash-local: {len(failures)} check(s) failed: {'; '.join(failures)}")
    sys.exit(1)
print("upstash-redis against upstash-local: all checks passed")
