//! One supervised process: spawned in its own process group with its
//! stdout and stderr piped back, restarted per [`Backoff`].

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::backoff::{Backoff, RestartPolicy};
use super::log_ring::LogRing;
use super::output_budget::OutputBudget;
use super::privileges::{self, Credentials};

/// Lines of output kept for the status screen.
const RING_LINES: usize = 200;
/// Bytes read from the pipes per call: a service that writes faster than
/// init reads must not keep PID 1 in this loop (poll says ready again at
/// once, with signals and timers handled in between).
const READ_BUDGET: usize = 1 << 20;

#[derive(Debug)]
enum State {
    Running { pid: Pid },
    Waiting { until: Instant },
    Stopped,
}

/// Something the console should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    Started {
        pid: i32,
        start: u32,
    },
    StartFailed {
        reason: String,
        restart_in: Duration,
    },
    Exited {
        status: String,
        restart_in: Duration,
        attempt: u32,
        crash_loop: bool,
    },
}

pub struct Service {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    state: State,
    backoff: Backoff,
    ring: LogRing,
    /// Which of the lines read reach the consoles.
    budget: OutputBudget,
    pipes: Vec<File>,
    starts: u32,
    /// Who it runs as; `None`: as init (root).
    credentials: Option<Credentials>,
}

impl Service {
    pub fn new(
        name: &str,
        program: impl Into<PathBuf>,
        args: Vec<String>,
        policy: RestartPolicy,
    ) -> Self {
        Self {
            name: name.to_string(),
            program: program.into(),
            args,
            state: State::Stopped,
            backoff: Backoff::new(policy),
            ring: LogRing::new(RING_LINES),
            budget: OutputBudget::default(),
            pipes: Vec::new(),
            starts: 0,
            credentials: None,
        }
    }

    /// Runs the service as `credentials` instead of root.
    pub fn run_as(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn pid(&self) -> Option<Pid> {
        match self.state {
            State::Running { pid } => Some(pid),
            _ => None,
        }
    }

    /// The last lines of output.
    pub fn recent_output(&self) -> impl Iterator<Item = &str> {
        self.ring.lines()
    }

    /// Spawns the process now.
    pub fn start(&mut self, now: Instant) -> ServiceEvent {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: stopping it signals every process it
            // started too (gokrazy does the same, for the same reason).
            .process_group(0);
        // init blocks the signals it reads through its signalfd, and a
        // blocked mask survives exec: unblock them in the child, or lbd
        // never sees the SIGTERM that asks it to stop.
        // Then it gives up root (privileges.rs): std's own uid()/gid()
        // would run before this closure and lose the capabilities.
        let credentials = self.credentials;
        // SAFETY: the closure runs in the forked child before exec and only
        // makes system calls (sigprocmask(2), and prctl, setgroups,
        // setres[ug]id and capset in `drop_to`), all async-signal-safe; it
        // reads only its own copy of `credentials`, allocates nothing and
        // takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::signal::sigprocmask(
                    SigmaskHow::SIG_SETMASK,
                    Some(&SigSet::empty()),
                    None,
                )
                .map_err(std::io::Error::from)?;
                match credentials {
                    Some(c) => privileges::drop_to(c),
                    None => Ok(()),
                }
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                // The child is reaped by init's waitpid(-1) loop, not through
                // `Child`, so dropping it here does not lose the status.
                let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
                let pipes: Vec<OwnedFd> = [
                    child.stdout.take().map(OwnedFd::from),
                    child.stderr.take().map(OwnedFd::from),
                ]
                .into_iter()
                .flatten()
                .collect();
                self.pipes = pipes
                    .into_iter()
                    .filter_map(|fd| set_nonblocking(&fd).ok().map(|()| File::from(fd)))
                    .collect();
                self.backoff.on_start(now);
                self.starts += 1;
                self.state = State::Running { pid };
                ServiceEvent::Started {
                    pid: pid.as_raw(),
                    start: self.starts,
                }
            }
            Err(e) => {
                let plan = self.backoff.on_exit(now);
                self.state = State::Waiting {
                    until: now + plan.delay,
                };
                let who = match self.credentials {
                    Some(c) => format!(
                        " (as uid {}, gid {}, capabilities {:#x})",
                        c.uid, c.gid, c.caps.0
                    ),
                    None => String::new(),
                };
                ServiceEvent::StartFailed {
                    reason: format!("{}{who}: {e}", self.program.display()),
                    restart_in: plan.delay,
                }
            }
        }
    }

    /// Output pipes to poll.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.pipes.iter().map(AsFd::as_fd).collect()
    }

    /// Reads what the pipes hold without blocking (up to [`READ_BUDGET`]
    /// bytes); returns the complete lines the consoles should show, within
    /// [`OutputBudget`]: the others are dropped and counted, so a chatty
    /// service never makes PID 1 fall behind its pipe.
    pub fn read_output(&mut self) -> Vec<String> {
        let lines = self.read_pipes();
        self.budget.pass(lines, Instant::now())
    }

    /// When the note of output lines not shown is due (see
    /// [`OutputBudget::note_due`]).
    pub fn output_note_due(&self) -> Option<Instant> {
        self.budget.note_due()
    }

    /// The note of output lines not shown, once due at `now`.
    pub fn take_output_note(&mut self, now: Instant) -> Option<String> {
        self.budget.take_note(now)
    }

    /// Lines of output the consoles did not show, since start.
    pub fn output_dropped(&self) -> u64 {
        self.budget.dropped_total()
    }

    fn read_pipes(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 65536];
        let mut open = Vec::new();
        let mut budget = READ_BUDGET;
        for mut pipe in self.pipes.drain(..) {
            let mut eof = false;
            while budget > 0 {
                match pipe.read(&mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        budget = budget.saturating_sub(n);
                        lines.extend(self.ring.push_bytes(&buf[..n]));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break, // EAGAIN: drained for now
                }
            }
            if !eof {
                open.push(pipe);
            }
        }
        self.pipes = open;
        lines
    }

    /// Hands over an exit status from init's reaper; `None` if it was not ours.
    pub fn on_exit(&mut self, status: WaitStatus, now: Instant) -> Option<ServiceEvent> {
        let pid = status.pid()?;
        if self.pid() != Some(pid) {
            return None;
        }
        let plan = self.backoff.on_exit(now);
        self.state = State::Waiting {
            until: now + plan.delay,
        };
        Some(ServiceEvent::Exited {
            status: describe(status),
            restart_in: plan.delay,
            attempt: plan.attempt,
            crash_loop: plan.crash_loop,
        })
    }

    /// When init's loop must wake up for this service.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// Restarts the service if its backoff delay has passed.
    pub fn on_timer(&mut self, now: Instant) -> Option<ServiceEvent> {
        match self.state {
            State::Waiting { until } if now >= until => Some(self.start(now)),
            _ => None,
        }
    }

    /// Sends `sig` to the service's process group (SIGHUP: reload).
    pub fn signal(&self, sig: Signal) -> Result<(), Errno> {
        match self.pid() {
            Some(pid) => kill(Pid::from_raw(-pid.as_raw()), sig),
            None => Err(Errno::ESRCH),
        }
    }

    /// Stops the service for shutdown: SIGTERM, up to `deadline` for it to
    /// exit (cut short when `hurry` says so: a second power request), then
    /// SIGKILL. Returns how it ended, for the console; what it printed
    /// meanwhile goes to `output`.
    pub fn stop(
        &mut self,
        deadline: Duration,
        output: &mut dyn FnMut(String),
        hurry: &mut dyn FnMut() -> bool,
    ) -> String {
        let Some(pid) = self.pid() else {
            self.state = State::Stopped;
            return "not running".into();
        };
        self.state = State::Stopped;
        let group = Pid::from_raw(-pid.as_raw());
        let _ = kill(group, Signal::SIGTERM);
        let until = Instant::now() + deadline;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status) => {
                    let _ = kill(group, Signal::SIGKILL); // helpers it left behind
                    for line in self.read_output() {
                        output(line);
                    }
                    return describe(status);
                }
                Err(e) => return format!("gone ({e})"),
            }
            let hurried = hurry();
            if hurried || Instant::now() >= until {
                let _ = kill(group, Signal::SIGKILL);
                let status = waitpid(pid, None).map(describe).unwrap_or_default();
                if hurried {
                    return format!("killed at a second power request: {status}");
                }
                return format!("killed after {} s: {status}", deadline.as_secs());
            }
            for line in self.read_output() {
                output(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}

/// "exit status 1", "killed by SIGKILL", as the console says it.
pub fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!(
                "killed by {sig}{}",
                if core { " (core dumped)" } else { "" }
            )
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: /bin/sh printing two lines and exiting 3.
    /// Output: a Started event, the two lines from the pipes, and an Exited
    /// event with "exit status 3" and the first backoff delay.
    #[test]
    fn runs_collects_output_and_reports_exit() {
        let mut s = Service::new(
            "sh",
            "/bin/sh",
            vec!["-c".into(), "echo out; echo err >&2; exit 3".into()],
            RestartPolicy::default(),
        );
        let t0 = Instant::now();
        assert!(matches!(
            s.start(t0),
            ServiceEvent::Started { start: 1, .. }
        ));
        let pid = s.pid().unwrap();
        let status = waitpid(pid, None).unwrap();
        let mut lines = Vec::new();
        while !s.fds().is_empty() {
            lines.extend(s.read_output());
        }
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        let ev = s.on_exit(status, t0).unwrap();
        assert_eq!(
            ev,
            ServiceEvent::Exited {
                status: "exit status 3".into(),
                restart_in: Duration::from_millis(100),
                attempt: 1,
                crash_loop: false
            }
        );
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(s.on_timer(t0).is_none(), "not yet due");
        assert!(matches!(
            s.on_timer(t0 + Duration::from_millis(100)),
            Some(ServiceEvent::Started { start: 2, .. })
        ));
        let status = waitpid(s.pid().unwrap(), None).unwrap();
        let ev = s.on_exit(status, t0 + Duration::from_millis(110)).unwrap();
        assert!(
            matches!(ev, ServiceEvent::Exited { restart_in, attempt: 2, .. } if restart_in == Duration::from_millis(200)),
            "{ev:?}"
        );
        assert_eq!(
            s.stop(Duration::from_secs(5), &mut |_| {}, &mut || false),
            "not running"
        );
    }

    #[test]
    fn stop_escalates_to_sigkill_and_foreign_pids_are_ignored() {
        let mut s = Service::new(
            "stubborn",
            "/bin/sh",
            vec![
                "-c".into(),
                "trap '' TERM; while :; do sleep 0.05; done".into(),
            ],
            RestartPolicy::default(),
        );
        s.start(Instant::now());
        // Give the shell time to install its trap.
        std::thread::sleep(Duration::from_millis(200));
        let other = WaitStatus::Exited(Pid::from_raw(1), 0);
        assert!(s.on_exit(other, Instant::now()).is_none());
        let how = s.stop(Duration::from_millis(300), &mut |_| {}, &mut || false);
        assert!(
            how.contains("killed after") && how.contains("SIGKILL"),
            "{how}"
        );
    }

    /// Input: a service that ignores SIGTERM, and a second power request
    /// arriving while it is being stopped with a long deadline.
    /// Output: it is killed at once, and the console says why.
    #[test]
    fn a_second_power_request_cuts_the_stop_short() {
        let mut s = Service::new(
            "stubborn",
            "/bin/sh",
            vec![
                "-c".into(),
                "trap '' TERM; while :; do sleep 0.05; done".into(),
            ],
            RestartPolicy::default(),
        );
        s.start(Instant::now());
        std::thread::sleep(Duration::from_millis(200));
        let mut polls = 0;
        let how = s.stop(Duration::from_secs(3600), &mut |_| {}, &mut || {
            polls += 1;
            polls >= 3
        });
        assert!(how.starts_with("killed at a second power request"), "{how}");
    }

    /// Input: a child printing 20000 lines as fast as it can (lbd under
    /// load, logging a line per connection).
    /// Output: the child is never held up by a full pipe (it exits), and
    /// the consoles get at most a burst of lines plus a note of how many
    /// were not shown, instead of all 20000 on PID 1's thread.
    #[test]
    fn a_flood_of_output_is_drained_and_cut_to_the_budget() {
        let mut s = Service::new(
            "chatty",
            "/bin/sh",
            vec![
                "-c".into(),
                "i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done".into(),
            ],
            RestartPolicy::default(),
        );
        s.start(Instant::now());
        let pid = s.pid().unwrap();
        let mut shown = Vec::new();
        let status = loop {
            shown.extend(s.read_output());
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
                WaitStatus::StillAlive => std::thread::sleep(Duration::from_millis(1)),
                status => break status,
            }
        };
        while !s.fds().is_empty() {
            shown.extend(s.read_output());
        }
        assert_eq!(describe(status), "exit status 0");
        let burst = usize::try_from(super::super::output_budget::BURST).unwrap();
        assert!(
            shown.len() < 20000 && shown.len() <= burst * 3,
            "{} lines shown",
            shown.len()
        );
        assert!(s.output_dropped() > 0);
        assert_eq!(shown[0], "line 0");
        assert_eq!(s.recent_output().last(), Some("line 19999"));
    }

    #[test]
    fn missing_program_is_a_start_failure_with_backoff() {
        let mut s = Service::new("nope", "/nonexistent/lbd", vec![], RestartPolicy::default());
        let now = Instant::now();
        match s.start(now) {
            ServiceEvent::StartFailed { reason, restart_in } => {
                assert!(reason.contains("/nonexistent/lbd"), "{reason}");
                assert_eq!(restart_in, Duration::from_millis(100));
            }
            other => panic!("{other:?}"),
        }
    }
}
