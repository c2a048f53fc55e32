//! The Workers runtime adapter: turns fetch and scheduled events into calls of [`crate::http`]
//! and [`crate::jobs`]. No business logic lives here.
//!
//! The configuration is parsed once per isolate (the first event), not per request: an
//! isolate's vars and secrets never change (a new deployment or secret starts new isolates).
//! The request body is never read: no route takes one.

use std::cell::OnceCell;

use chrono::Utc;
use worker::{event, Context, Env, Headers, Result, ScheduleContext, ScheduledEvent};

use crate::config::Loaded;
use crate::http;

thread_local! {
    static LOADED: OnceCell<Loaded> = const { OnceCell::new() };
}

/// The isolate's configuration, parsed on first use.
fn loaded(env: &Env) -> Loaded {
    LOADED.with(|cell| {
        cell.get_or_init(|| Loaded::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())))
            .clone()
    })
}

/// The request's method, URL and headers as an [`http::Request`]; `None` if they do not form
/// one (an unparsable URL or method).
fn request(req: &worker::Request) -> Option<http::Request> {
    let url = req.url().ok()?;
    let mut builder = ::http::Request::builder()
        .method(req.method().to_string().as_str())
        .uri(url.as_str());
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    builder.body(()).ok()
}

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, ctx: Context) -> Result<worker::Response> {
    console_error_panic_hook::set_once();
    let response = match request(&req) {
        Some(request) => {
            let (response, deferred) =
                http::handle_deferred(request, loaded(&env), Utc::now()).await;
            // Audit rows (and alerts) are written after the answer is sent.
            if !deferred.is_empty() {
                ctx.wait_until(deferred.run());
            }
            response
        }
        None => http::error_response(&http::error::ApiError::BadRequest {
            code: "invalid_url",
            message: "the URL, method or a header does not parse".into(),
        }),
    };
    let headers = Headers::new();
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            headers.set(name.as_str(), value)?;
        }
    }
    let status = response.status().as_u16();
    Ok(worker::Response::ok(response.into_body())?
        .with_status(status)
        .with_headers(headers))
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let deferred = crate::jobs::scheduled(loaded(&env).config, &event.cron()).await;
    // Alerts are sent after the job, without holding up the trigger's outcome.
    if !deferred.is_empty() {
        ctx.wait_until(deferred.run());
    }
}
