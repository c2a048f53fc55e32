//! The status page: a static HTML page, its stylesheet and its scripts, embedded in the
//! Worker (`include_str!`), served at `/dashboard` and at `/` to browsers (`Accept: text/html`
//! without `?action=`). The page holds no data: it signs in with a read key the user pastes
//! (kept in `sessionStorage`, sent as `Authorization: Bearer`) and reads `/v1/status`,
//! `/v1/tokens` and `/v1/runs`. Every file is sent with a strict Content-Security-Policy
//! (scripts, styles, images and fetches from this origin only, no inline code, no framing,
//! no form submission) and `nosniff`, `no-referrer`.

use http::header::{HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};

use crate::http::error::ApiError;
use crate::http::{Request, Response};

/// Where the page lives; its files are under this path.
pub const PATH: &str = "/dashboard";

/// The Content-Security-Policy of every file of the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The headers every file of the page is sent with (besides `Content-Type` and
/// `Cache-Control: no-store`).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
    // `/` answers HTML or JSON depending on Accept.
    ("vary", "Accept"),
];

/// One embedded file: its path under [`PATH`], content type and content.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const PAGE: Asset = Asset {
    name: "",
    content_type: "text/html; charset=utf-8",
    body: include_str!("index.html"),
};

const ASSETS: &[Asset] = &[
    PAGE,
    Asset {
        name: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("app.css"),
    },
    Asset {
        name: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("app.js"),
    },
    Asset {
        name: "/data.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("data.js"),
    },
    Asset {
        name: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("favicon.svg"),
    },
];

/// The page's answer to `req`, or `None` when the request is for the API. GET only (another
/// method on a page path is a 405); `/` is the page only for a browser's GET without
/// `?action=`, so the seed interface and API clients keep their JSON.
pub fn serve(req: &Request) -> Option<Result<Response, ApiError>> {
    let path = req.uri().path();
    let asset = if path == "/" || path.is_empty() {
        if req.method() != Method::GET || has_action(req) || !wants_html(req) {
            return None;
        }
        &PAGE
    } else {
        let name = path.strip_prefix(PATH)?;
        let name = if name == "/" { "" } else { name };
        ASSETS.iter().find(|a| a.name == name)?
    };
    if req.method() != Method::GET {
        return Some(Err(ApiError::MethodNotAllowed {
            allow: &[Method::GET],
        }));
    }
    let mut response = http::Response::new(asset.body.to_string());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Some(Ok(response))
}

fn has_action(req: &Request) -> bool {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .any(|(name, _)| name == "action")
}

/// True when the `Accept` header names `text/html` (with a non-zero quality), as a browser's
/// navigation does; `*/*` (curl, fetch) does not count.
fn wants_html(req: &Request) -> bool {
    req.headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|accept| accept.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let zero_quality = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("text/html") && !zero_quality
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    fn req(method: &str, url: &str, accept: Option<&str>) -> Request {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("http://w{url}"));
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        builder.body(()).unwrap()
    }

    fn page(method: &str, url: &str, accept: Option<&str>) -> Option<Response> {
        serve(&req(method, url, accept)).map(|r| r.expect("a page"))
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    #[test]
    fn the_page_is_at_dashboard_and_at_root_for_browsers_only() {
        for (url, accept) in [
            ("/dashboard", None),
            ("/dashboard/", Some("*/*")),
            ("/", Some(BROWSER)),
            ("/?utm=x", Some("TEXT/HTML")),
            ("/", Some("application/json;q=0.9, text/html;q=0.5")),
        ] {
            let answer = page("GET", url, accept).expect(url);
            assert_eq!(answer.status(), 200);
            assert!(
                header(&answer, "content-type").starts_with("text/html"),
                "{url}"
            );
            assert!(answer.body().contains("<title>"), "{url}");
        }
        // API clients, the seed interface and other methods keep the JSON API at `/`.
        for (method, url, accept) in [
            ("GET", "/", None),
            ("GET", "/", Some("*/*")),
            ("GET", "/", Some("application/json")),
            ("GET", "/", Some("text/html;q=0, */*")),
            ("GET", "/", Some("application/json, text/html; q=0.000")),
            ("GET", "/?action=status", Some(BROWSER)),
            ("POST", "/", Some(BROWSER)),
            ("GET", "/token-manager", Some(BROWSER)),
            ("GET", "/dashboard/nope.js", None),
            ("GET", "/dashboards", None),
        ] {
            assert!(
                serve(&req(method, url, accept)).is_none(),
                "{method} {url} {accept:?}"
            );
        }
    }

    #[test]
    fn every_file_has_its_type_and_the_security_headers() {
        for (name, content_type) in [
            ("", "text/html"),
            ("/app.css", "text/css"),
            ("/app.js", "text/javascript"),
            ("/data.js", "text/javascript"),
            ("/favicon.svg", "image/svg+xml"),
        ] {
            let answer = page("GET", &format!("{PATH}{name}"), None).unwrap();
            assert!(
                header(&answer, "content-type").starts_with(content_type),
                "{name}"
            );
            assert_eq!(header(&answer, "cache-control"), "no-store");
            for (header_name, value) in SECURITY_HEADERS {
                assert_eq!(header(&answer, header_name), *value, "{name}");
            }
        }
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn other_methods_on_the_page_answer_405() {
        let error = serve(&req("POST", "/dashboard", Some(BROWSER)))
            .unwrap()
            .unwrap_err();
        assert_eq!(error.status(), 405);
        assert_eq!(error.allow().as_deref(), Some("GET"));
    }

    #[test]
    fn the_page_has_no_inline_code_and_no_other_origin() {
        let page = PAGE.body;
        assert!(!page.contains("<style"), "inline style element");
        assert!(!page.contains(" style="), "inline style attribute");
        let handler = page.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "inline event handler: on{handler:?}");
        for (at, _) in page.match_indices("<script") {
            let tag = &page[at..at + page[at..].find('>').unwrap()];
            assert!(tag.contains("src=\"/dashboard/"), "inline script: {tag}");
        }
        for asset in ASSETS {
            // The SVG namespace is a name, not a place anything is fetched from.
            let body = asset.body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
                "{} names another origin",
                asset.name
            );
        }
    }
}
