//! Running the child: secrets added to its environment and credentials removed, stdin passed
//! through, stdout and stderr piped separately through a masker each, signals forwarded, and
//! the child's exit status returned as vaultctl's own (128 + N for death by signal N).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::Arc;

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;

use crate::error::Error;
use crate::mask::{MaskSet, StreamMasker};

/// Signals forwarded to the child.
pub const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// What to run and how.
pub struct ChildSpec {
    pub command: Vec<OsString>,
    pub add: Vec<(String, crate::secret::Secret)>,
    pub remove: Vec<String>,
    pub masks: Option<Arc<MaskSet>>,
}

/// Copies `from` to `to`, masking, writing out at once whatever cannot be part of a secret.
fn pump(mut from: impl Read, mut to: impl Write, masks: Option<Arc<MaskSet>>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut masker = masks.map(StreamMasker::new);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match masker.as_mut() {
            Some(m) => m.write(&buf[..n], &mut to)?,
            None => to.write_all(&buf[..n])?,
        }
        to.flush()?;
    }
    if let Some(m) = masker {
        m.finish(&mut to)?;
    }
    to.flush()
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
pub fn run(spec: ChildSpec) -> Result<u8, Error> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err(Error::failed(
            "starting the command",
            "no command given",
            "put the command after --, e.g. vaultctl exec -- ./deploy.sh",
        ));
    };
    let mut command = Command::new(program);
    command.args(args);
    for name in &spec.remove {
        command.env_remove(name);
    }
    for (name, value) in &spec.add {
        command.env(name, value.expose());
    }
    command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    // Install handlers before the child exists so no signal slips through unforwarded.
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED).map_err(|e| {
        Error::failed(
            "setting up signal forwarding",
            e.to_string(),
            "report this as a bug",
        )
    })?;
    let handle = signals.handle();
    let mut child = command.spawn().map_err(|e| spawn_error(program, &e))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);

    let forwarder = std::thread::spawn(move || {
        for info in &mut signals {
            // A signal the terminal sent to the whole foreground process group already
            // reached the child: forwarding it again would deliver it twice.
            if info.process.is_none() && matches!(info.signal, SIGINT | SIGQUIT | SIGHUP) {
                continue;
            }
            if let Ok(signal) = nix::sys::signal::Signal::try_from(info.signal) {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
    });

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_masks = spec.masks.clone();
    let err_masks = spec.masks;
    // Our own stdout/stderr through duplicated descriptors: the caller may hold the standard
    // library's stdout lock, and the pumps must not wait for it.
    let our_stdout = duplicate(&io::stdout())?;
    let our_stderr = duplicate(&io::stderr())?;
    let out_thread = std::thread::spawn(move || stdout.map(|s| pump(s, our_stdout, out_masks)));
    let err_thread = std::thread::spawn(move || stderr.map(|s| pump(s, our_stderr, err_masks)));

    let status = child.wait();
    let _ = out_thread.join();
    let _ = err_thread.join();
    handle.close();
    let _ = forwarder.join();
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
