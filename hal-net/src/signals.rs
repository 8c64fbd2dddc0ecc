//! Stop signals for the binary's long-running commands.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// when this is called, not when the future is first polled, so a signal that arrives in
/// between is not lost (and does not kill the process the default way).
pub fn stop() -> impl Future<Output = ()> {
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                // Without a handler the signal still stops the process the default way.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}
