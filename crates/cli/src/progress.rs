//! Progress bars on stderr for uploads, downloads and waits; hidden for `--json`, for
//! output that is not a terminal, and in tests.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether flows draw progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Draws nothing.
    pub fn hidden() -> Self {
        Self { visible: false }
    }

    /// Draws on stderr when it is a terminal.
    pub fn on_terminal() -> Self {
        Self {
            visible: std::io::stderr().is_terminal(),
        }
    }

    /// A bar over `total` bytes.
    pub fn bytes(&self, total: u64, message: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(message.to_owned());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    }

    /// A spinner with elapsed time, for waits of unknown length.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(message.to_owned());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_bars_have_valid_templates_and_hidden_ones_draw_nothing() {
        let visible = Progress { visible: true };
        let bar = visible.bytes(10, "upload");
        bar.inc(10);
        bar.finish_and_clear();
        visible.spinner("waiting").finish_and_clear();
        assert!(Progress::hidden().bytes(10, "upload").is_hidden());
        assert!(Progress::hidden().spinner("waiting").is_hidden());
    }
}
