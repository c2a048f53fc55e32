//! Alert bodies (`ALERT_FORMAT`): the event as JSON, or the incoming-webhook shapes of Slack
//! (`{"text", "blocks"}`) and Discord (`{"content", "embeds"}`), so a pasted Slack or Discord
//! webhook URL shows readable messages. Lists are cut to fit those services' limits.

use serde_json::{json, Value};

use super::Event;
use crate::config::AlertFormat;

/// Accounts named in a Slack or Discord message; the rest are counted.
const SHOWN_ACCOUNTS: usize = 20;

/// The body to POST for `event` in `format`.
pub fn body(format: AlertFormat, event: &Event) -> String {
    let value = match format {
        AlertFormat::Json => serde_json::to_value(event).expect("events serialise"),
        AlertFormat::Slack => slack(event),
        AlertFormat::Discord => discord(event),
    };
    value.to_string()
}

/// `APEX_1, APEX_2 and 3 more`, or `none`.
fn accounts_line(event: &Event) -> String {
    if event.accounts.is_empty() {
        return "none".into();
    }
    let shown: Vec<&str> = event
        .accounts
        .iter()
        .take(SHOWN_ACCOUNTS)
        .map(String::as_str)
        .collect();
    let more = event.accounts_total.saturating_sub(shown.len());
    let mut line = shown.join(", ");
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn slack(event: &Event) -> Value {
    let mark = if event.kind.is_problem() {
        ":rotating_light:"
    } else {
        ":white_check_mark:"
    };
    let text = cut(
        &format!(
            "{mark} token-manager {}: {}",
            event.kind.as_str(),
            event.summary
        ),
        2900,
    );
    let mut context = format!("accounts: {}", accounts_line(event));
    if let Some(run) = &event.run_id {
        context.push_str(&format!(" · run {run}"));
    }
    context.push_str(&format!(" · event {}", event.id));
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": cut(&context, 2900) } ] },
        ],
    })
}

fn discord(event: &Event) -> Value {
    let color = if event.kind.is_problem() {
        0xD0_30_30
    } else {
        0x2E_A0_43
    };
    let mut fields = vec![json!({
        "name": "Accounts", "value": cut(&accounts_line(event), 1000), "inline": false,
    })];
    if let Some(run) = &event.run_id {
        fields.push(json!({ "name": "Run", "value": run, "inline": true }));
    }
    json!({
        "content": cut(&format!("token-manager **{}**: {}", event.kind.as_str(), event.summary), 1900),
        "embeds": [{
            "title": event.kind.as_str(),
            "description": cut(&event.summary, 4000),
            "color": color,
            "fields": fields,
            "footer": { "text": format!("event {}", event.id) },
            "timestamp": event.occurred_at.to_rfc3339(),
        }],
        "allowed_mentions": { "parse": [] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Kind;

    fn event(accounts: usize) -> Event {
        Event::new(
            Kind::SyncFailed,
            "Sync failed: Upstash is unreachable".into(),
            (0..accounts).map(|i| format!("APEX_{i}")).collect(),
            Some("run-1".into()),
            json!({}),
        )
    }

    #[test]
    fn json_is_the_event() {
        let body: Value = serde_json::from_str(&body(AlertFormat::Json, &event(2))).unwrap();
        assert_eq!(body["type"], "sync_failed");
        assert_eq!(body["accounts"], json!(["APEX_0", "APEX_1"]));
        assert_eq!(body["run_id"], "run-1");
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    }

    #[test]
    fn slack_and_discord_shapes_within_their_limits() {
        let e = event(250);
        let slack: Value = serde_json::from_str(&body(AlertFormat::Slack, &e)).unwrap();
        assert!(slack["text"].as_str().unwrap().contains("sync_failed"));
        assert_eq!(slack["blocks"][0]["type"], "section");
        let context = slack["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains("and 230 more"), "{context}");
        let discord: Value = serde_json::from_str(&body(AlertFormat::Discord, &e)).unwrap();
        assert!(discord["content"].as_str().unwrap().chars().count() <= 2000);
        assert_eq!(discord["embeds"][0]["title"], "sync_failed");
        assert!(
            discord["embeds"][0]["fields"][0]["value"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 1024
        );
        let long = Event::new(
            Kind::SyncFailed,
            "x".repeat(10_000),
            vec![],
            None,
            json!({}),
        );
        let discord: Value = serde_json::from_str(&body(AlertFormat::Discord, &long)).unwrap();
        assert!(discord["content"].as_str().unwrap().chars().count() <= 2000);
        assert!(
            discord["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 4096
        );
    }
}
