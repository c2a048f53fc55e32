//! A spinner on stderr (indicatif) for requests that take a while: it appears only after
//! [`DELAY`], only on a terminal, and erases itself when the request ends.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How long a request runs before the spinner shows.
pub const DELAY: Duration = Duration::from_millis(300);
/// The frames, then the (blank) finished frame.
const TICKS: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

/// A running spinner; stopping it (or dropping it) erases its line.
pub struct Spinner {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner labelled `label` when `enabled` (stderr is a terminal); otherwise a
    /// no-op that costs nothing. The bar lives on its own thread, which draws nothing if the
    /// spinner is stopped within [`DELAY`].
    pub fn start(label: &'static str, enabled: bool) -> Spinner {
        if !enabled {
            return Spinner {
                stop: None,
                handle: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            if stopped.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = ProgressBar::new_spinner().with_message(label);
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style.tick_chars(TICKS));
            }
            bar.enable_steady_tick(Duration::from_millis(80));
            let _ = stopped.recv();
            bar.finish_and_clear();
        });
        Spinner {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops and erases the spinner.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn disabled_spinner_is_a_no_op() {
        let s = Spinner::start("x", false);
        assert!(s.handle.is_none());
        s.stop();
    }

    #[test]
    fn quick_requests_never_draw() {
        // Stopped before the delay: the thread exits without drawing, and promptly.
        let t = Instant::now();
        Spinner::start("x", true).stop();
        assert!(t.elapsed() < DELAY);
    }

    #[test]
    fn a_slow_request_stops_cleanly() {
        let s = Spinner::start("x", true);
        std::thread::sleep(DELAY + Duration::from_millis(100));
        let t = Instant::now();
        s.stop();
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
