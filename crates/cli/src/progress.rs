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

/// The plain-line view: `{label}: {done}/{total} {unit} ({message}), {rate} {unit}/min, ETA …`
/// (position, length and message are the bar's).
struct Plain {
    label: &'static str,
    unit: &'static str,
    /// Units of work seen since the clock started (the rate's numerator: a resumed run's
    /// position starts beyond 0).
    worked: u64,
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
            worked: 0,
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
            p.worked += worked;
            let due = p.said.is_none_or(|(t, _)| t.elapsed() >= PLAIN_EVERY);
            if pos >= self.bar.length().unwrap_or(0) || due {
                p.say(&self.bar);
            }
        }
    }

    pub fn set_message(&mut self, message: String) {
        self.bar.set_message(message);
    }

    /// Clears the bar; on a log, says the last position if no line has said it yet.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
        let done = self.bar.position();
        if let Some(p) = &mut self.plain {
            if p.said.map(|(_, d)| d) != Some(done) && done > 0 {
                p.say(&self.bar);
            }
        }
    }
}

impl Plain {
    fn say(&mut self, bar: &ProgressBar) {
        let (done, total) = (bar.position(), bar.length().unwrap_or(0));
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let per_min = self.worked as f64 / secs * 60.0;
        let left = total.saturating_sub(done);
        let eta = if left == 0 {
            "0 seconds".to_string()
        } else if self.worked == 0 {
            "unknown".to_string()
        } else {
            HumanDuration(Duration::from_secs_f64(left as f64 / per_min * 60.0)).to_string()
        };
        let message = bar.message();
        let message = if message.is_empty() {
            String::new()
        } else {
            format!(" ({message})")
        };
        eprintln!(
            "{}: {done}/{total} {}{message}, {per_min:.1} {}/min, ETA {eta}",
            self.label, self.unit, self.unit
        );
        self.said = Some((Instant::now(), done));
    }
}

/// The eval runner reports to the same progress.
impl culturesteer_eval::runner::Progress for Progress {
    fn start(&mut self, total: u64) {
        self.restart(total);
    }
    fn inc(&mut self, n: u64) {
        Progress::inc(self, n);
    }
    fn message(&mut self, msg: &str) {
        self.set_message(msg.to_string());
    }
    fn finish(&mut self) {
        Progress::finish(self);
    }
}
