//! Base64 wrapped over lines: `base64` (76 columns), `openssl base64` and PEM (64) split an
//! encoding with line breaks, so a secret's base64 form may never appear on one line.
//!
//! The base64 forms are matched a second time on the *view* of the stream in which every line
//! break (`\n`, with up to two `\r` before it: `\r\n`, and a pty's `\r\r\n`) is left out, so
//! any wrap column works; a line break right after another (an empty line) is kept, as no
//! encoder writes one inside an encoding. Only occurrences that span a left-out break are reported here (the
//! others are plain occurrences, found by the main matcher); they cover the original bytes
//! from their first to their last character, line breaks included.
//!
//! Cost: the view is never built. Each `\n` of the stream is looked at on its own: unless the
//! bytes beside it are base64 characters, and a 4-character window across it is (as far as a
//! Bloom filter of every 4-character window of every pattern can tell) part of a pattern, it is
//! skipped. Only then is a small view around it put together and matched.
//!
//! Hold-back: a line that ends in base64 characters may go on, on the next line, to complete
//! an occurrence. [`Wrapped::hold`] finds the longest such tail of the window that could still
//! grow into a pattern of the view (at most one pattern long, in characters). As the view ends
//! at an empty line, that tail spans at most one line break per character: the hold is bounded
//! by about `max_len * (2 + MAX_CR)` bytes however many blank lines follow.

use aho_corasick::{AhoCorasick, Input};
use zeroize::Zeroize;

use super::prefilter::Bloom;
use super::stream::Window;
use super::{MIN_LEN, build_automaton};

/// `\r` bytes before a `\n` that belong to its line break.
const MAX_CR: usize = 2;
/// Width of the windows in the Bloom filter.
const GRAM: usize = 4;

/// The base64 forms of every secret, and what it takes to find them across line breaks.
pub(super) struct Wrapped {
    /// Sorted and deduplicated, each at least [`MIN_LEN`] bytes, all base64 characters.
    patterns: Vec<Vec<u8>>,
    automaton: Option<AhoCorasick>,
    /// Every 4-character window of every pattern.
    grams: Bloom,
    max_len: usize,
}

/// The characters of standard and URL-safe base64, padding included.
pub(super) fn is_base64(byte: u8) -> bool {
    matches!(byte, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'-' | b'_' | b'=')
}

/// A character of the view and where it is in the window.
#[derive(Clone, Copy)]
struct Char {
    byte: u8,
    at: usize,
}

impl Wrapped {
    /// `None` if there is no base64 form to look for.
    pub(super) fn new(mut patterns: Vec<Vec<u8>>) -> Option<Wrapped> {
        patterns.retain_mut(|pattern| {
            let keep = pattern.len() >= MIN_LEN && pattern.iter().all(|&b| is_base64(b));
            if !keep {
                pattern.zeroize();
            }
            keep
        });
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return None;
        }
        let windows: usize = patterns.iter().map(|p| p.len() + 1 - GRAM).sum();
        let mut grams = Bloom::with_capacity(windows);
        for pattern in &patterns {
            for window in pattern.windows(GRAM) {
                if let Some(&gram) = window.first_chunk::<GRAM>() {
                    grams.insert(u32::from_le_bytes(gram));
                }
            }
        }
        Some(Wrapped {
            automaton: build_automaton(&patterns),
            max_len: patterns.iter().map(Vec::len).max().unwrap_or(0),
            patterns,
            grams,
        })
    }

    /// Calls `found(start, end)` (window positions) for every occurrence of a pattern in the
    /// view of `window` that spans at least one left-out line break.
    pub(super) fn find(&self, window: &Window<'_>, mut found: impl FnMut(usize, usize)) {
        let reach = self.max_len - 1;
        let mut left = Vec::new();
        for newline in window.newlines() {
            let start = break_start(window, newline);
            let (Some(before), Some(after)) = (
                start.checked_sub(1).and_then(|at| window.get(at)),
                window.get(newline + 1),
            ) else {
                continue;
            };
            // A break followed by another is an empty line, which no encoding spans.
            if !is_base64(before) || !is_base64(after) {
                continue;
            }
            // Cheap check first: some 4-character window across the break is in a pattern.
            if let Some(plausible) = self.plausible_simple_break(window, start, newline) {
                if !plausible {
                    continue;
                }
            } else if !self.plausible_break(window, start, newline) {
                continue;
            }
            // The view around the break: up to a pattern's length less one on each side.
            left.clear();
            walk_back(window, start, reach, |c| left.push(c));
            left.reverse();
            let split = left.len();
            walk_forward(window, newline + 1, reach, |c| left.push(c));
            let mut view: Vec<u8> = left.iter().map(|c| c.byte).collect();
            self.each_occurrence(&view, |a, b| {
                if a < split && b > split {
                    found(left[a].at, left[b - 1].at + 1);
                }
            });
            view.zeroize();
            left.zeroize_chars();
        }
    }

    /// Whether a 4-character window of the view across the break `start..=newline` may be
    /// part of a pattern.
    fn plausible_break(&self, window: &Window<'_>, start: usize, newline: usize) -> bool {
        let mut across = [0u8; 2 * (GRAM - 1)];
        let mut l = 0;
        walk_back(window, start, GRAM - 1, |c| {
            l += 1;
            across[GRAM - 1 - l] = c.byte;
        });
        let mut r = 0;
        walk_forward(window, newline + 1, GRAM - 1, |c| {
            across[GRAM - 1 + r] = c.byte;
            r += 1;
        });
        let joined = &across[GRAM - 1 - l..GRAM - 1 + r];
        (l.saturating_sub(GRAM - 1)..l)
            .filter_map(|s| joined.get(s..s + GRAM)?.first_chunk::<GRAM>().copied())
            .any(|gram| self.grams.may_contain(u32::from_le_bytes(gram)))
    }

    /// [`Self::plausible_break`] for the usual case, a lone `\n` inside the new chunk with three
    /// base64 characters on each side; `None` for any other case.
    #[inline(always)]
    fn plausible_simple_break(
        &self,
        window: &Window<'_>,
        start: usize,
        newline: usize,
    ) -> Option<bool> {
        if start != newline {
            return None;
        }
        let bytes = window.chunk_around(newline, GRAM - 1)?;
        let [a, b, c, _, d, e, f] = bytes;
        if ![a, b, c, d, e, f].iter().all(|&byte| is_base64(byte)) {
            return None;
        }
        Some(
            [[a, b, c, d], [b, c, d, e], [c, d, e, f]]
                .iter()
                .any(|&gram| self.grams.may_contain(u32::from_le_bytes(gram))),
        )
    }

    /// The start of the longest tail of `window` that spans a line break (or ends in `\r`
    /// bytes that may become one) and whose view is a proper prefix of a pattern: the next
    /// line may complete it.
    pub(super) fn hold(&self, window: &Window<'_>) -> Option<usize> {
        let len = window.len();
        let mut end = len;
        while end > 0 && len - end < MAX_CR && window.get(end - 1) == Some(b'\r') {
            end -= 1;
        }
        // Nothing to hold unless a line break (or a `\r` that may start one) is near the end.
        let near = end.saturating_sub(self.max_len * (2 + MAX_CR));
        if end == len && window.last_newline().is_none_or(|at| at < near) {
            return None;
        }
        let mut tail = Vec::new();
        walk_back(window, end, self.max_len - 1, |c| tail.push(c));
        tail.reverse();
        let n = tail.len();
        let mut view: Vec<u8> = tail.iter().map(|c| c.byte).collect();
        let hold = (0..n).find_map(|i| {
            // Without a left-out byte the tail is plain text, held by the main matcher.
            let spans_break = len - tail[i].at > n - i;
            (spans_break && self.is_proper_prefix(&view[i..])).then_some(tail[i].at)
        });
        view.zeroize();
        tail.zeroize_chars();
        hold
    }

    #[cfg(test)]
    pub(super) fn patterns(&self) -> &[Vec<u8>] {
        &self.patterns
    }

    fn is_proper_prefix(&self, candidate: &[u8]) -> bool {
        let index = self
            .patterns
            .partition_point(|pattern| pattern.as_slice() < candidate);
        self.patterns[index..]
            .iter()
            .take(2)
            .any(|pattern| pattern.len() > candidate.len() && pattern.starts_with(candidate))
    }

    /// Every occurrence (overlapping ones included) of every pattern in `view`.
    fn each_occurrence(&self, view: &[u8], mut found: impl FnMut(usize, usize)) {
        if let Some(Ok(matches)) = self
            .automaton
            .as_ref()
            .map(|automaton| automaton.try_find_overlapping_iter(Input::new(view)))
        {
            matches.for_each(|m| found(m.start(), m.end()));
            return;
        }
        for start in 0..view.len() {
            for pattern in &self.patterns {
                if view[start..].starts_with(pattern) {
                    found(start, start + pattern.len());
                }
            }
        }
    }
}

/// Where the line break ending with the `\n` at `newline` starts.
fn break_start(window: &Window<'_>, newline: usize) -> usize {
    let mut start = newline;
    while start > 0 && newline - start < MAX_CR && window.get(start - 1) == Some(b'\r') {
        start -= 1;
    }
    start
}

/// Calls `push` for each of the view's characters before window position `from`, nearest
/// first, stepping over line breaks, at most `max` of them; stops at anything else, and at an
/// empty line (a line break right before another): base64 encoders never write one inside an
/// encoding, and without that stop a run of blank lines would be held back without limit.
fn walk_back(window: &Window<'_>, from: usize, max: usize, mut push: impl FnMut(Char)) {
    let mut count = 0;
    let mut at = from;
    let mut after_break = false;
    while count < max && at > 0 {
        match window.get(at - 1) {
            Some(byte) if is_base64(byte) => {
                push(Char { byte, at: at - 1 });
                count += 1;
                at -= 1;
                after_break = false;
            }
            Some(b'\n') if !after_break => {
                at = break_start(window, at - 1);
                after_break = true;
            }
            _ => break,
        }
    }
}

/// Calls `push` for each of the view's characters from window position `from` (just after a
/// line break) on, stepping over line breaks, at most `max` of them; stops at anything else, at
/// an empty line (as [`walk_back`] does), or at `\r` bytes the window does not show the end of.
fn walk_forward(window: &Window<'_>, from: usize, max: usize, mut push: impl FnMut(Char)) {
    let mut count = 0;
    let mut at = from;
    let mut after_break = true;
    while count < max {
        match window.get(at) {
            Some(byte) if is_base64(byte) => {
                push(Char { byte, at });
                count += 1;
                at += 1;
                after_break = false;
            }
            Some(b'\n') if !after_break => {
                at += 1;
                after_break = true;
            }
            Some(b'\r') if !after_break => {
                let crs = (0..=MAX_CR)
                    .take_while(|&k| window.get(at + k) == Some(b'\r'))
                    .count();
                if crs > MAX_CR || window.get(at + crs) != Some(b'\n') {
                    break;
                }
                at += crs + 1;
                after_break = true;
            }
            _ => break,
        }
    }
}

trait ZeroizeChars {
    fn zeroize_chars(&mut self);
}

impl ZeroizeChars for Vec<Char> {
    fn zeroize_chars(&mut self) {
        self.iter_mut().for_each(|c| c.byte = 0);
        self.clear();
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        self.patterns.zeroize();
    }
}
