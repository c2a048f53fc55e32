//! Upstash REST API behaviour against a real redis-server.

mod common;

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{Options, TestServer, READ_ONLY_TOKEN, TOKEN};
use serde_json::{json, Value as Json};

fn as_i64(value: &Json) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

#[tokio::test]
async fn single_command_in_json_body_with_numbers() {
    let server = TestServer::start().await;
    let set = server.post("/", json!(["SET", "k", "v", "EX", 100])).await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json, json!({"result": "OK"}));
    assert_eq!(
        set.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(server.cmd(json!(["GET", "k"])).await, json!("v"));
    let ttl = as_i64(&server.cmd(json!(["TTL", "k"])).await);
    assert!((1..=100).contains(&ttl), "ttl {ttl}");

    // Numbers become their decimal text; integers come back as JSON numbers, nil as null.
    assert_eq!(server.cmd(json!(["SET", "n", 41])).await, json!("OK"));
    assert_eq!(server.cmd(json!(["INCRBY", "n", 1])).await, json!(42));
    assert_eq!(
        server.cmd(json!(["INCRBYFLOAT", "n", 0.5])).await,
        json!("42.5")
    );
    assert_eq!(server.cmd(json!(["GET", "missing"])).await, Json::Null);
    assert_eq!(
        server.cmd(json!(["MGET", "k", "missing", "n"])).await,
        json!(["v", null, "42.5"])
    );
}

#[tokio::test]
async fn path_style_decodes_segments_and_appends_post_body() {
    let server = TestServer::start().await;
    let set = server
        .call("GET", "/set/a%2Fb%20c/hello%20w%C3%B6rld/EX/100", "")
        .await;
    assert_eq!((set.status, set.json), (200, json!({"result": "OK"})));
    assert_eq!(
        server.cmd(json!(["GET", "a/b c"])).await,
        json!("hello wörld")
    );
    let get = server.call("GET", "/get/a%2Fb%20c", "").await;
    assert_eq!(get.json, json!({"result": "hello wörld"}));

    // POST: the raw body is the last argument; query parameters follow it (Upstash's
    // `POST /set/foo?EX=100`), `_token` excepted.
    let body = r#"{"accessToken":"eyJ.x/y+z","expirationTime":"2030-01-01T00:00:00Z"}"#;
    let post = server
        .call("POST", "/set/token%3AAPEX_1?EX=100", body)
        .await;
    assert_eq!((post.status, post.json), (200, json!({"result": "OK"})));
    assert_eq!(
        server.cmd(json!(["GET", "token:APEX_1"])).await,
        json!(body)
    );
    let ttl = as_i64(&server.cmd(json!(["TTL", "token:APEX_1"])).await);
    assert!((1..=100).contains(&ttl), "ttl {ttl}");

    // PUT behaves like POST; an empty POST body adds no argument.
    let put = server.call("PUT", "/set/putkey", "put-value").await;
    assert_eq!(put.status, 200);
    assert_eq!(
        server.cmd(json!(["GET", "putkey"])).await,
        json!("put-value")
    );
    let dbsize = server.call("POST", "/dbsize", "").await;
    assert_eq!((dbsize.status, dbsize.json), (200, json!({"result": 3})));
    let info = server.call("GET", "/info/server", "").await;
    assert!(info.json["result"]
        .as_str()
        .unwrap()
        .contains("redis_version"));
}

#[tokio::test]
async fn pipeline_keeps_going_past_a_failing_command() {
    let server = TestServer::start().await;
    let reply = server
        .post(
            "/pipeline",
            json!([
                ["SET", "key1", "valuex"],
                ["SETEX", "key2", 13, "valuez"],
                ["INCR", "key1"],
                ["ZADD", "myset", 11, "item1", 22, "item2"],
                ["BLPOP", "queue", 0],
                ["GET", "key1"]
            ]),
        )
        .await;
    assert_eq!(reply.status, 200);
    let items = reply.json.as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items[0], json!({"result": "OK"}));
    assert_eq!(items[1], json!({"result": "OK"}));
    assert_eq!(
        items[2],
        json!({"error": "ERR value is not an integer or out of range"})
    );
    assert_eq!(items[3], json!({"result": 2}));
    assert!(items[4]["error"]
        .as_str()
        .unwrap()
        .starts_with("ERR Command is not available: 'blpop'"));
    assert_eq!(items[5], json!({"result": "valuex"}));
}

#[tokio::test]
async fn multi_exec_runs_atomically_with_per_command_results() {
    let server = TestServer::start().await;
    let reply = server
        .post(
            "/multi-exec",
            json!([
                ["SET", "key1", "valuex"],
                ["SETEX", "key2", 13, "valuez"],
                ["INCR", "key1"],
                ["ZADD", "myset", 11, "item1", 22, "item2"],
                ["ZRANGE", "myset", 0, -1, "WITHSCORES"]
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!([
            {"result": "OK"},
            {"result": "OK"},
            {"error": "ERR value is not an integer or out of range"},
            {"result": 2},
            {"result": ["item1", "11", "item2", "22"]}
        ])
    );
    // The shared connection is not left inside MULTI.
    assert_eq!(server.cmd(json!(["GET", "key2"])).await, json!("valuez"));
}

#[tokio::test]
async fn multi_exec_discarded_as_a_whole_when_a_command_is_invalid() {
    let server = TestServer::start().await;
    let unknown = server
        .post(
            "/multi-exec",
            json!([["SET", "x", "1"], ["NOSUCHCOMMAND", "a"], ["SET", "y", "2"]]),
        )
        .await;
    assert_eq!(unknown.status, 400);
    let message = unknown.json["error"].as_str().unwrap();
    assert!(message.starts_with("ERR unknown command"), "{message}");
    assert_eq!(unknown.json.as_object().unwrap().len(), 1);

    let arity = server
        .post("/multi-exec", json!([["SET", "x", "1"], ["GET"]]))
        .await;
    assert_eq!(arity.status, 400);
    assert_eq!(
        arity.json,
        json!({"error": "ERR wrong number of arguments for 'get' command"})
    );

    let unsupported = server
        .post(
            "/multi-exec",
            json!([["SET", "x", "1"], ["SUBSCRIBE", "ch"]]),
        )
        .await;
    assert_eq!(unsupported.status, 400);

    // Nothing ran, and the connection still works.
    assert_eq!(
        server.cmd(json!(["MGET", "x", "y"])).await,
        json!([null, null])
    );
}

#[tokio::test]
async fn bearer_and_query_token_auth() {
    let server = TestServer::start().await;
    let bearer = format!("Bearer {TOKEN}");
    let ok = server
        .call_with("GET", "/set/a/1", "", &[("authorization", &bearer)])
        .await;
    assert_eq!(ok.status, 200);
    let lower = format!("bearer {TOKEN}");
    let ok = server
        .call_with("GET", "/get/a", "", &[("authorization", &lower)])
        .await;
    assert_eq!(ok.json, json!({"result": "1"}));
    let query = server
        .call_with("GET", &format!("/get/a?_token={TOKEN}"), "", &[])
        .await;
    assert_eq!((query.status, query.json), (200, json!({"result": "1"})));
    let query_post = server
        .call_with("POST", &format!("/?_token={TOKEN}"), r#"["GET","a"]"#, &[])
        .await;
    assert_eq!(query_post.json, json!({"result": "1"}));

    let unauthorized = json!({"error": "WRONGPASS invalid or missing auth token"});
    for (path, headers) in [
        ("/get/a", vec![]),
        ("/get/a", vec![("authorization", "Bearer nope")]),
        ("/get/a", vec![("authorization", TOKEN)]),
        ("/get/a?_token=nope", vec![]),
        ("/pipeline", vec![]),
    ] {
        let method = if path == "/pipeline" { "POST" } else { "GET" };
        let reply = server
            .call_with(method, path, "[[\"GET\",\"a\"]]", &headers)
            .await;
        assert_eq!(reply.status, 401, "{path} {headers:?}");
        assert_eq!(reply.json, unauthorized);
    }

    // The read-only token runs read commands only.
    let read_only = format!("Bearer {READ_ONLY_TOKEN}");
    let headers = [("authorization", read_only.as_str())];
    let get = server.call_with("GET", "/get/a", "", &headers).await;
    assert_eq!((get.status, get.json), (200, json!({"result": "1"})));
    let set = server.call_with("GET", "/set/a/2", "", &headers).await;
    assert_eq!(set.status, 400);
    assert_eq!(
        set.json,
        json!({"error": "NOPERM this user has no permissions to run the 'set' command or its subcommand"})
    );
    let scan = server.call_with("GET", "/scan/0", "", &headers).await;
    assert_eq!(scan.status, 400);
    let pipeline = server
        .call_with(
            "POST",
            "/pipeline",
            r#"[["GET","a"],["DEL","a"],["OBJECT","ENCODING","a"],["CONFIG","GET","*"]]"#,
            &headers,
        )
        .await;
    let items = pipeline.json.as_array().unwrap();
    assert_eq!(items[0], json!({"result": "1"}));
    assert!(items[1]["error"].as_str().unwrap().starts_with("NOPERM"));
    assert_eq!(items[2], json!({"result": "int"}));
    assert!(items[3]["error"].as_str().unwrap().starts_with("NOPERM"));
    assert_eq!(server.cmd(json!(["GET", "a"])).await, json!("1"));
}

#[tokio::test]
async fn command_errors_answer_400_with_the_redis_error() {
    let server = TestServer::start().await;
    let arity = server.post("/", json!(["GET"])).await;
    assert_eq!(
        (arity.status, arity.json),
        (
            400,
            json!({"error": "ERR wrong number of arguments for 'get' command"})
        )
    );
    server.cmd(json!(["SET", "s", "text"])).await;
    let wrongtype = server.call("GET", "/lpush/s/x", "").await;
    assert_eq!(wrongtype.status, 400);
    assert!(wrongtype.json["error"]
        .as_str()
        .unwrap()
        .starts_with("WRONGTYPE Operation against a key holding the wrong kind of value"));
    let unknown = server.call("GET", "/nosuchcommand/x", "").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.json["error"]
        .as_str()
        .unwrap()
        .starts_with("ERR unknown command 'nosuchcommand'"));
    let blocking = server.post("/", json!(["BRPOP", "q", 1])).await;
    assert_eq!(blocking.status, 400);
    let select = server.call("GET", "/select/1", "").await;
    assert_eq!(select.status, 400);
}

#[tokio::test]
async fn malformed_requests_answer_400_with_a_clear_message() {
    let server = TestServer::start().await;
    for (body, needle) in [
        ("[\"SET\", \"k\"", "not valid JSON"),
        ("{\"cmd\": \"GET\"}", "must be a JSON array"),
        ("[\"SET\", \"k\", null]", "argument 2 is null"),
        ("[\"SET\", \"k\", {\"a\": 1}]", "argument 2 is an object"),
        ("[]", "empty command"),
        ("", "empty command"),
    ] {
        let reply = server.call("POST", "/", body).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.json["error"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    for body in ["[\"GET\",\"k\"]", "[]", "[[\"GET\",\"k\"],\"x\"]", "nope"] {
        let reply = server.call("POST", "/pipeline", body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.json["error"].is_string());
    }
    let root_get = server.call("GET", "/", "").await;
    assert_eq!(root_get.status, 400);

    // Response formats other than json and resp2 are refused clearly.
    let auth = format!("Bearer {TOKEN}");
    for (format, status) in [("json", 200), ("JSON", 200), ("xml", 400), ("resp3", 400)] {
        let reply = server
            .call_with(
                "GET",
                "/ping",
                "",
                &[
                    ("authorization", &auth),
                    ("upstash-response-format", format),
                ],
            )
            .await;
        assert_eq!(reply.status, status, "{format}: {}", reply.json);
    }
}

#[tokio::test]
async fn resp2_format_answers_raw_redis_bytes() {
    let server = TestServer::start().await;
    let auth = format!("Bearer {TOKEN}");
    let resp2 = |method: &'static str, path: &'static str, body: &'static str| {
        let auth = auth.clone();
        let server = &server;
        async move {
            server
                .call_with(
                    method,
                    path,
                    body,
                    &[
                        ("authorization", auth.as_str()),
                        ("upstash-response-format", "resp2"),
                    ],
                )
                .await
        }
    };
    let set = resp2("GET", "/set/foo/bar", "").await;
    assert_eq!((set.status, set.body.as_slice()), (200, &b"+OK\r\n"[..]));
    assert_eq!(set.headers["content-type"], "application/octet-stream");
    let get = resp2("POST", "/", r#"["GET","foo"]"#).await;
    assert_eq!(get.body, b"$3\r\nbar\r\n");
    let missing = resp2("GET", "/get/missing", "").await;
    assert_eq!(missing.body, b"$-1\r\n");
    let error = resp2("GET", "/incr/foo", "").await;
    assert_eq!(
        (error.status, error.body.as_slice()),
        (
            400,
            &b"-ERR value is not an integer or out of range\r\n"[..]
        )
    );
    let pipeline = resp2(
        "POST",
        "/pipeline",
        r#"[["RPUSH","l","a","b"],["LRANGE","l",0,-1],["INCR","foo"],["SET","k",{}]]"#,
    )
    .await;
    assert_eq!(pipeline.status, 200);
    assert_eq!(
        String::from_utf8(pipeline.body).unwrap(),
        ":2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n-ERR value is not an integer or out of range\r\n-ERR command arguments must be JSON strings, numbers or booleans, argument 2 is an object\r\n"
    );
    // /multi-exec always answers JSON.
    let multi = resp2("POST", "/multi-exec", r#"[["GET","foo"]]"#).await;
    assert_eq!(
        (multi.status, multi.json),
        (200, json!([{"result": "bar"}]))
    );
    // resp2 with base64 is refused, as Upstash documents.
    let both = server
        .call_with(
            "GET",
            "/get/foo",
            "",
            &[
                ("authorization", auth.as_str()),
                ("upstash-response-format", "resp2"),
                ("upstash-encoding", "base64"),
            ],
        )
        .await;
    assert_eq!(both.status, 400);
    assert!(both.json["error"].as_str().unwrap().contains("resp2"));
}

#[tokio::test]
async fn other_methods_answer_405() {
    let server = TestServer::start().await;
    for method in ["DELETE", "PATCH", "OPTIONS"] {
        let reply = server.call(method, "/get/k", "").await;
        assert_eq!(reply.status, 405, "{method}");
        assert!(reply.json["error"].as_str().unwrap().contains(method));
        assert_eq!(reply.headers["allow"], "HEAD, GET, POST, PUT");
    }
    let get_pipeline = server.call("GET", "/pipeline", "").await;
    assert_eq!(get_pipeline.status, 405);
    assert_eq!(get_pipeline.headers["allow"], "POST, PUT");
    let get_multi = server.call("GET", "/multi-exec", "").await;
    assert_eq!(get_multi.status, 405);
}

#[tokio::test]
async fn bodies_over_the_limit_answer_413() {
    let server = TestServer::start_with(Options {
        max_request_bytes: 1024,
    })
    .await;
    let big = "x".repeat(2000);
    for path in ["/", "/pipeline", "/multi-exec", "/set/big"] {
        let reply = server.call("POST", path, big.clone()).await;
        assert_eq!(reply.status, 413, "{path}");
        let message = reply.json["error"].as_str().unwrap();
        assert!(
            message.starts_with("ERR max request size exceeded"),
            "{message}"
        );
        assert!(message.contains("1024"), "{message}");
    }
    // Exactly at the limit is fine.
    let value = "y".repeat(1024);
    let ok = server.call("POST", "/set/fits", value.clone()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(server.cmd(json!(["STRLEN", "fits"])).await, json!(1024));

    // A chunked body (no Content-Length) is cut off at the limit too.
    let status = chunked_post(&server.base, "/set/chunked", 3000).await;
    assert_eq!(status, 413);
}

/// Sends `size` bytes with `Transfer-Encoding: chunked` over a raw socket; returns the status.
async fn chunked_post(base: &str, path: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..size / 500 {
        let chunk = format!("1f4\r\n{}\r\n", "z".repeat(500));
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn base64_encoding_covers_nested_arrays_but_not_top_level_ok() {
    let server = TestServer::start().await;
    let b64 = [
        ("authorization", format!("Bearer {TOKEN}")),
        ("upstash-encoding", "base64".into()),
    ];
    let headers: Vec<(&str, &str)> = b64.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let call = |method: &'static str, path: &'static str, body: &'static str| {
        let headers = headers.clone();
        let server = &server;
        async move { server.call_with(method, path, body, &headers).await }
    };

    assert_eq!(
        call("GET", "/set/foo/bar", "").await.json,
        json!({"result": "OK"})
    );
    assert_eq!(
        call("GET", "/get/foo", "").await.json,
        json!({"result": "YmFy"})
    );
    assert_eq!(
        call("GET", "/get/missing", "").await.json,
        json!({"result": null})
    );
    assert_eq!(
        call("GET", "/incr/counter", "").await.json,
        json!({"result": 1})
    );
    assert_eq!(
        call("GET", "/ping", "").await.json,
        json!({"result": "UE9ORw=="})
    );
    // A stored value "OK" is data, not a status reply: it is encoded.
    call("GET", "/set/okvalue/OK", "").await;
    assert_eq!(
        call("GET", "/get/okvalue", "").await.json,
        json!({"result": "T0s="})
    );

    call("POST", "/", r#"["RPUSH","list","a","bc"]"#).await;
    assert_eq!(
        call("POST", "/", r#"["MGET","foo","missing"]"#).await.json,
        json!({"result": ["YmFy", null]})
    );
    let nested = call(
        "POST",
        "/",
        r#"["EVAL","return {redis.status_reply('OK'), {'x', 7}, redis.call('LRANGE', KEYS[1], 0, -1)}",1,"list"]"#,
    )
    .await;
    assert_eq!(
        nested.json,
        json!({"result": ["T0s=", ["eA==", 7], ["YQ==", "YmM="]]})
    );
    let scan = call("POST", "/", r#"["SCAN","0","MATCH","list","COUNT",1000]"#).await;
    assert_eq!(scan.json, json!({"result": ["MA==", ["bGlzdA=="]]}));

    let pipeline = call(
        "POST",
        "/pipeline",
        r#"[["SET","p","q"],["GET","p"],["INCR","p"]]"#,
    )
    .await;
    assert_eq!(
        pipeline.json,
        json!([{"result": "OK"}, {"result": "cQ=="}, {"error": "ERR value is not an integer or out of range"}])
    );
    let multi = call("POST", "/multi-exec", r#"[["SET","m","n"],["GET","m"]]"#).await;
    assert_eq!(multi.json, json!([{"result": "OK"}, {"result": "bg=="}]));
}

#[tokio::test]
async fn binary_values_round_trip_via_base64_encoding() {
    let server = TestServer::start().await;
    let bytes: Vec<u8> = vec![0xff, 0x00, 0xfe, b'a', 0x80, b'\n', 0xc3];
    let b64 = [
        ("authorization", format!("Bearer {TOKEN}")),
        ("upstash-encoding", "base64".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = b64.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Bytes in a percent-encoded path segment, key included.
    let set = server
        .call("GET", "/set/bin%FFkey/%FF%00%FEa%80%0A%C3", "")
        .await;
    assert_eq!(set.status, 200);
    let get = server
        .call_with("GET", "/get/bin%FFkey", "", &headers)
        .await;
    let decoded = BASE64.decode(get.json["result"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, bytes);

    // Bytes as a raw POST body.
    let post = server.call("POST", "/set/binbody", bytes.clone()).await;
    assert_eq!(post.status, 200);
    let get = server.call_with("GET", "/get/binbody", "", &headers).await;
    assert_eq!(
        BASE64.decode(get.json["result"].as_str().unwrap()).unwrap(),
        bytes
    );
    let strlen = server.cmd(json!(["STRLEN", "binbody"])).await;
    assert_eq!(strlen, json!(bytes.len()));

    // Without base64, invalid UTF-8 becomes U+FFFD, as Upstash documents.
    let plain = server.call("GET", "/get/binbody", "").await;
    assert_eq!(
        plain.json,
        json!({"result": "\u{FFFD}\u{0}\u{FFFD}a\u{FFFD}\n\u{FFFD}"})
    );

    // Keys that are not UTF-8 come back through SCAN in base64.
    let scan = server
        .call_with(
            "POST",
            "/",
            r#"["SCAN","0","MATCH","bin*","COUNT",100]"#,
            &headers,
        )
        .await;
    let keys: HashSet<Vec<u8>> = scan.json["result"][1]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| BASE64.decode(k.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        keys,
        HashSet::from([b"bin\xffkey".to_vec(), b"binbody".to_vec()])
    );
}

#[tokio::test]
async fn scan_match_count_visits_every_key_exactly_once() {
    let server = TestServer::start().await;
    const KEYS: usize = 2500;
    let mut mset = vec![json!("MSET")];
    for i in 0..KEYS {
        mset.push(json!(format!("token:ACC{i:05}")));
        mset.push(json!(format!("value-{i}")));
    }
    for i in 0..300 {
        mset.push(json!(format!("other:{i}")));
        mset.push(json!("x"));
    }
    assert_eq!(server.cmd(Json::Array(mset)).await, json!("OK"));
    assert_eq!(server.cmd(json!(["DBSIZE"])).await, json!(KEYS + 300));
    // Let Redis finish any incremental rehash so that SCAN cannot see a key twice.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut seen = Vec::new();
    let mut cursor = "0".to_owned();
    let mut calls = 0;
    loop {
        let result = server
            .cmd(json!(["SCAN", cursor, "MATCH", "token:*", "COUNT", 200]))
            .await;
        calls += 1;
        cursor = result[0].as_str().expect("cursor is a string").to_owned();
        for key in result[1].as_array().unwrap() {
            seen.push(key.as_str().unwrap().to_owned());
        }
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "SCAN does not terminate");
    }
    assert!(calls > 1, "expected several pages");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), KEYS, "every key exactly once");
    assert_eq!(unique.len(), KEYS);
    assert!(seen.iter().all(|k| k.starts_with("token:")));

    // The same through path style and a pipeline of SCAN pages.
    let first = server
        .call("GET", "/scan/0/MATCH/token%3A*/COUNT/100", "")
        .await;
    assert_eq!(first.status, 200);
    assert!(first.json["result"][0].is_string());
    assert!(first.json["result"][1].is_array());
}

#[tokio::test]
async fn ttl_pttl_and_set_nx_px() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .cmd(json!(["SET", "lock", "owner-1", "NX", "PX", 5000]))
            .await,
        json!("OK")
    );
    assert_eq!(
        server
            .cmd(json!(["SET", "lock", "owner-2", "NX", "PX", 5000]))
            .await,
        Json::Null
    );
    assert_eq!(server.cmd(json!(["GET", "lock"])).await, json!("owner-1"));
    let pttl = as_i64(&server.cmd(json!(["PTTL", "lock"])).await);
    assert!((1..=5000).contains(&pttl), "pttl {pttl}");
    let ttl = as_i64(&server.call("GET", "/ttl/lock", "").await.json["result"]);
    assert!((1..=5).contains(&ttl), "ttl {ttl}");
    server.cmd(json!(["SET", "forever", "v"])).await;
    assert_eq!(server.cmd(json!(["TTL", "forever"])).await, json!(-1));
    assert_eq!(server.cmd(json!(["PTTL", "nokey"])).await, json!(-2));
    assert_eq!(server.cmd(json!(["TTL", "nokey"])).await, json!(-2));
    assert_eq!(server.cmd(json!(["DEL", "lock"])).await, json!(1));
    assert_eq!(
        server
            .cmd(json!(["SET", "lock", "owner-2", "NX", "PX", 5000]))
            .await,
        json!("OK")
    );
}

#[tokio::test]
async fn eval_scripts() {
    let server = TestServer::start().await;
    // A compare-and-delete lock release, as a sync job would use.
    let release = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
    server
        .cmd(json!(["SET", "sync:lock", "run-1", "PX", 60000]))
        .await;
    assert_eq!(
        server
            .cmd(json!(["EVAL", release, 1, "sync:lock", "run-2"]))
            .await,
        json!(0)
    );
    assert_eq!(
        server
            .cmd(json!(["EVAL", release, 1, "sync:lock", "run-1"]))
            .await,
        json!(1)
    );
    assert_eq!(
        server
            .cmd(json!([
                "EVAL",
                "return redis.call('SET', KEYS[1], ARGV[1])",
                1,
                "k",
                "v"
            ]))
            .await,
        json!("OK")
    );
    assert_eq!(
        server
            .cmd(json!(["EVAL", "return {1, 'two', {3, false}}", 0]))
            .await,
        json!([1, "two", [3, null]])
    );
    let failing = server
        .post(
            "/",
            json!(["EVAL", "return redis.error_reply('ERR custom failure')", 0]),
        )
        .await;
    assert_eq!(
        (failing.status, failing.json),
        (400, json!({"error": "ERR custom failure"}))
    );
}

/// Parses a request log line into its `key=value` fields, checking the fixed prefix and order.
fn log_fields(line: &str) -> Vec<(String, String)> {
    let rest = line
        .strip_prefix("upstash-local request ")
        .unwrap_or_else(|| panic!("bad prefix: {line}"));
    let fields: Vec<(String, String)> = rest
        .split(' ')
        .map(|field| {
            let (k, v) = field
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field in {line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["ts", "method", "path", "status", "commands", "duration_ms"],
        "{line}"
    );
    fields
}

#[tokio::test]
async fn one_log_line_per_request_without_secrets() {
    let server = TestServer::start().await;
    server.call("GET", "/set/secret-key/secret-value", "").await;
    server
        .call_with("GET", &format!("/get/secret-key?_token={TOKEN}"), "", &[])
        .await;
    server
        .post(
            "/pipeline",
            json!([
                ["SET", "secret-a", "secret-b"],
                ["GET", "secret-a"],
                ["PING"]
            ]),
        )
        .await;
    server
        .post("/multi-exec", json!([["INCR", "secret-n"]]))
        .await;
    server.post("/", json!(["GET", "secret-key"])).await;
    server.call_with("GET", "/get/secret-key", "", &[]).await;
    server.call("DELETE", "/del/secret-key", "").await;

    let lines = server.log_lines();
    let summary: Vec<(String, String, String, String)> = lines
        .iter()
        .map(|line| {
            assert!(!line.contains("secret"), "value or key logged: {line}");
            assert!(!line.contains(TOKEN), "token logged: {line}");
            let f = log_fields(line);
            assert!(f[0].1.parse::<f64>().is_ok(), "{line}");
            assert!(f[5].1.parse::<f64>().is_ok(), "{line}");
            (
                f[1].1.clone(),
                f[2].1.clone(),
                f[3].1.clone(),
                f[4].1.clone(),
            )
        })
        .collect();
    let expected = [
        ("GET", "/set", "200", "1"),
        ("GET", "/get", "200", "1"),
        ("POST", "/pipeline", "200", "3"),
        ("POST", "/multi-exec", "200", "1"),
        ("POST", "/", "200", "1"),
        ("GET", "/get", "401", "0"),
        ("DELETE", "/del", "405", "0"),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(summary, expected);
}

#[tokio::test]
async fn json_booleans_are_sent_as_true_false_text() {
    let server = TestServer::start().await;
    // The TypeScript client sends booleans as JSON in HSET; Upstash stores "true"/"false".
    assert_eq!(
        server
            .cmd(json!(["HSET", "h", "on", true, "off", false, "n", 1.5]))
            .await,
        json!(3)
    );
    assert_eq!(
        server.cmd(json!(["HGETALL", "h"])).await,
        json!(["on", "true", "off", "false", "n", "1.5"])
    );
    let pipeline = server
        .post("/pipeline", json!([["SET", "b", true], ["GET", "b"]]))
        .await;
    assert_eq!(pipeline.json, json!([{"result": "OK"}, {"result": "true"}]));
}

#[tokio::test]
async fn pipeline_answers_a_malformed_command_in_place() {
    let server = TestServer::start().await;
    let reply = server
        .post(
            "/pipeline",
            json!([
                ["SET", "k", "v"],
                ["SET", "k2", {"nested": "object"}],
                [],
                ["SET", "k3", null],
                ["GET", "k"]
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let items = reply.json.as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0], json!({"result": "OK"}));
    for (item, needle) in [
        (&items[1], "argument 2 is an object"),
        (&items[2], "empty command"),
        (&items[3], "argument 2 is null"),
    ] {
        let message = item["error"].as_str().unwrap_or_else(|| panic!("{item}"));
        assert!(
            message.starts_with("ERR ") && message.contains(needle),
            "{message}"
        );
        assert_eq!(item.as_object().unwrap().len(), 1, "{item}");
    }
    assert_eq!(items[4], json!({"result": "v"}));
    assert_eq!(
        server.cmd(json!(["MGET", "k2", "k3"])).await,
        json!([null, null])
    );

    // In a transaction the same command discards the whole of it: nothing runs.
    let multi = server
        .post(
            "/multi-exec",
            json!([["SET", "m", "1"], ["SET", "m2", {"a": 1}]]),
        )
        .await;
    assert_eq!(multi.status, 400);
    assert!(multi.json["error"]
        .as_str()
        .unwrap()
        .contains("argument 2 is an object"));
    assert_eq!(server.cmd(json!(["GET", "m"])).await, Json::Null);
}

fn sync_token(reply: &common::Reply) -> u64 {
    reply
        .headers
        .get("upstash-sync-token")
        .unwrap_or_else(|| panic!("no upstash-sync-token header (status {})", reply.status))
        .to_str()
        .unwrap()
        .parse()
        .expect("a decimal sync token")
}

#[tokio::test]
async fn every_answer_carries_an_increasing_sync_token() {
    let server = TestServer::start().await;
    let mut last = 0;
    // Single commands (body and path style), a script, a pipeline, a transaction: each answer
    // that ran commands carries a token larger than every earlier one.
    for (path, body) in [
        ("/", json!(["SET", "k", "v"])),
        (
            "/",
            json!(["EVAL", "return redis.call('INCR', KEYS[1])", 1, "n"]),
        ),
        ("/pipeline", json!([["SET", "a", "1"], ["GET", "a"]])),
        ("/multi-exec", json!([["INCR", "a"], ["GET", "a"]])),
        ("/", json!(["GET", "k"])),
    ] {
        let reply = server.post(path, body).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.json);
        let token = sync_token(&reply);
        assert!(token > last, "{path}: {token} after {last}");
        last = token;
    }
    let path_style = server.call("GET", "/get/k", "").await;
    assert!(sync_token(&path_style) > last);
    last = sync_token(&path_style);

    // A client that sends the last token back reads its write at once (one Redis: nothing to
    // wait for), whatever it sends: an empty header, as the clients do at first, or garbage.
    let auth = format!("Bearer {TOKEN}");
    for sent in [last.to_string(), String::new(), "not-a-token".to_owned()] {
        let reply = server
            .call_with(
                "POST",
                "/",
                json!(["GET", "k"]).to_string(),
                &[("authorization", &auth), ("upstash-sync-token", &sent)],
            )
            .await;
        assert_eq!((reply.status, &reply.json), (200, &json!({"result": "v"})));
        assert!(sync_token(&reply) > last);
        last = sync_token(&reply);
    }

    // Refusals carry the current token too, without advancing it.
    let unauthorized = server.call_with("GET", "/get/k", "", &[]).await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(sync_token(&unauthorized), last);
    let malformed = server.call("POST", "/", "[1").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(sync_token(&malformed), last);
    let failed = server.post("/", json!(["INCR", "k"])).await;
    assert_eq!(failed.status, 400);
    assert!(sync_token(&failed) > last);
}
