//! VRRP's own tokio runtime, on its own thread.
//!
//! A master that misses adverts loses the VIPs, so VRRP must never wait
//! behind proxy, check or stats work. On the shared runtime a burst of
//! such work (it was argon2 on wrong logins) delayed adverts by seconds.
//! Here every VRRP task, socket and timer lives on a runtime whose only
//! worker thread does nothing else: sockets are registered with its
//! reactor (they are opened while it is entered), and its timers run on
//! it. It talks to the rest of lbd only through channels, which work
//! across runtimes.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// The thread's name, as `top -H` and `/proc/<pid>/task/*/comm` show it.
pub const THREAD_NAME: &str = "lbd-vrrp";

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The VRRP runtime's handle, made on first use and kept for the life of
/// the process (a runtime must not be dropped inside another one). If it
/// cannot be made, the caller's runtime is used and the failure logged.
pub fn handle() -> Handle {
    let rt = RUNTIME.get_or_init(|| {
        match Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
        {
            Ok(rt) => Some(rt),
            Err(error) => {
                tracing::error!(%error, "no runtime of its own for VRRP: it shares the proxy's");
                None
            }
        }
    });
    match rt {
        Some(rt) => rt.handle().clone(),
        None => Handle::current(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: a task spawned through the VRRP handle from a test runtime.
    /// Output: it runs on the thread named lbd-vrrp, on another runtime.
    #[tokio::test]
    async fn vrrp_tasks_run_on_their_own_thread() {
        let here = Handle::current().id();
        let (name, id) = handle()
            .spawn(async {
                (
                    std::thread::current().name().map(str::to_string),
                    Handle::current().id(),
                )
            })
            .await
            .expect("task");
        assert_eq!(name.as_deref(), Some(THREAD_NAME));
        assert_ne!(id, here);
    }
}
