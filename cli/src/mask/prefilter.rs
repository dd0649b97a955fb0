//! A sampling prefilter: finds the few spans of a haystack that may hold a pattern, looking
//! at a small fraction of its bytes, so that the exact matcher only runs on those spans.
//!
//! Take a group of patterns whose shortest member is `m` bytes long. An occurrence of any of
//! them covers the `m - 3` consecutive positions `s ..= s + m - 4` at which a 4-byte window
//! lies inside the pattern's first `m` bytes. Probing the window at every `step = m - 3`th
//! position therefore hits each occurrence at least once, at an offset below `step`. The group
//! keeps a Bloom filter of its patterns' windows at offsets `0..step`; a probe that misses rules
//! out every occurrence of the group starting in the `step` positions up to it, and a probe
//! that hits yields a span to check. Patterns are grouped by length (classes of 4–7, 8–15,
//! 16–31 bytes, …, merged while their lengths stay within a few steps of each other) so that a
//! short pattern does not shrink the step of much longer ones, and a hit on a short pattern
//! does not send a long span to the matcher.

use std::collections::BTreeMap;
use std::ops::Range;

/// Width of a probed window.
const GRAM: usize = 4;
/// Upper bound on a group's step, which bounds the filter entries per pattern.
const MAX_STEP: usize = 256;
/// A class joins the previous group if its longest pattern is at most this many of the
/// group's steps long.
const MERGE_REACH: usize = 8;
/// Bloom filter size per entry: with two bits set per entry in one 64-bit word, 0.6–1.3 %
/// false positives, depending on how the size rounds up to a power of two (`tests` bounds it
/// at 3 %). A false positive costs one short span for the exact matcher. Four times the size
/// (about 0.1 %) made the 1,000-secret set's filter 2 MiB and its scan 16–25 % slower.
const BITS_PER_ENTRY: usize = 16;
const MIN_BITS: usize = 1 << 9;
/// 2 MiB; the index is taken from the top 20 bits of the hash.
const MAX_BITS: usize = 1 << 24;

pub(super) struct Prefilter {
    groups: Vec<Group>,
    /// The first 4 bytes of every pattern.
    starts: Bloom,
}

struct Group {
    /// Distance between probes: the shortest pattern's length minus 3, capped.
    step: usize,
    /// The longest pattern of the group.
    reach: usize,
    bloom: Bloom,
}

impl Prefilter {
    /// Builds the filter for `patterns`, each at least [`GRAM`] bytes long.
    pub(super) fn new(patterns: &[Vec<u8>]) -> Prefilter {
        let mut classes: BTreeMap<u32, Vec<&[u8]>> = BTreeMap::new();
        for pattern in patterns.iter().filter(|pattern| pattern.len() >= GRAM) {
            let class = (pattern.len() / GRAM).ilog2();
            classes.entry(class).or_default().push(pattern);
        }
        // A longer class joins the group before it while its patterns stay within a few
        // steps of that group's: one probe grid instead of two, spans still short.
        let mut merged: Vec<Vec<&[u8]>> = Vec::new();
        for class in classes.into_values() {
            let longest = class.iter().map(|p| p.len()).max().unwrap_or(GRAM);
            match merged.last_mut() {
                Some(group) if longest <= MERGE_REACH * step_for(group) => group.extend(class),
                _ => merged.push(class),
            }
        }
        let groups = merged.iter().map(|group| Group::new(group)).collect();
        let mut starts = Bloom::with_capacity(patterns.len());
        for pattern in patterns {
            if let Some(&gram) = pattern.first_chunk::<GRAM>() {
                starts.insert(u32::from_le_bytes(gram));
            }
        }
        Prefilter { groups, starts }
    }

    /// Replaces `spans` with sorted, disjoint spans of `haystack` that together contain every
    /// occurrence of every pattern in `haystack`.
    pub(super) fn candidates(&self, haystack: &[u8], spans: &mut Vec<Range<usize>>) {
        spans.clear();
        for group in &self.groups {
            group.candidates(haystack, spans);
        }
        if self.groups.len() > 1 && spans.len() > 1 {
            spans.sort_unstable_by_key(|span| span.start);
            coalesce(spans);
        }
    }

    /// Whether some pattern may start with the 4 bytes `prefix`.
    pub(super) fn may_start_with(&self, prefix: [u8; GRAM]) -> bool {
        self.starts.may_contain(u32::from_le_bytes(prefix))
    }
}

impl Group {
    fn new(patterns: &[&[u8]]) -> Group {
        let reach = patterns.iter().map(|p| p.len()).max().unwrap_or(GRAM);
        let step = step_for(patterns);
        let mut bloom = Bloom::with_capacity(patterns.len() * step);
        for pattern in patterns {
            for window in pattern.windows(GRAM).take(step) {
                if let Some(&gram) = window.first_chunk::<GRAM>() {
                    bloom.insert(u32::from_le_bytes(gram));
                }
            }
        }
        Group { step, reach, bloom }
    }

    /// Appends this group's spans of `haystack` to `spans`, merged with each other.
    fn candidates(&self, haystack: &[u8], spans: &mut Vec<Range<usize>>) {
        let first = spans.len();
        let Some(last) = haystack.len().checked_sub(GRAM) else {
            return;
        };
        let step = self.step;
        let mut probe = 0;
        // Four independent probes per round, one branch: hits are rare. Written out rather
        // than as `[0, 1, 2, 3].map(..)`, which was not inlined and cost a fifth of the scan.
        while probe + 3 * step <= last {
            let hits = [
                self.probe(haystack, probe),
                self.probe(haystack, probe + step),
                self.probe(haystack, probe + 2 * step),
                self.probe(haystack, probe + 3 * step),
            ];
            if hits[0] | hits[1] | hits[2] | hits[3] {
                for (k, _) in hits.iter().enumerate().filter(|(_, hit)| **hit) {
                    self.add_span(haystack.len(), probe + k * step, first, spans);
                }
            }
            probe += 4 * step;
        }
        while probe <= last {
            if self.probe(haystack, probe) {
                self.add_span(haystack.len(), probe, first, spans);
            }
            probe += step;
        }
    }

    #[inline(always)]
    fn probe(&self, haystack: &[u8], at: usize) -> bool {
        match haystack.get(at..at + GRAM) {
            Some(&[a, b, c, d]) => self.bloom.may_contain(u32::from_le_bytes([a, b, c, d])),
            _ => false,
        }
    }

    /// Records a hit at `probe`: occurrences it vouches for start at most `step - 1` bytes
    /// before it and end within `reach` bytes of their start.
    #[cold]
    fn add_span(&self, len: usize, probe: usize, first: usize, spans: &mut Vec<Range<usize>>) {
        let start = probe.saturating_sub(self.step - 1);
        let end = len.min(probe + self.reach);
        match spans[first..].last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => spans.push(start..end),
        }
    }
}

/// The probe distance that catches every pattern in `patterns`.
fn step_for(patterns: &[&[u8]]) -> usize {
    let shortest = patterns.iter().map(|p| p.len()).min().unwrap_or(GRAM);
    (shortest + 1 - GRAM).clamp(1, MAX_STEP)
}

/// Merges overlapping or touching spans of a list sorted by start.
fn coalesce(spans: &mut Vec<Range<usize>>) {
    let mut kept = 0;
    for index in 1..spans.len() {
        let next = spans[index].clone();
        if next.start <= spans[kept].end {
            spans[kept].end = spans[kept].end.max(next.end);
        } else {
            kept += 1;
            spans[kept] = next;
        }
    }
    spans.truncate(kept + 1);
}

/// A blocked Bloom filter over 4-byte windows: one word per key, two bits set in it.
pub(super) struct Bloom {
    words: Box<[u64]>,
    shift: u32,
}

impl Bloom {
    pub(super) fn with_capacity(entries: usize) -> Bloom {
        let bits = entries
            .saturating_mul(BITS_PER_ENTRY)
            .next_power_of_two()
            .clamp(MIN_BITS, MAX_BITS);
        let words = bits / 64;
        Bloom {
            words: vec![0; words].into_boxed_slice(),
            shift: 64 - words.ilog2(),
        }
    }

    /// The word index (top bits of the hash) and the two bits (from the bits below it).
    #[inline(always)]
    fn locate(&self, gram: u32) -> (usize, u64) {
        let hash = u64::from(gram).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let index = (hash >> self.shift) as usize;
        let bits = (1 << ((hash >> 32) & 63)) | (1 << ((hash >> 38) & 63));
        (index, bits)
    }

    pub(super) fn insert(&mut self, gram: u32) {
        let (index, bits) = self.locate(gram);
        if let Some(word) = self.words.get_mut(index) {
            *word |= bits;
        }
    }

    #[inline(always)]
    pub(super) fn may_contain(&self, gram: u32) -> bool {
        let (index, bits) = self.locate(gram);
        self.words.get(index).is_none_or(|word| word & bits == bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap deterministic sequence of 4-byte windows.
    fn grams(seed: u64, n: usize) -> impl Iterator<Item = u32> {
        let mut state = seed;
        (0..n).map(move |_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 32) as u32
        })
    }

    #[test]
    fn the_filter_has_no_false_negatives_and_few_false_positives() {
        for entries in [300, 27_300, 273_000] {
            let mut bloom = Bloom::with_capacity(entries);
            let inserted: Vec<u32> = grams(1, entries).collect();
            for &gram in &inserted {
                bloom.insert(gram);
            }
            assert!(inserted.iter().all(|&gram| bloom.may_contain(gram)));
            let probes = 200_000;
            let hits = grams(2, probes)
                .filter(|gram| bloom.may_contain(*gram))
                .count();
            let rate = hits as f64 / probes as f64;
            assert!(
                rate < 0.03,
                "{entries} entries: {:.2} % false positives",
                rate * 100.0
            );
        }
    }
}
