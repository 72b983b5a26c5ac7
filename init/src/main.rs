//! PID 1 of the load-balancer appliance.

use std::time::Duration;

fn main() {
    // A bug that panics must not end PID 1 (the kernel would panic with it):
    // report it and stay up, still reaping, so the console shows the error.
    if std::panic::catch_unwind(|| init::boot::run()).is_err() {
        let mut consoles = init::console::Consoles::early();
        consoles.discover();
        consoles.line(
            "init: error: internal error (panic above); staying up, power off the VM to recover",
        );
        loop {
            init::reap::reap_zombies();
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}
