//! Progress of the long commands (`eval`, `ablate`, `tune`). On a terminal, indicatif's bar.
//! When stderr is not a terminal (a log file, a background job, CI) indicatif hides the bar, so
//! plain lines go there instead — how far, how fast, how long still — at most one every
//! [`PLAIN_EVERY`], and always one for the last update.

use indicatif::{HumanDuration, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The longest a log goes without a progress line while updates arrive.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

pub struct Progress {
    bar: ProgressBar,
    plain: Option<Plain>,
}

/// The plain-line view: `{label}: {done}/{total} {unit} ({message}), {rate} {unit}/min, ETA …`.
struct Plain {
    label: &'static str,
    unit: &'static str,
    total: u64,
    done: u64,
    /// Units of work seen since the clock started (the rate's numerator: a resumed run's
    /// position starts beyond 0).
    worked: u64,
    message: String,
    started: Instant,
    said: Option<(Instant, u64)>,
}

impl Progress {
    /// `template`: the bar's indicatif template; `label` and `unit` name the plain lines'
    /// command and what is counted.
    pub fn new(template: &str, len: u64, label: &'static str, unit: &'static str) -> Self {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let plain = (!std::io::stderr().is_terminal()).then(|| Plain {
            label,
            unit,
            total: len,
            done: 0,
            worked: 0,
            message: String::new(),
            started: Instant::now(),
            said: None,
        });
        Self { bar, plain }
    }

    /// Starts over at 0 of `len` (the clock too).
    pub fn restart(&mut self, len: u64) {
        self.bar.set_length(len);
        self.bar.set_position(0);
        if let Some(p) = &mut self.plain {
            p.total = len;
            p.done = 0;
            p.worked = 0;
            p.started = Instant::now();
            p.said = None;
        }
    }

    /// `n` more units done.
    pub fn inc(&mut self, n: u64) {
        let pos = self.bar.position() + n;
        self.moved(pos, n);
    }

    /// One unit of work brought the count to `pos` (a resumed run's first step lands beyond 1).
    pub fn step_to(&mut self, pos: u64) {
        self.moved(pos, 1);
    }

    fn moved(&mut self, pos: u64, worked: u64) {
        self.bar.set_position(pos);
        if let Some(p) = &mut self.plain {
            p.done = pos;
            p.worked += worked;
            let due = p.said.is_none_or(|(t, _)| t.elapsed() >= PLAIN_EVERY);
            if p.done >= p.total || due {
                p.say();
            }
        }
    }

    pub fn set_message(&mut self, message: String) {
        if let Some(p) = &mut self.plain {
            p.message.clone_from(&message);
        }
        self.bar.set_message(message);
    }

    /// Clears the bar; on a log, says the last position if no line has said it yet.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
        if let Some(p) = &mut self.plain {
            if p.said.map(|(_, d)| d) != Some(p.done) && p.done > 0 {
                p.say();
            }
        }
    }
}

impl Plain {
    fn say(&mut self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let per_min = self.worked as f64 / secs * 60.0;
        let left = self.total.saturating_sub(self.done);
        let eta = if left == 0 {
            "0 seconds".to_string()
        } else if self.worked == 0 {
            "unknown".to_string()
        } else {
            HumanDuration(Duration::from_secs_f64(left as f64 / per_min * 60.0)).to_string()
        };
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.message)
        };
        eprintln!(
            "{}: {}/{} {}{message}, {per_min:.1} {}/min, ETA {eta}",
            self.label, self.done, self.total, self.unit, self.unit
        );
        self.said = Some((Instant::now(), self.done));
    }
}
