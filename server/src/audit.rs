//! The audit log: one JSON line per request. Tokens and accessors appear only as HMACs; request
//! and response bodies are never written, so no secret value can reach it. Writing fails
//! closed: a request whose line cannot be written is answered 500.

use std::io::Write;
use std::path::Path;

/// Lines are appended with one `write` each on an `O_APPEND` descriptor: the kernel keeps
/// concurrent appends whole, so no lock is held across the system call.
#[derive(Debug)]
pub struct AuditLog {
    file: Option<std::fs::File>,
}

impl AuditLog {
    pub fn disabled() -> Self {
        Self { file: None }
    }

    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        Ok(Self {
            file: Some(options.open(path)?),
        })
    }

    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one entry. An error means the request must fail.
    pub fn record(&self, entry: &impl serde::Serialize) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let written = (&*file).write(&line)?;
        if written != line.len() {
            // A short append (disk full): the line is torn, so the request must fail.
            return Err(std::io::Error::other("audit line only partly written"));
        }
        Ok(())
    }
}
