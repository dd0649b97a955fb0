//! Signals for `exec`: caught from before login (so none ends vaultctl with its token alive)
//! and, once the child runs, passed on to it exactly once.
//!
//! The child stays in vaultctl's process group, so a signal sent to the whole group (a
//! terminal's Ctrl-C, `kill -TERM -- -PGID`, GNU `timeout`, a CI agent cancelling the job)
//! reaches it directly: passing it on again would deliver it twice (terraform aborts at once on
//! a second interrupt). The sender's siginfo does not say whether a pid or a group was aimed
//! at, so vaultctl keeps a *probe*: a copy of itself in its process group that blocks these
//! signals, so that they stay pending on it and show in `/proc/<pid>/status` (`ShdPnd`). (A
//! merely stopped process would not do: `timeout` sends SIGCONT right after the signal.) A
//! signal pending on the probe was sent to the group and is not passed on (unless the child
//! left the group); any other was sent to vaultctl alone and is. A probe that saw a signal is
//! replaced. Without a probe (no `/proc`), signals from the kernel (the terminal) count as
//! sent to the group and all others are passed on.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::{Pid, getpgid, getpgrp};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};

use crate::error::Error;

/// Signals forwarded to the child.
pub const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// How long a signal waits before it is judged: a group-wide `kill()` reaches every member
/// within one system call, and `timeout` sends to vaultctl and then to the group right after.
const SETTLE: Duration = Duration::from_millis(3);

/// The forwarded signals, caught from before login until the child has ended.
pub struct Signals(SignalsInfo<WithOrigin>);

impl Signals {
    /// Installs the handlers: from now on these signals no longer end vaultctl.
    pub fn install() -> Result<Signals, Error> {
        SignalsInfo::<WithOrigin>::new(FORWARDED)
            .map(Signals)
            .map_err(|e| {
                Error::failed(
                    "setting up signal forwarding",
                    e.to_string(),
                    "report this as a bug",
                )
            })
    }

    /// The first signal that arrived since the last call, if any.
    pub fn arrived(&mut self) -> Option<i32> {
        self.0.pending().next().map(|origin| origin.signal)
    }
}

/// The child as the forwarder sees it: its pid, valid until `reaped` is set (the waiting side
/// sets it, under the lock, just before reaping, so a pid is never signalled after reuse).
pub(super) struct Target {
    pub pid: Pid,
    pub reaped: Arc<Mutex<bool>>,
}

/// The thread passing signals on, and how to stop it.
pub(super) struct Forwarder {
    thread: std::thread::JoinHandle<()>,
    handle: Handle,
}

impl Forwarder {
    pub(super) fn start(signals: Signals, target: Target) -> Forwarder {
        let Signals(mut signals) = signals;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || forward(&mut signals, &target));
        Forwarder { thread, handle }
    }

    pub(super) fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

fn forward(signals: &mut SignalsInfo<WithOrigin>, target: &Target) {
    let mut probe = Probe::start();
    loop {
        let Some(first) = signals.forever().next() else {
            return;
        };
        std::thread::sleep(SETTLE);
        let mut batch = vec![first];
        batch.extend(signals.pending());
        let on_probe = probe.as_ref().and_then(Probe::pending);
        let child_in_our_group = getpgid(Some(target.pid)).ok() == Some(getpgrp());
        let mut seen = 0u64;
        let mut rearm = false;
        for info in batch {
            let Some(bit) = u32::try_from(info.signal - 1)
                .ok()
                .and_then(|shift| 1u64.checked_shl(shift))
            else {
                continue;
            };
            if seen & bit != 0 {
                continue;
            }
            seen |= bit;
            let to_group = match on_probe {
                Some(pending) => pending & bit != 0,
                None => info.process.is_none() && matches!(info.signal, SIGINT | SIGQUIT | SIGHUP),
            };
            rearm |= to_group && on_probe.is_some();
            if to_group && child_in_our_group {
                continue;
            }
            if let Ok(signal) = Signal::try_from(info.signal)
                && let Ok(reaped) = target.reaped.lock()
                && !*reaped
            {
                let _ = kill(target.pid, signal);
            }
        }
        if rearm {
            // The new probe is ready before the old one goes: no group signal is missed.
            probe = Probe::start();
        }
    }
}

/// The argument that makes `vaultctl` run as a probe ([`probe_main`]).
pub const PROBE_ARG: &str = "__signal-probe";

/// A copy of vaultctl in its process group that blocks the forwarded signals, so that any of
/// them sent to the group stays pending on it. It ends when its stdin closes (vaultctl ended,
/// however it did) or it is killed on drop.
struct Probe {
    child: Child,
}

impl Probe {
    fn start() -> Option<Probe> {
        let exe = std::env::current_exe().ok()?;
        let mut child = Command::new(exe)
            .arg(PROBE_ARG)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // It says it is ready once its signals are blocked.
        let mut ready = [0u8; 1];
        let stdout = child.stdout.as_mut()?;
        match std::io::Read::read(stdout, &mut ready) {
            Ok(1) => Some(Probe { child }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// The signals pending on the probe, as a bit mask (bit N-1 for signal N), or `None` if it
    /// cannot tell (gone, or no `/proc`).
    fn pending(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("ShdPnd:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
    }
}

/// What `vaultctl __signal-probe` runs: block the forwarded signals, say so, and wait for
/// stdin to close.
pub fn probe_main() -> std::process::ExitCode {
    let mut blocked = SigSet::empty();
    for &signal in FORWARDED {
        if let Ok(signal) = Signal::try_from(signal) {
            blocked.add(signal);
        }
    }
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    let mut stdout = std::io::stdout();
    if std::io::Write::write_all(&mut stdout, b"r")
        .and_then(|()| std::io::Write::flush(&mut stdout))
        .is_err()
    {
        return std::process::ExitCode::FAILURE;
    }
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
    std::process::ExitCode::SUCCESS
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
