//! Secret masking for child-process output (`vaultctl exec`, `vaultctl mask`).
//!
//! - [`MaskSet`] turns secret values into the byte patterns to hide: each value of at least
//!   [`MIN_LEN`] bytes, each such line of a multi-line value, and their encoded forms
//!   ([`variants`]: base64 at every alignment, JSON-escaped, URL-encoded, shell-quoted, XML).
//!   A value that is JSON text also has each string leaf masked that way ([`structured`]).
//! - [`StreamMasker`] ([`stream`]) filters a byte stream through a set: every occurrence of a
//!   pattern becomes `***`, overlapping or touching occurrences become a single `***`, and every
//!   other byte passes through unchanged. Base64 forms are also found when line breaks split
//!   them, at any column ([`wrapped`]). No way of splitting the stream into writes lets a
//!   pattern through, and only a possible start of a pattern is ever held back.
//! - Matching ([`MaskSet::find`]) is a sampling prefilter ([`prefilter`]) that finds the few
//!   spans that may hold a pattern, checked exactly by an Aho-Corasick automaton.
//!
//! Patterns are secret material: they are never logged, `Debug` shows only how many there are,
//! and this module's copies are zeroized on drop (the automaton's own tables cannot be).

mod prefilter;
pub mod pump;
mod stream;
mod structured;
mod variants;
mod wrapped;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use zeroize::Zeroize;

use self::prefilter::Prefilter;
pub use self::stream::StreamMasker;
pub use self::variants::MIN_LEN;
use self::wrapped::Wrapped;

/// What every masked run of output is replaced with.
pub const REDACTED: &[u8] = b"***";

/// The patterns to mask, built once from the secret values and shared by the output streams.
pub struct MaskSet {
    /// Sorted and deduplicated, each at least [`MIN_LEN`] bytes.
    patterns: Vec<Vec<u8>>,
    prefilter: Prefilter,
    /// `None` only if no automaton could be built; matching then compares patterns one by one.
    automaton: Option<AhoCorasick>,
    /// Whether some pattern starts with this byte.
    first_bytes: [bool; 256],
    max_len: usize,
    too_short: Vec<usize>,
    /// The base64 forms again, matched across line breaks.
    wrapped: Option<Wrapped>,
}

impl MaskSet {
    /// Builds the patterns for `secrets`. Values shorter than [`MIN_LEN`] bytes are not masked:
    /// their indices are listed by [`MaskSet::too_short`]. Empty values are ignored.
    pub fn new<I>(secrets: I) -> MaskSet
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut patterns = Vec::new();
        let mut base64 = Vec::new();
        let mut too_short = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let value = secret.as_ref();
            match value.len() {
                0 => {}
                len if len < MIN_LEN => too_short.push(index),
                _ => {
                    for unit in variants::units(value) {
                        variants::push_forms(&unit, &mut patterns, &mut base64);
                    }
                    for leaf in structured::leaves(value) {
                        for unit in variants::units(&leaf) {
                            variants::push_forms(&unit, &mut patterns, &mut base64);
                        }
                    }
                }
            }
        }
        patterns.extend(base64.iter().cloned());
        let wrapped = Wrapped::new(base64);
        patterns.retain_mut(|pattern| {
            let keep = pattern.len() >= MIN_LEN;
            if !keep {
                pattern.zeroize();
            }
            keep
        });
        patterns.sort_unstable();
        patterns.dedup_by(|later, earlier| {
            let duplicate = later == earlier;
            if duplicate {
                later.zeroize();
            }
            duplicate
        });
        let mut set = Self::from_patterns(patterns, too_short);
        set.wrapped = wrapped;
        set
    }

    fn from_patterns(patterns: Vec<Vec<u8>>, too_short: Vec<usize>) -> MaskSet {
        let mut first_bytes = [false; 256];
        for pattern in &patterns {
            if let Some(&first) = pattern.first() {
                first_bytes[usize::from(first)] = true;
            }
        }
        MaskSet {
            prefilter: Prefilter::new(&patterns),
            automaton: build_automaton(&patterns),
            first_bytes,
            max_len: patterns.iter().map(Vec::len).max().unwrap_or(0),
            too_short,
            patterns,
            wrapped: None,
        }
    }

    /// Indices (in the order given to [`MaskSet::new`]) of the non-empty values that were too
    /// short to mask, so the caller can name them in a warning.
    pub fn too_short(&self) -> &[usize] {
        &self.too_short
    }

    /// How many distinct patterns are masked.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether nothing is masked.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The longest pattern: a stream masker holds back fewer bytes than this.
    pub fn max_pattern_len(&self) -> usize {
        self.max_len
    }

    /// Masks a whole buffer at once, as a [`StreamMasker`] would.
    pub fn mask(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut masker = StreamMasker::new(self);
        // Writing to a Vec cannot fail.
        let _ = masker.write(data, &mut out);
        let _ = masker.finish(&mut out);
        out
    }

    /// Calls `found(start, end)` for every occurrence of every pattern in `haystack`
    /// (overlapping ones included), in order of `end`.
    fn find(
        &self,
        haystack: &[u8],
        spans: &mut Vec<Range<usize>>,
        mut found: impl FnMut(usize, usize),
    ) {
        if haystack.len() < MIN_LEN || self.patterns.is_empty() {
            return;
        }
        self.prefilter.candidates(haystack, spans);
        for span in spans.iter() {
            let input = Input::new(haystack).range(span.clone());
            match self
                .automaton
                .as_ref()
                .map(|automaton| automaton.try_find_overlapping_iter(input))
            {
                Some(Ok(matches)) => matches.for_each(|m| found(m.start(), m.end())),
                _ => self.find_one_by_one(haystack, span.clone(), &mut found),
            }
        }
    }

    /// The slow path for when no automaton could be built: every pattern at every position.
    /// Reports occurrences in order of start, which [`stream`] accepts as well.
    fn find_one_by_one(
        &self,
        haystack: &[u8],
        span: Range<usize>,
        found: &mut impl FnMut(usize, usize),
    ) {
        let Some(window) = haystack.get(span.clone()) else {
            return;
        };
        for offset in 0..window.len() {
            let rest = &window[offset..];
            for pattern in &self.patterns {
                if rest.starts_with(pattern) {
                    let start = span.start + offset;
                    found(start, start + pattern.len());
                }
            }
        }
    }

    /// The start of the longest suffix of `tail` that is a proper prefix of some pattern
    /// (`tail.len()` if there is none). Only the last `max_pattern_len() - 1` bytes matter.
    fn held_suffix_start(&self, tail: &[u8]) -> usize {
        let from = tail.len().saturating_sub(self.max_len.saturating_sub(1));
        (from..tail.len())
            .find(|&start| self.is_proper_prefix(&tail[start..]))
            .unwrap_or(tail.len())
    }

    fn is_proper_prefix(&self, candidate: &[u8]) -> bool {
        let plausible = match candidate.first_chunk() {
            Some(&head) => self.prefilter.may_start_with(head),
            None => candidate
                .first()
                .is_some_and(|&first| self.first_bytes[usize::from(first)]),
        };
        if !plausible {
            return false;
        }
        // Patterns that start with `candidate` sort right after it; skip an exact match.
        let index = self
            .patterns
            .partition_point(|pattern| pattern.as_slice() < candidate);
        self.patterns[index..]
            .iter()
            .take(2)
            .any(|pattern| pattern.len() > candidate.len() && pattern.starts_with(candidate))
    }
}

/// A contiguous NFA, not a DFA: the automaton only checks the prefilter's few spans, so a
/// DFA's speed hardly shows, while building one costs about 150 bytes per pattern byte and,
/// even for a single secret with its variants, milliseconds of every `vaultctl exec` start.
pub(super) fn build_automaton(patterns: &[Vec<u8>]) -> Option<AhoCorasick> {
    [
        Some(AhoCorasickKind::ContiguousNFA),
        Some(AhoCorasickKind::NoncontiguousNFA),
    ]
    .into_iter()
    .find_map(|kind| {
        AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(kind)
            // The spans handed over are a few dozen bytes: its own prefilter would not pay.
            .prefilter(false)
            .build(patterns)
            .ok()
    })
}

impl fmt::Debug for MaskSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskSet")
            .field("patterns", &self.patterns.len())
            .finish_non_exhaustive()
    }
}

impl Drop for MaskSet {
    fn drop(&mut self) {
        self.patterns.zeroize();
    }
}
