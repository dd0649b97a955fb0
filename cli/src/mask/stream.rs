//! The streaming filter: masks a byte stream written in arbitrary pieces.
//!
//! Each write looks at the *window*: the bytes held back from earlier writes followed by the
//! new ones. All occurrences in the window are found and merged into runs, and the window is
//! written out up to its *hold* point, the start of its longest suffix that is a proper prefix
//! of some pattern; that suffix is kept for the next write. A run is written as one `***` as
//! soon as everything before it is out, even if it reaches into the held bytes; it stays open
//! so that a later occurrence overlapping or touching it extends it without a second `***`.
//!
//! Why nothing leaks: an occurrence that is not complete yet has its start inside the held
//! suffix (the suffix is the longest one that could still grow into a pattern), so no byte of
//! it has been written. Why the output does not depend on how the stream is split: a byte is
//! written only once no later data can cover it, and a run is merged exactly when it would be
//! in the whole stream.

use std::borrow::Borrow;
use std::io::{self, Write};
use std::mem;
use std::ops::Range;

use zeroize::Zeroize;

use super::{MaskSet, REDACTED};

/// Masks one output stream (stdout or stderr) with a shared [`MaskSet`].
///
/// `M` is `&MaskSet`, `Arc<MaskSet>` or an owned `MaskSet`.
pub struct StreamMasker<M: Borrow<MaskSet>> {
    set: M,
    /// Bytes held back: the start of the next window.
    held: Vec<u8>,
    /// End, in `held`, of the last `***` run written, if nothing has been written after it.
    /// The bytes of `held` before it are already accounted for by that `***`.
    open_run_end: Option<usize>,
    /// The held bytes followed by the first bytes of the new chunk, to find the occurrences
    /// that start in the held bytes.
    bridge: Vec<u8>,
    /// The previous `held` buffer, reused.
    spare: Vec<u8>,
    /// Merged occurrences in the current window, sorted, disjoint and not touching.
    runs: Vec<Range<usize>>,
    /// The prefilter's candidate spans, reused.
    spans: Vec<Range<usize>>,
    /// Occurrences across line breaks in the current window, reused.
    across: Vec<Range<usize>>,
}

impl<M: Borrow<MaskSet>> StreamMasker<M> {
    /// A masker for one output stream, masking every pattern of `set`.
    pub fn new(set: M) -> Self {
        let capacity = set.borrow().max_pattern_len();
        StreamMasker {
            set,
            held: Vec::with_capacity(capacity),
            open_run_end: None,
            bridge: Vec::with_capacity(2 * capacity),
            spare: Vec::with_capacity(capacity),
            runs: Vec::new(),
            spans: Vec::new(),
            across: Vec::new(),
        }
    }

    /// Masks `chunk` and writes to `out` everything that can be known to be final: all but
    /// the longest suffix of the pending data that could still become a pattern.
    pub fn write(&mut self, chunk: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.process(chunk, out, false)
    }

    /// Writes out the bytes still held back, masked, at the end of the stream.
    pub fn finish(mut self, out: &mut impl Write) -> io::Result<()> {
        self.process(&[], out, true)
    }

    /// How many bytes are currently held back (some may already be covered by a `***`).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    fn process(&mut self, chunk: &[u8], out: &mut impl Write, at_end: bool) -> io::Result<()> {
        let head = mem::take(&mut self.held);
        let result = self.mask_window(&head, chunk, out, at_end);
        let mut spare = mem::replace(&mut self.spare, head);
        match result {
            Ok(hold) => {
                spare.clear();
                if let Some(rest) = head_rest(&self.spare, hold) {
                    spare.extend_from_slice(rest);
                    spare.extend_from_slice(chunk);
                } else {
                    spare.extend_from_slice(&chunk[hold - self.spare.len()..]);
                }
                self.held = spare;
                self.spare.zeroize();
                Ok(())
            }
            Err(error) => {
                // Nothing is known about what reached `out`: hold nothing back, write nothing
                // more, and let the caller give up on the stream.
                self.open_run_end = None;
                self.spare.zeroize();
                Err(error)
            }
        }
    }

    /// Masks the window `head + chunk` up to its hold point, which it returns.
    fn mask_window(
        &mut self,
        head: &[u8],
        chunk: &[u8],
        out: &mut impl Write,
        at_end: bool,
    ) -> io::Result<usize> {
        let set = self.set.borrow();
        let runs = &mut self.runs;
        let spans = &mut self.spans;
        runs.clear();

        // Occurrences starting in `head` end within the bridge; the rest lie inside `chunk`.
        self.bridge.clear();
        if !head.is_empty() {
            let reach = chunk.len().min(set.max_pattern_len().saturating_sub(1));
            self.bridge.extend_from_slice(head);
            self.bridge.extend_from_slice(&chunk[..reach]);
            set.find(&self.bridge, spans, |start, end| {
                if start < head.len() {
                    push_run(runs, start..end);
                }
            });
        }
        set.find(chunk, spans, |start, end| {
            push_run(runs, head.len() + start..head.len() + end);
        });

        let window = Window { head, chunk };
        if let Some(wrapped) = &set.wrapped {
            let across = &mut self.across;
            across.clear();
            wrapped.find(&window, |start, end| across.push(start..end));
            if !across.is_empty() {
                runs.append(across);
                runs.sort_unstable_by_key(|run| run.start);
                coalesce(runs);
            }
        }
        let mut hold = if at_end {
            window.len()
        } else {
            let keep = set.max_pattern_len().saturating_sub(1);
            if chunk.len() >= keep {
                let from = chunk.len() - keep;
                head.len() + from + set.held_suffix_start(&chunk[from..])
            } else if head.is_empty() {
                set.held_suffix_start(chunk)
            } else {
                // The chunk is short, so the bridge holds the whole window.
                set.held_suffix_start(&self.bridge)
            }
        };
        if !at_end && let Some(wrapped) = &set.wrapped {
            hold = hold.min(wrapped.hold(&window).unwrap_or(hold));
        }

        let mut written = self.open_run_end.unwrap_or(0);
        let mut open_run_end = self.open_run_end;
        for run in runs.iter() {
            if let Some(end) = open_run_end
                && run.start <= end
            {
                written = written.max(run.end);
                open_run_end = Some(end.max(run.end));
                continue;
            }
            debug_assert!(run.start >= written, "a run overlaps bytes already written");
            if run.end <= written {
                continue;
            }
            if run.start > written {
                if run.start > hold {
                    break;
                }
                window.write(out, written..run.start)?;
            }
            out.write_all(REDACTED)?;
            written = run.end;
            open_run_end = Some(run.end);
        }
        if written < hold {
            window.write(out, written..hold)?;
            written = hold;
        }
        self.open_run_end = open_run_end
            .filter(|&end| end == written)
            .map(|end| end - hold);
        if runs.capacity() > 4096 {
            runs.clear();
            runs.shrink_to(64);
        }
        Ok(hold)
    }
}

/// The bytes of `head` from `hold` on, if `hold` falls inside `head`.
fn head_rest(head: &[u8], hold: usize) -> Option<&[u8]> {
    head.get(hold..).filter(|_| hold < head.len())
}

/// Adds an occurrence to `runs`, merging it with the runs it overlaps or touches.
///
/// Each occurrence must end no earlier than every one added before it, or start no earlier
/// than every one added before it (the automaton reports by end, the slow path by start;
/// occurrences from the chunk start after all those from the bridge).
fn push_run(runs: &mut Vec<Range<usize>>, mut run: Range<usize>) {
    while let Some(last) = runs.last() {
        if last.end < run.start {
            break;
        }
        run.start = run.start.min(last.start);
        run.end = run.end.max(last.end);
        runs.pop();
    }
    runs.push(run);
}

/// Merges the overlapping or touching runs of a list sorted by start.
fn coalesce(runs: &mut Vec<Range<usize>>) {
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(runs.len());
    for run in runs.drain(..) {
        match merged.last_mut() {
            Some(last) if run.start <= last.end => last.end = last.end.max(run.end),
            _ => merged.push(run),
        }
    }
    *runs = merged;
}

/// The bytes being masked: those held back, then the new chunk.
pub(super) struct Window<'a> {
    head: &'a [u8],
    chunk: &'a [u8],
}

impl Window<'_> {
    pub(super) fn get(&self, at: usize) -> Option<u8> {
        match at.checked_sub(self.head.len()) {
            None => self.head.get(at).copied(),
            Some(in_chunk) => self.chunk.get(in_chunk).copied(),
        }
    }

    /// The `2 * reach + 1` bytes centred on window position `at`, if they all lie in the chunk.
    #[inline(always)]
    pub(super) fn chunk_around<const N: usize>(&self, at: usize, reach: usize) -> Option<[u8; N]> {
        let from = at.checked_sub(self.head.len())?.checked_sub(reach)?;
        self.chunk.get(from..from + N)?.first_chunk::<N>().copied()
    }

    /// Position of the last `\n`.
    pub(super) fn last_newline(&self) -> Option<usize> {
        memchr::memrchr(b'\n', self.chunk)
            .map(|at| at + self.head.len())
            .or_else(|| memchr::memrchr(b'\n', self.head))
    }

    /// Positions of every `\n`, in order.
    pub(super) fn newlines(&self) -> impl Iterator<Item = usize> + '_ {
        let split = self.head.len();
        memchr::memchr_iter(b'\n', self.head)
            .chain(memchr::memchr_iter(b'\n', self.chunk).map(move |at| at + split))
    }

    pub(super) fn len(&self) -> usize {
        self.head.len() + self.chunk.len()
    }

    fn write(&self, out: &mut impl Write, range: Range<usize>) -> io::Result<()> {
        let split = self.head.len();
        if range.start < split {
            out.write_all(&self.head[range.start..range.end.min(split)])?;
        }
        if range.end > split {
            out.write_all(&self.chunk[range.start.max(split) - split..range.end - split])?;
        }
        Ok(())
    }
}

impl<M: Borrow<MaskSet>> Drop for StreamMasker<M> {
    fn drop(&mut self) {
        self.held.zeroize();
        self.bridge.zeroize();
        self.spare.zeroize();
    }
}
