//! The Workers runtime adapter: turns fetch and scheduled events into calls of [`crate::http`]
//! and [`crate::jobs`]. No business logic lives here.

use chrono::Utc;
use worker::{event, Context, Env, Headers, Result, ScheduleContext, ScheduledEvent};

use crate::config::{Config, ConfigError};
use crate::http;

fn config(env: &Env) -> std::result::Result<Config, ConfigError> {
    Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
}

#[event(fetch)]
async fn fetch(mut req: worker::Request, env: Env, _ctx: Context) -> Result<worker::Response> {
    console_error_panic_hook::set_once();
    let authorization = req.headers().get("authorization")?;
    let body = req.bytes().await.unwrap_or_default();
    let url = req.url()?;
    let response =
        match http::Request::new(&req.method().to_string(), url.as_str(), authorization, body) {
            Some(request) => http::handle(request, config(&env), Utc::now()).await,
            None => http::Response {
                status: 400,
                body: r#"{"error":{"code":"invalid_url","message":"the URL does not parse"}}"#
                    .into(),
                allow: None,
            },
        };
    let headers = Headers::new();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    if let Some(allow) = response.allow {
        headers.set("allow", allow)?;
    }
    Ok(worker::Response::ok(response.body)?
        .with_status(response.status)
        .with_headers(headers))
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    crate::jobs::scheduled(config(&env), &event.cron()).await;
}
