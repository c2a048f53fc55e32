//! Sending alerts: every event to every URL, concurrently, all of it within one timeout
//! (`UPSTREAM_TIMEOUT_MS`), one retry after a connection failure, a 429 or a 5xx (an attempt the
//! timeout cuts is not retried), each attempt counted as a subrequest and refused beyond the
//! invocation's budget. Every outcome is logged with the URL's host only: Slack and Discord
//! URLs hold their secret in the path.

use std::cell::RefCell;

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use super::{format, signature, Event};
use crate::config::WebhookUrl;
use crate::jobs::Services;

/// What one URL returned for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The URL's host (and port); never its path or query.
    pub host: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// True when the receiver answered 2xx.
    pub ok: bool,
    /// The receiver's last HTTP status, if it answered.
    pub status: Option<u16>,
    /// Attempts made (1 or 2; 0 when the budget allowed none).
    pub attempts: u8,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Sends each event to each configured URL; answers one [`Delivery`] per pair and logs each.
/// The URLs are served at once; each gets the events in order.
pub async fn send(services: &Services, since: usize, events: &[Event]) -> Vec<Delivery> {
    let settings = &services.config.alerts;
    // outcomes[u][e]: event e to URL u.
    let outcomes: Vec<Vec<RefCell<Delivery>>> = settings
        .urls
        .iter()
        .map(|url| {
            events
                .iter()
                .map(|event| {
                    RefCell::new(Delivery {
                        host: url.host().to_string(),
                        event_id: event.id.clone(),
                        kind: event.kind.as_str(),
                        ok: false,
                        status: None,
                        attempts: 0,
                        error: Some(format!(
                            "no answer within {} ms (UPSTREAM_TIMEOUT_MS)",
                            settings.timeout_ms
                        )),
                    })
                })
                .collect()
        })
        .collect();
    let client = reqwest::Client::new();
    let started = Utc::now();
    let all = futures_util::future::join_all(settings.urls.iter().zip(&outcomes).map(
        |(url, outcomes)| {
            let client = &client;
            async move {
                for (event, outcome) in events.iter().zip(outcomes) {
                    deliver(services, since, client, event, url, outcome).await;
                }
            }
        },
    ));
    // Whatever is not done at the deadline keeps its "no answer" outcome.
    let _ = crate::timeout::within(settings.timeout_ms, all).await;
    let duration_ms = (Utc::now() - started).num_milliseconds();
    let outcomes: Vec<Delivery> = outcomes
        .into_iter()
        .flatten()
        .map(RefCell::into_inner)
        .collect();
    for d in &outcomes {
        crate::logging::log(json!({
            "event": "alert_delivery", "type": d.kind, "event_id": d.event_id, "host": d.host,
            "ok": d.ok, "status": d.status, "attempts": d.attempts, "error": d.error,
            "duration_ms": duration_ms,
        }));
    }
    outcomes
}

/// Up to two attempts of one event to one URL, recording each in `outcome`.
async fn deliver(
    services: &Services,
    since: usize,
    client: &reqwest::Client,
    event: &Event,
    url: &WebhookUrl,
    outcome: &RefCell<Delivery>,
) {
    let settings = &services.config.alerts;
    let body = format::body(settings.format, event);
    for attempt in 1..=2u8 {
        if services.subrequests_left(since) == 0 {
            outcome.borrow_mut().error = Some(
                "not sent: the invocation's subrequest budget (SUBREQUEST_BUDGET) is spent".into(),
            );
            return;
        }
        services.subrequests.add();
        let mut request = client
            .post(url.expose())
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("token-manager/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-token-manager-event", event.kind.as_str())
            .header("x-token-manager-event-id", &event.id);
        if let Some(secret) = &settings.secret {
            let value = signature::header_value(secret.expose(), Utc::now().timestamp(), &body);
            request = request.header(signature::HEADER, value);
        }
        outcome.borrow_mut().attempts = attempt;
        let retry = match request.body(body.clone()).send().await {
            Ok(response) => {
                let status = response.status();
                let mut o = outcome.borrow_mut();
                o.status = Some(status.as_u16());
                o.ok = status.is_success();
                o.error =
                    (!o.ok).then(|| format!("the receiver answered HTTP {}", status.as_u16()));
                status.is_server_error() || status.as_u16() == 429
            }
            Err(e) => {
                outcome.borrow_mut().error =
                    Some(format!("could not reach the receiver: {}", e.without_url()));
                true
            }
        };
        if !retry {
            return;
        }
    }
}
