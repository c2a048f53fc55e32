//! Request counts from the services' own logs, not from the Worker: upstash-local writes one
//! `upstash-local request ...` line per request, PostgREST (log-level info) one access-log
//! line. A marker request to each service, waited for in its log, fences a measurement, so
//! lines still buffered from before cannot land inside it nor late lines fall out of it.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Res;

/// Which service's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Upstash,
    Postgrest,
}

/// A service's log and how to put a marker into it.
pub struct Log {
    pub service: Service,
    path: PathBuf,
    base_url: String,
    auth: String,
    markers: u64,
}

/// Requests between two fences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub requests: u64,
    /// Redis commands those requests carried (upstash-local's `commands=`; 0 for PostgREST).
    pub commands: u64,
}

impl Log {
    pub fn new(service: Service, path: impl Into<PathBuf>, base_url: &str, auth: &str) -> Log {
        Log {
            service,
            path: path.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            auth: auth.to_string(),
            markers: 0,
        }
    }

    /// Sends a marker request and returns the log offset just past its line.
    pub async fn fence(&mut self, http: &reqwest::Client) -> Res<u64> {
        self.markers += 1;
        let start = std::fs::metadata(&self.path)?.len();
        let (url, marker) = match self.service {
            // Only the benchmark sends ECHO; the log shows the command, not its argument.
            Service::Upstash => (format!("{}/echo/bench-fence", self.base_url), None),
            Service::Postgrest => {
                let path = format!("/bench_fence_{}_{}", std::process::id(), self.markers);
                // The trailing space makes the match exact (`_1` is not `_10`).
                (format!("{}{path}", self.base_url), Some(format!("{path} ")))
            }
        };
        http.get(&url).bearer_auth(&self.auth).send().await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = read_from(&self.path, start)?;
            let mut offset = start;
            for line in text.split_inclusive('\n') {
                offset += line.len() as u64;
                if line.ends_with('\n') && self.is_marker(line, marker.as_deref()) {
                    return Ok(offset);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the marker request never showed in {} (is its request logging on?)",
                    self.path.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The requests logged between two fences, not counting the closing marker.
    pub fn count(&self, from: u64, to: u64) -> Res<Counted> {
        let text = read_from(&self.path, from)?;
        let text = &text[..(to - from) as usize];
        let mut counted = Counted::default();
        for line in text.lines() {
            if !self.is_request(line) || self.is_marker(line, Some("/bench_fence_")) {
                continue;
            }
            counted.requests += 1;
            if let Some(n) = field(line, "commands=") {
                counted.commands += n.parse::<u64>().unwrap_or(0);
            }
        }
        Ok(counted)
    }

    fn is_request(&self, line: &str) -> bool {
        match self.service {
            Service::Upstash => line.starts_with("upstash-local request "),
            // 127.0.0.1 - service_role [26/Nov/2026:16:22:27 +0000] "POST /rpc/x HTTP/1.1" 200 - "" ""
            Service::Postgrest => line.contains("] \"") && line.contains(" HTTP/1"),
        }
    }

    fn is_marker(&self, line: &str, marker: Option<&str>) -> bool {
        if !self.is_request(line) {
            return false;
        }
        match self.service {
            Service::Upstash => field(line, "path=") == Some("/echo"),
            Service::Postgrest => marker.is_some_and(|m| line.contains(&format!(" {m}"))),
        }
    }
}

/// The value of `name` (e.g. `path=`) in a `key=value` log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|part| part.trim_end().strip_prefix(name))
}

fn read_from(path: &PathBuf, offset: u64) -> Res<String> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_recognises_lines() {
        let up = "upstash-local request ts=1.0 method=POST path=/pipeline status=200 commands=3 duration_ms=0.4";
        assert_eq!(field(up, "commands="), Some("3"));
        assert_eq!(field(up, "path="), Some("/pipeline"));
        let log = Log::new(Service::Upstash, "/dev/null", "http://x", "t");
        assert!(log.is_request(up));
        assert!(!log.is_marker(up, None));
        assert!(log.is_marker(
            "upstash-local request ts=1.0 method=GET path=/echo status=200 commands=1 duration_ms=0.1",
            None
        ));
        let pg = Log::new(Service::Postgrest, "/dev/null", "http://x", "t");
        let line = r#"127.0.0.1 - service_role [26/Nov/2026:16:22:27 +0000] "POST /rpc/token_manager_get HTTP/1.1" 200 - "" """#;
        assert!(pg.is_request(line));
        assert!(!pg.is_request("26/Nov/2026:16:13:06 +0000: Schema cache loaded"));
        let fence = r#"127.0.0.1 - service_role [26/Nov/2026:16:22:27 +0000] "GET /bench_fence_1_2 HTTP/1.1" 404 - "" """#;
        assert!(pg.is_marker(fence, Some("/bench_fence_1_2 ")));
        assert!(!pg.is_marker(fence, Some("/bench_fence_1_20 ")));
        assert!(pg.is_marker(fence, Some("/bench_fence_")));
        assert!(!pg.is_marker(line, Some("/bench_fence_")));
    }
}
