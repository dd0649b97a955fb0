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
//! replaced; if the replacement cannot start, the old one stays. (A second group signal of the
//! same kind that arrives while the replacement starts — a few milliseconds — is not yet on the
//! new probe and is passed on once more; closing that window needs a probe that reports each
//! arrival instead of a coalescing pending set.) Without a probe (no `/proc`),
//! signals from the kernel (the terminal) count as sent to the group and all others are passed
//! on.
//!
//! The probe has the signals blocked from its first instant (`posix_spawn` sets its mask; a
//! `std::process::Command` would reset it to empty), so a group signal during its start-up
//! neither kills it nor goes unrecorded, and it is started with the handlers, before login (its
//! start-up overlaps the login), so it is there for the child's whole life. vaultctl's own mask
//! is never changed, and the child is started with an empty one.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getpgid, getpgrp, pipe2};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};

use crate::error::Error;

/// Signals forwarded to the child.
pub const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// How long a signal waits before it is judged: a group-wide `kill()` reaches every member
/// within one system call, and `timeout` sends to vaultctl and then to the group right after.
const SETTLE: Duration = Duration::from_millis(3);

/// The forwarded signals, caught from before login until the child has ended, and the probe,
/// started with them so that its start-up overlaps the login.
pub struct Signals {
    info: SignalsInfo<WithOrigin>,
    probe: Option<Spawning>,
}

impl Signals {
    /// Installs the handlers: from now on these signals no longer end vaultctl. Starts the
    /// probe without waiting for it.
    pub fn install() -> Result<Signals, Error> {
        let info = SignalsInfo::<WithOrigin>::new(FORWARDED).map_err(|e| {
            Error::failed(
                "setting up signal forwarding",
                e.to_string(),
                "report this as a bug",
            )
        })?;
        Ok(Signals {
            info,
            probe: Probe::spawn(),
        })
    }

    /// The first signal that arrived since the last call, if any.
    pub fn arrived(&mut self) -> Option<i32> {
        self.info.pending().next().map(|origin| origin.signal)
    }

    /// The probe started with the handlers, once it runs (`None` if it could not start).
    pub(super) fn probe(&mut self) -> ArmedProbe {
        ArmedProbe {
            probe: self.probe.take().and_then(Spawning::ready),
            before_child: 0,
        }
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
    /// Passes signals on to `target`, telling group signals apart with `probe` (started before
    /// the child, see [`Probe::start`]).
    pub(super) fn start(signals: Signals, target: Target, probe: ArmedProbe) -> Forwarder {
        let Signals {
            info: mut signals, ..
        } = signals;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || forward(&mut signals, &target, probe));
        Forwarder { thread, handle }
    }

    pub(super) fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// The probe the forwarder starts with, and the signals already pending on it when the child
/// was started: those were sent before the child existed, so it did not get them.
pub(super) struct ArmedProbe {
    probe: Option<Probe>,
    before_child: u64,
}

impl ArmedProbe {
    /// Notes what the probe has seen so far, as late as possible before the child starts.
    pub(super) fn child_starts(&mut self) {
        self.before_child = self.probe.as_ref().and_then(Probe::pending).unwrap_or(0);
    }
}

fn forward(signals: &mut SignalsInfo<WithOrigin>, target: &Target, armed: ArmedProbe) {
    let ArmedProbe {
        mut probe,
        mut before_child,
    } = armed;
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
            let sent_before_child = before_child & bit != 0;
            before_child &= !bit;
            let to_group = match on_probe {
                Some(pending) => pending & bit != 0 && !sent_before_child,
                None => info.process.is_none() && matches!(info.signal, SIGINT | SIGQUIT | SIGHUP),
            };
            rearm |= (to_group || sent_before_child) && on_probe.is_some();
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
            // The new probe is ready before the old one goes: no group signal is missed. If it
            // cannot start, the old one stays: it still tells the other signals apart, and
            // without it every group signal would be passed on a second time.
            if let Some(fresh) = Probe::start() {
                probe = Some(fresh);
            }
        }
    }
}

/// The argument that makes `vaultctl` run as a probe ([`probe_main`]).
pub const PROBE_ARG: &str = "__signal-probe";

/// A copy of vaultctl in its process group that blocks the forwarded signals, so that any of
/// them sent to the group stays pending on it. It ends when its stdin closes (vaultctl ended,
/// however it did) or it is killed on drop.
struct Probe {
    pid: Pid,
    /// The write end of its stdin.
    _stdin: OwnedFd,
}

/// The forwarded signals as a set.
fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for &signal in FORWARDED {
        if let Ok(signal) = Signal::try_from(signal) {
            set.add(signal);
        }
    }
    set
}

/// A probe that was started and may not run yet.
struct Spawning {
    probe: Probe,
    /// The read end of its stdout, where it says it runs.
    ready: OwnedFd,
}

impl Spawning {
    /// Waits until the probe runs; `None` (and the probe killed) if it does not.
    fn ready(self) -> Option<Probe> {
        let mut ready = [0u8; 1];
        match std::io::Read::read(&mut std::fs::File::from(self.ready), &mut ready) {
            Ok(1) => Some(self.probe),
            _ => None,
        }
    }
}

impl Probe {
    /// Starts a probe and waits until it runs.
    fn start() -> Option<Probe> {
        Probe::spawn()?.ready()
    }

    /// Starts a probe with the forwarded signals blocked (and at their default action, so an
    /// ignored one is still recorded) from its first instant.
    fn spawn() -> Option<Spawning> {
        let exe = CString::new(std::env::current_exe().ok()?.into_os_string().into_vec()).ok()?;
        let arg = CString::new(PROBE_ARG).ok()?;
        let (stdin_read, stdin_write) = pipe2(OFlag::O_CLOEXEC).ok()?;
        let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).ok()?;
        let mut actions = PosixSpawnFileActions::init().ok()?;
        actions.add_dup2(stdin_read.as_raw_fd(), 0).ok()?;
        actions.add_dup2(ready_write.as_raw_fd(), 1).ok()?;
        actions
            .add_open(2, "/dev/null", OFlag::O_WRONLY, Mode::empty())
            .ok()?;
        let mut attr = PosixSpawnAttr::init().ok()?;
        let signals = forwarded_set();
        attr.set_sigmask(&signals).ok()?;
        attr.set_sigdefault(&signals).ok()?;
        attr.set_flags(
            PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
        )
        .ok()?;
        let no_env: [CString; 0] = [];
        let pid = posix_spawn(exe.as_c_str(), &actions, &attr, &[&exe, &arg], &no_env).ok()?;
        drop((stdin_read, ready_write));
        // It says it is ready once it runs; its signals were blocked all along.
        Some(Spawning {
            probe: Probe {
                pid,
                _stdin: stdin_write,
            },
            ready: ready_read,
        })
    }

    /// The signals pending on the probe, as a bit mask (bit N-1 for signal N), or `None` if it
    /// cannot tell (gone, or no `/proc`).
    fn pending(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("ShdPnd:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
    }
}

/// What `vaultctl __signal-probe` runs: block the forwarded signals, say so, and wait for
/// stdin to close.
pub fn probe_main() -> std::process::ExitCode {
    // Already blocked by `posix_spawn`; blocked again in case it was started some other way.
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), None).is_err() {
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
        // Not reaped until here, so the pid is still the probe's.
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}
