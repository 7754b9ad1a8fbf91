//! Progress bars on stderr for the flows' long steps; hidden for `--json`, for output
//! that is not a terminal, and in tests.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use medcert_flows::{Observer, Step};

/// Draws the flows' steps as bars (bytes) and spinners (waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bars {
    visible: bool,
}

impl Bars {
    /// Draws nothing.
    pub(crate) fn hidden() -> Self {
        Self { visible: false }
    }

    /// Draws on stderr when it is a terminal.
    pub(crate) fn on_terminal() -> Self {
        Self {
            visible: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self, label: &str, total: Option<u64>) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        match total {
            Some(total) => {
                let bar = ProgressBar::new(total).with_message(label.to_owned());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner().with_message(label.to_owned());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .expect("a valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
        }
    }
}

impl Observer for Bars {
    fn step(&self, label: &str, total: Option<u64>) -> Box<dyn Step> {
        Box::new(Drawn(self.bar(label, total)))
    }
}

/// A bar that clears itself when its step ends.
struct Drawn(ProgressBar);

impl Step for Drawn {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Drawn {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_bars_have_valid_templates_and_hidden_ones_draw_nothing() {
        let visible = Bars { visible: true };
        let bar = visible.bar("upload", Some(10));
        bar.inc(10);
        bar.finish_and_clear();
        visible.bar("waiting", None).finish_and_clear();
        assert!(Bars::hidden().bar("upload", Some(10)).is_hidden());
        assert!(Bars::hidden().bar("waiting", None).is_hidden());
        let step = Bars::hidden().step("upload", Some(10));
        step.advance(10);
    }
}
