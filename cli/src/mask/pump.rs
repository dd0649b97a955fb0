//! Copying a stream through a masker, with small reads coalesced.
//!
//! A reader that keeps up with its writer gets the output in small pieces (often a line per
//! `read`), and the masker's fixed cost per piece (the held suffix, the prefilter's setup, one
//! `write` and `flush`) then dominates. So after each read, [`pump`] reads again while more is
//! already waiting, up to its buffer's size, and masks all of it at once. It never waits for
//! more: a read that returned some bytes is followed only by reads that cannot block, so bytes
//! that cannot start a secret reach the output as soon as they would without coalescing.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use zeroize::Zeroize;

use super::{MaskSet, StreamMasker};

/// How much is read before it is masked and written, at most.
pub const BUFFER: usize = 1024 * 1024;

/// The read buffer: it holds output before masking, so what was read into it is zeroized
/// when the pump ends, however it ends (only the part ever used: the rest was never touched).
struct Buffer {
    bytes: Vec<u8>,
    used: usize,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.bytes[..self.used].zeroize();
    }
}

/// Whether a `read` of `fd` would return at once (data waiting, end of file or an error).
pub fn readable_now(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// A stream to copy from, and whether reading it now would not block.
pub trait Source: Read {
    /// `true` only if the next `read` returns without waiting. `false` is always safe.
    fn ready(&self) -> bool;
}

/// Any descriptor-backed reader: a pipe, a terminal, a file.
pub struct Fd<R>(pub R);

impl<R: Read> Read for Fd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn ready(&self) -> bool {
        (**self).ready()
    }
}

impl<R: Read + AsFd> Source for Fd<R> {
    fn ready(&self) -> bool {
        readable_now(self.0.as_fd())
    }
}

/// Reads once, retrying on `EINTR`; 0 at end of file.
fn read_some(from: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match from.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Copies `from` to `to` until end of file, masking with `masks` (`None`: a plain copy),
/// flushing after each piece, and writing out at once whatever cannot be part of a secret.
pub fn pump(
    from: &mut impl Source,
    to: &mut impl Write,
    masks: Option<Arc<MaskSet>>,
) -> io::Result<()> {
    let mut buffer = Buffer {
        bytes: vec![0u8; BUFFER],
        used: 0,
    };
    let mut masker = masks.map(StreamMasker::new);
    let mut at_end = false;
    while !at_end {
        let buf = &mut buffer.bytes;
        let mut filled = read_some(from, buf)?;
        if filled == 0 {
            break;
        }
        // A failed read after some bytes came in: those are still masked and written.
        let mut failed = None;
        while filled < buf.len() && from.ready() {
            match read_some(from, &mut buf[filled..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        buffer.used = buffer.used.max(filled);
        let buf = &buffer.bytes;
        match masker.as_mut() {
            Some(m) => m.write(&buf[..filled], to)?,
            None => to.write_all(&buf[..filled])?,
        }
        to.flush()?;
        if let Some(e) = failed {
            // What is held back (a possible start of a secret) is never written.
            return Err(e);
        }
    }
    if let Some(m) = masker {
        m.finish(to)?;
    }
    to.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn set(secret: &str) -> Arc<MaskSet> {
        Arc::new(MaskSet::new([secret.as_bytes()]))
    }

    /// A writer that counts its flushes: `pump` flushes once per masked piece.
    #[derive(Default)]
    struct Counted(Vec<u8>, usize);

    impl Write for Counted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    /// A source that hands out at most one line per `read`, as a pipe fed line by line does,
    /// and says it is ready while it has more.
    struct Lines(std::collections::VecDeque<u8>, usize);

    impl Read for Lines {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            let n = buf.len().min(40).min(self.0.len());
            for (slot, byte) in buf.iter_mut().zip(self.0.drain(..n)) {
                *slot = byte;
            }
            Ok(n)
        }
    }

    impl Source for Lines {
        fn ready(&self) -> bool {
            !self.0.is_empty()
        }
    }

    #[test]
    fn small_reads_already_waiting_are_masked_together() {
        let line = "step done, token s3cr3t-value-0123 used\n";
        assert_eq!(line.len(), 40);
        let mut from = Lines(line.repeat(20_000).into_bytes().into(), 0);
        let mut out = Counted::default();
        pump(&mut from, &mut out, Some(set("s3cr3t-value-0123"))).unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "step done, token *** used\n".repeat(20_000)
        );
        assert!(from.1 > 20_000, "the source gave one line per read");
        // 800,000 bytes fit one piece of `BUFFER`: one flush for it, one at the end.
        assert!(out.1 <= 6, "{} pieces for 20,000 reads", out.1);
    }

    #[test]
    fn bytes_that_cannot_start_a_secret_are_not_held_back_waiting_for_more() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        struct Tell(std::sync::mpsc::Sender<Vec<u8>>);
        impl Write for Tell {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _ = self.0.send(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let pumping = std::thread::spawn(move || {
            pump(
                &mut Fd(reader),
                &mut Tell(seen_tx),
                Some(set("s3cr3t-value-0123")),
            )
        });
        // A line, then nothing for a while: it must come out before the writer says more.
        writer.write_all(b"hello from the job\n").unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        while !seen.ends_with(b"hello from the job\n") {
            let piece = seen_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the line was held back");
            seen.extend_from_slice(&piece);
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        // A possible start of the secret is held; the rest of it then masks it.
        writer.write_all(b"token s3cr3t-").unwrap();
        writer.write_all(b"value-0123 end\n").unwrap();
        drop(writer);
        pumping.join().unwrap().unwrap();
        let rest: Vec<u8> = seen_rx.try_iter().flatten().collect();
        assert_eq!(String::from_utf8(rest).unwrap(), "token *** end\n");
    }

    /// Two lines, then a read error while coalescing.
    struct FailsAfter(Vec<&'static [u8]>);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("the pipe broke"));
            }
            let piece = self.0.remove(0);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    impl Source for FailsAfter {
        fn ready(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_read_error_while_coalescing_still_writes_what_came_before_it() {
        let mut from = FailsAfter(vec![b"first line\n", b"token s3cr3t-"]);
        let mut out = Counted::default();
        let error = pump(&mut from, &mut out, Some(set("s3cr3t-value-0123"))).unwrap_err();
        assert_eq!(error.to_string(), "the pipe broke");
        // The possible start of the secret stays held back and is dropped.
        assert_eq!(String::from_utf8(out.0).unwrap(), "first line\ntoken ");
    }

    #[test]
    fn a_plain_copy_passes_everything_through() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let feeding = std::thread::spawn(move || {
            for piece in sent.chunks(777) {
                writer.write_all(piece).unwrap();
            }
        });
        let mut out = Counted::default();
        pump(&mut Fd(reader), &mut out, None).unwrap();
        feeding.join().unwrap();
        assert_eq!(out.0, data);
    }
}
