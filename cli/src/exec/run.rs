//! Running the child: secrets added to its environment and credentials removed, stdin passed
//! through, stdout and stderr piped separately through a masker each, signals forwarded, and
//! the child's exit status returned as vaultctl's own (128 + N for death by signal N).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

pub use super::signals::{FORWARDED, Signals};
use super::signals::{Forwarder, Target};
use crate::error::Error;
use crate::mask::MaskSet;
use crate::mask::pump::{Fd, Source, pump};

/// What to run and how.
pub struct ChildSpec {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// Variables to add to the child's environment (the secrets).
    pub add: Vec<(String, crate::secret::Secret)>,
    /// Variables to take out of it (the broker token, the CI's OIDC variables).
    pub remove: Vec<String>,
    /// What to mask in its output; `None` with `--no-mask`.
    pub masks: Option<Arc<MaskSet>>,
}

fn spawn_error(program: &OsString, error: &io::Error) -> Error {
    let name = program.to_string_lossy().into_owned();
    let (why, fix) = match error.kind() {
        io::ErrorKind::NotFound => (
            "command not found".to_owned(),
            "check the command name and PATH",
        ),
        io::ErrorKind::PermissionDenied => (
            "permission denied".to_owned(),
            "make it executable (chmod +x) or run it through its interpreter",
        ),
        _ => (error.to_string(), "check the command"),
    };
    Error::failed(format!("starting {name}"), why, fix)
}

/// A pseudo-terminal pair sized like our own terminal: (master, slave).
fn open_pty() -> Option<(std::fs::File, std::fs::File)> {
    let size = terminal_size::terminal_size().map(|(w, h)| nix::pty::Winsize {
        ws_row: h.0,
        ws_col: w.0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pair = nix::pty::openpty(size.as_ref(), None).ok()?;
    Some((
        std::fs::File::from(pair.master),
        std::fs::File::from(pair.slave),
    ))
}

/// The master side of the child's terminal. Linux reports the end of the child's output as
/// EIO once every slave descriptor is closed: that is end of file here.
struct PtyReader(std::fs::File);

impl Read for PtyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => Ok(0),
            other => other,
        }
    }
}

impl Source for PtyReader {
    fn ready(&self) -> bool {
        crate::mask::pump::readable_now(self.0.as_fd())
    }
}

fn duplicate(stream: &impl AsFd) -> Result<std::fs::File, Error> {
    stream
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| {
            Error::failed(
                "setting up output",
                e.to_string(),
                "check that stdout and stderr are open",
            )
        })
}

/// Runs the child to completion; returns the exit code vaultctl should exit with.
pub fn run(spec: ChildSpec, mut signals: Signals) -> Result<u8, Error> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err(Error::failed(
            "starting the command",
            "no command given",
            "put the command after --, e.g. vaultctl exec -- ./deploy.sh",
        ));
    };
    // The probe that tells group signals apart runs before the child, so it sees every signal
    // the child sees; it was started with the handlers, before any descriptor it must not hold
    // (the terminal's slave end, which openpty does not mark close-on-exec) is open.
    let mut probe = signals.probe();
    let mut command = Command::new(program);
    command.args(args);
    for name in &spec.remove {
        command.env_remove(name);
    }
    for (name, value) in &spec.add {
        command.env(name, value.expose());
    }
    command.stdin(Stdio::inherit()).stderr(Stdio::piped());
    // On a terminal, the child's stdout is a pseudo-terminal (so colours and progress bars
    // survive) whose output still goes through the masker; in CI (pipes) a plain pipe.
    let pty = if io::stdout().is_terminal() {
        open_pty()
    } else {
        None
    };
    match &pty {
        Some((_, slave)) => {
            let slave = slave.try_clone().map_err(|e| {
                Error::failed(
                    "setting up a terminal",
                    e.to_string(),
                    "run with stdout redirected",
                )
            })?;
            command.stdout(Stdio::from(slave));
        }
        None => {
            command.stdout(Stdio::piped());
        }
    }

    // Our own stdout/stderr through duplicated descriptors: the caller may hold the standard
    // library's stdout lock, and the pumps must not wait for it.
    let our_stdout = duplicate(&io::stdout())?;
    let our_stderr = duplicate(&io::stderr())?;
    // The handlers were installed before login, so no signal slips through unforwarded: one
    // that arrives from here on is passed on once the child exists.
    probe.child_starts();
    // std starts the child with an empty signal mask, whatever vaultctl's threads block.
    let mut child = command.spawn().map_err(|e| spawn_error(program, &e))?;
    // The Command holds copies of the child's descriptors (the terminal's slave end): close
    // them, or the output streams never end.
    drop(command);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let reaped = Arc::new(Mutex::new(false));
    let forwarder = Forwarder::start(
        signals,
        Target {
            pid,
            reaped: Arc::clone(&reaped),
        },
        probe,
    );

    // Our copy of the slave end must go, or the master never sees the child's end of output.
    let pty_master = pty.map(|(master, slave)| {
        drop(slave);
        master
    });
    let stdout: Option<Box<dyn Source + Send>> = match pty_master {
        Some(master) => Some(Box::new(PtyReader(master))),
        None => child
            .stdout
            .take()
            .map(|s| Box::new(Fd(s)) as Box<dyn Source + Send>),
    };
    let stderr = child.stderr.take().map(Fd);
    let out_masks = spec.masks.clone();
    let err_masks = spec.masks;
    let out_thread = std::thread::spawn(move || {
        stdout.map(|mut s| pump(&mut s, &mut { our_stdout }, out_masks))
    });
    let err_thread = std::thread::spawn(move || {
        stderr.map(|mut s| pump(&mut s, &mut { our_stderr }, err_masks))
    });

    // Wait for the child's end without reaping it, so that its pid cannot be reused while the
    // forwarder may still signal it; reap only once the forwarder is told.
    while let Err(nix::errno::Errno::EINTR) =
        waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    {}
    if let Ok(mut reaped) = reaped.lock() {
        *reaped = true;
    }
    let status = child.wait();
    let _ = out_thread.join();
    let _ = err_thread.join();
    forwarder.stop();
    let status = status.map_err(|e| {
        Error::failed(
            "waiting for the command",
            e.to_string(),
            "check the command",
        )
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    })
}
