//! Log throttling: a warning that a peer or a client can cause is logged at most
//! [`Throttle::BURST`] times per [`Throttle::WINDOW`]; the rest are counted, and the count
//! is logged with the next one that passes. So junk on the wire cannot flood the
//! operator's logs (or the disk under them), and nothing is hidden without a trace.

use std::time::Duration;

use tokio::time::Instant;

/// One kind of warning's budget.
#[derive(Debug)]
pub(crate) struct Throttle {
    window_start: Option<Instant>,
    passed: u32,
    suppressed: u64,
}

impl Throttle {
    /// Warnings of one kind logged per window.
    pub(crate) const BURST: u32 = 5;
    pub(crate) const WINDOW: Duration = Duration::from_secs(60);

    pub(crate) const fn new() -> Throttle {
        Throttle {
            window_start: None,
            passed: 0,
            suppressed: 0,
        }
    }

    /// Whether to log one more warning now: `Some(n)` with the number suppressed since the
    /// last one logged, or `None` to stay quiet (it is counted).
    pub(crate) fn admit(&mut self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= Self::WINDOW);
        if fresh {
            self.window_start = Some(now);
            self.passed = 0;
        }
        if self.passed >= Self::BURST {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.passed = self.passed.saturating_add(1);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_counted_until_the_next_window() {
        let start = Instant::now();
        let mut throttle = Throttle::new();
        for _ in 0..Throttle::BURST {
            assert_eq!(throttle.admit_at(start), Some(0));
        }
        for _ in 0..7 {
            assert_eq!(throttle.admit_at(start + Duration::from_secs(59)), None);
        }
        assert_eq!(throttle.admit_at(start + Throttle::WINDOW), Some(7));
        assert_eq!(throttle.admit_at(start + Throttle::WINDOW), Some(0));
    }
}
