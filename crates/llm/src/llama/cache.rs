//! Prefix KV kept between calls (`LlamaConfig::prefix_cache`, the server's `--prefix-cache`):
//! a bounded set of KV sequences, each holding the whole prompt of an earlier call, replaced
//! least recently used first. A new call's plan loads from them every block-aligned prefix it
//! shares with one ([`crate::plan::Plan::build_with_cache`]): a DISCA `/v1/choose` reuses its
//! culture's persona prefixes from the previous question, chat requests reuse their system
//! prompt. Loaded KV equals decoded KV (the cuts sit on the prefix grid), so results do not
//! depend on what the cache held (tested on the real model).

use crate::backend::PrefixCacheStats as CacheStats;
use crate::types::TokenId;

struct Entry {
    tokens: Vec<TokenId>,
    used: u64,
}

/// The cache's bookkeeping; the engine work (copies, clears) is the backend's.
pub(super) struct PrefixCache {
    /// KV sequence of slot 0.
    first_seq: usize,
    entries: Vec<Option<Entry>>,
    clock: u64,
    /// Sequences the running call loads from: never replaced before the call ends.
    pinned: Vec<usize>,
    pub(super) stats: CacheStats,
}

/// Prompts shorter than this many tokens are not worth a slot.
const MIN_TOKENS: usize = 32;

impl PrefixCache {
    pub(super) fn new(first_seq: usize, slots: usize) -> Self {
        Self {
            first_seq,
            entries: (0..slots).map(|_| None).collect(),
            clock: 0,
            pinned: Vec::new(),
            stats: CacheStats {
                slots,
                ..CacheStats::default()
            },
        }
    }

    pub(super) fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// (sequence, tokens) of every entry.
    pub(super) fn listed(&self) -> Vec<(usize, &[TokenId])> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref()
                    .map(|e| (self.first_seq + i, e.tokens.as_slice()))
            })
            .collect()
    }

    /// Marks an entry (by sequence) as just used.
    pub(super) fn touch(&mut self, seq: usize) {
        self.clock += 1;
        if let Some(Some(e)) = self.entries.get_mut(seq.wrapping_sub(self.first_seq)) {
            e.used = self.clock;
        }
    }

    /// Keeps these sequences (the sources of a call's loads) from being replaced until
    /// [`PrefixCache::unpin`]: a call stores its finished prompts while later parts of it may
    /// still load from the cache.
    pub(super) fn pin(&mut self, seqs: impl IntoIterator<Item = usize>) {
        self.pinned.extend(seqs);
    }

    pub(super) fn unpin(&mut self) {
        self.pinned.clear();
    }

    /// The sequence to store `tokens` into, or `None` when they are not worth storing: short,
    /// with soft-prompt rows, or nearly held already (an entry shares at least three quarters
    /// of them: the other label order or another continuation of the same prompt adds little,
    /// and would push out prompts that share less). An entry that is a prefix of `tokens` is
    /// replaced first, then an empty slot is taken, then the least recently used entry.
    pub(super) fn place(&mut self, tokens: &[TokenId]) -> Option<usize> {
        if tokens.len() < MIN_TOKENS || tokens.iter().any(|t| t.0 < 0) {
            return None;
        }
        let lcp = |e: &Entry| {
            e.tokens
                .iter()
                .zip(tokens)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let covered = |e: &Entry| {
            let l = lcp(e);
            l == tokens.len() || (l < e.tokens.len() && 4 * l >= 3 * tokens.len())
        };
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.as_ref().is_some_and(covered))
        {
            self.touch(self.first_seq + i);
            return None;
        }
        let free = |i: &usize| !self.pinned.contains(&(self.first_seq + i));
        let i = (0..self.entries.len())
            .filter(free)
            .find(|&i| {
                self.entries[i]
                    .as_ref()
                    .is_some_and(|e| tokens.starts_with(&e.tokens))
            })
            .or_else(|| self.entries.iter().position(Option::is_none))
            .or_else(|| {
                (0..self.entries.len())
                    .filter(free)
                    .min_by_key(|&i| self.entries[i].as_ref().map_or(0, |e| e.used))
            })?;
        Some(self.first_seq + i)
    }

    /// Records that `seq` (from [`PrefixCache::place`]) now holds `tokens`.
    pub(super) fn record(&mut self, seq: usize, tokens: Vec<TokenId>) {
        self.clock += 1;
        let i = seq - self.first_seq;
        if let Some(old) = self.entries[i].take() {
            self.stats.replaced += 1;
            self.stats.tokens_held -= old.tokens.len();
        } else {
            self.stats.held += 1;
        }
        self.stats.stored += 1;
        self.stats.tokens_held += tokens.len();
        self.entries[i] = Some(Entry {
            tokens,
            used: self.clock,
        });
    }

    /// Forgets every entry (the model changed, e.g. other adapter scales); returns the
    /// sequences to clear.
    pub(super) fn forget(&mut self) -> Vec<usize> {
        let seqs = self.listed().into_iter().map(|(s, _)| s).collect();
        for e in &mut self.entries {
            *e = None;
        }
        self.stats.held = 0;
        self.stats.tokens_held = 0;
        seqs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(n: usize, base: i32) -> Vec<TokenId> {
        (0..n as i32).map(|i| TokenId(base + i)).collect()
    }

    #[test]
    fn placement_replaces_prefixes_then_fills_then_evicts_the_least_recently_used() {
        let mut c = PrefixCache::new(10, 2);
        assert_eq!(c.place(&toks(8, 0)), None, "too short");
        let a = toks(40, 0);
        let s = c.place(&a).unwrap();
        c.record(s, a.clone());
        // A prefix of what is held is not stored again; an extension replaces it.
        assert_eq!(c.place(&a[..35]), None);
        let longer = toks(50, 0);
        assert_eq!(c.place(&longer), Some(s));
        c.record(s, longer);
        let b = toks(40, 1000);
        let t = c.place(&b).unwrap();
        assert_ne!(t, s);
        c.record(t, b);
        // Full: the least recently used goes; touching `s` makes `t` the older one.
        c.touch(s);
        assert_eq!(c.place(&toks(40, 5000)), Some(t));
        assert_eq!(c.stats.held, 2);
        assert_eq!(c.stats.replaced, 1, "the extension replaced its prefix");
        // Nearly held: a variant sharing three quarters of its tokens with an entry.
        let mut variant = toks(50, 0);
        variant[45] = TokenId(-7 + 9000);
        assert_eq!(c.place(&variant), None);
        let mut soft = toks(40, 0);
        soft[3] = TokenId(-2);
        assert_eq!(c.place(&soft), None, "soft-prompt rows are per call");
        // A pinned entry (a source of the running call) is neither replaced nor evicted.
        let (s_now, t_now) = (c.listed()[0].0, c.listed()[1].0);
        c.touch(t_now);
        c.pin([s_now]);
        assert_eq!(
            c.place(&toks(40, 7000)),
            Some(t_now),
            "the pinned LRU entry stays"
        );
        c.pin([t_now]);
        assert_eq!(
            c.place(&toks(40, 8000)),
            None,
            "everything pinned: nothing stored"
        );
        c.unpin();
        assert_eq!(c.place(&toks(40, 8000)), Some(s_now));
        assert_eq!(c.forget().len(), 2);
        assert!(c.is_empty());
    }
}
