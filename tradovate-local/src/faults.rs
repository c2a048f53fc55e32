//! Switches a test flips (through `POST /__admin/faults`) to make `renewaccesstoken` answer
//! the ways Tradovate documents it can: slowly, with `errorText`, with a penalty ticket, with
//! a captcha penalty, with 429, or with 401.

use serde::{Deserialize, Serialize};

/// How the next renewals answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Wait `delay_ms`, then answer normally.
    Slow,
    /// HTTP 200 with `{"errorText": ...}` and no token.
    ErrorText,
    /// HTTP 200 with `{"p-ticket", "p-time"}`: the request was not handled.
    PTicket,
    /// HTTP 200 with `{"p-ticket", "p-time", "p-captcha": true}`.
    Captcha,
    /// HTTP 429 with an empty body.
    TooManyRequests,
    /// HTTP 401, as for an unknown token.
    Unauthorized,
}

impl FaultMode {
    /// The snake_case name (as in the admin request and the request log).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultMode::Slow => "slow",
            FaultMode::ErrorText => "error_text",
            FaultMode::PTicket => "p_ticket",
            FaultMode::Captcha => "captcha",
            FaultMode::TooManyRequests => "too_many_requests",
            FaultMode::Unauthorized => "unauthorized",
        }
    }
}

/// The body of `POST /__admin/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// How the renewals answer.
    pub mode: FaultMode,
    /// How many renewals answer this way (then the fault clears); absent: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// `slow`: how long to wait before answering (default 2000).
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    /// `p_ticket`/`captcha`: the `p-time` to answer (default 60).
    #[serde(default = "default_p_time")]
    pub p_time: u64,
    /// `error_text`: the text (default "Access is denied").
    #[serde(default = "default_error_text")]
    pub error_text: String,
}

fn default_delay_ms() -> u64 {
    2000
}
fn default_p_time() -> u64 {
    60
}
fn default_error_text() -> String {
    "Access is denied".to_string()
}

/// The fault in force, if any, counting down its `times`.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    current: Option<Fault>,
}

impl Faults {
    /// Replaces the fault in force.
    pub fn set(&mut self, fault: Option<Fault>) {
        self.current = fault.filter(|f| f.times != Some(0));
    }

    /// The fault in force.
    pub fn current(&self) -> Option<&Fault> {
        self.current.as_ref()
    }

    /// The fault for one renewal, counting it down; `None` answers normally.
    pub fn take(&mut self) -> Option<Fault> {
        let fault = self.current.clone()?;
        if let Some(times) = fault.times {
            self.current = (times > 1).then(|| Fault {
                times: Some(times - 1),
                ..fault.clone()
            });
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_with_times_clears_itself() {
        let mut faults = Faults::default();
        let fault: Fault = serde_json::from_str(r#"{"mode":"p_ticket","times":2}"#).unwrap();
        assert_eq!((fault.p_time, fault.delay_ms), (60, 2000));
        faults.set(Some(fault));
        assert_eq!(faults.take().unwrap().mode, FaultMode::PTicket);
        assert!(faults.take().is_some());
        assert!(faults.take().is_none());
        faults.set(Some(
            serde_json::from_str(r#"{"mode":"unauthorized"}"#).unwrap(),
        ));
        for _ in 0..5 {
            assert_eq!(faults.take().unwrap().mode, FaultMode::Unauthorized);
        }
        assert!(serde_json::from_str::<Fault>(r#"{"mode":"nope"}"#).is_err());
    }
}
