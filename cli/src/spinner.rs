//! A spinner on stderr for requests that take a while: it appears only after a delay
//! (~300 ms), only on a terminal, and erases itself when the request ends.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a request runs before the spinner shows.
pub const DELAY: Duration = Duration::from_millis(300);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A running spinner; stopping it (or dropping it) erases its line.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner labelled `label` when `enabled` (stderr is a terminal); otherwise a
    /// no-op that costs nothing.
    pub fn start(label: &'static str, enabled: bool) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = enabled.then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || run(label, &stop))
        });
        Spinner { stop, handle }
    }

    /// Stops and erases the spinner.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
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

fn run(label: &str, stop: &AtomicBool) {
    let start = Instant::now();
    let tick = Duration::from_millis(20);
    while start.elapsed() < DELAY {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(tick);
    }
    let mut err = std::io::stderr();
    let mut frame = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let _ = write!(err, "\r{} {label}", FRAMES[frame % FRAMES.len()]);
        let _ = err.flush();
        frame += 1;
        for _ in 0..4 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(tick);
        }
    }
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_spinner_is_a_no_op() {
        let s = Spinner::start("x", false);
        assert!(s.handle.is_none());
        s.stop();
    }

    #[test]
    fn quick_requests_never_draw() {
        // Stopped before the delay: the thread exits without writing (nothing to assert on
        // stderr here, but it must return promptly).
        let t = Instant::now();
        Spinner::start("x", true).stop();
        assert!(t.elapsed() < DELAY);
    }
}
