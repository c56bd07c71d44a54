//! Prefix-sharing evaluation plans, independent of any engine.
//!
//! A batch of token paths (prompt, or prompt + continuation) is turned into a compressed prefix
//! tree: every shared prefix becomes one *segment* that is evaluated once, and each branch
//! continues from a copy of its parent's KV cache. [`schedule`] then packs segments into
//! *waves* (one decode call each) under a token budget and a fixed number of KV sequence slots.
//! The executor (e.g. the llama.cpp backend) only has to run the waves.

use crate::types::TokenId;
use std::collections::BTreeMap;
use std::ops::Range;

/// One path to evaluate and the positions where its next-token distribution is wanted.
#[derive(Debug, Clone)]
pub struct PathSpec {
    pub tokens: Vec<TokenId>,
    /// `at` is the index of the token whose output logits are read (they predict token `at + 1`).
    pub queries: Vec<Query>,
}

/// What to read from one logit row.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub at: usize,
    pub tokens: Vec<TokenId>,
    pub top_k: usize,
}

pub type SegId = usize;

/// A run of tokens evaluated in one KV sequence, continuing its parent's.
#[derive(Debug, Clone)]
pub struct Segment {
    pub parent: Option<SegId>,
    pub children: Vec<SegId>,
    /// Position of the first token (= length of the parent chain).
    pub start: usize,
    pub tokens: Vec<TokenId>,
    /// Offsets in `tokens` whose logits are read, with the merged query to answer there.
    pub reads: BTreeMap<usize, ReadId>,
}

pub type ReadId = usize;

/// The merged query answered at one tree node (shared by every path that asks there).
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub tokens: Vec<TokenId>,
    pub top_k: usize,
}

/// A compressed prefix tree over a batch of paths.
#[derive(Debug, Clone)]
pub struct Plan {
    pub segments: Vec<Segment>,
    pub roots: Vec<SegId>,
    pub reads: Vec<Read>,
    /// For each input path, for each of its queries, the read that answers it.
    pub path_reads: Vec<Vec<ReadId>>,
    /// For each input path, the segment holding its last token.
    pub path_leaf: Vec<SegId>,
}

impl Plan {
    /// Builds the plan. With `share_prefixes = false` every path is its own root (the naive
    /// baseline used by benchmarks and equality tests). Paths must be non-empty.
    pub fn build(paths: &[PathSpec], share_prefixes: bool) -> Plan {
        let mut segments: Vec<Segment> = Vec::new();
        let mut roots = Vec::new();
        let mut path_leaf = vec![usize::MAX; paths.len()];
        let new_seg = |segments: &mut Vec<Segment>, parent: Option<SegId>, start: usize, tokens: &[TokenId]| {
            segments.push(Segment {
                parent,
                children: vec![],
                start,
                tokens: tokens.to_vec(),
                reads: BTreeMap::new(),
            });
            segments.len() - 1
        };
        if !share_prefixes {
            for (i, p) in paths.iter().enumerate() {
                let s = new_seg(&mut segments, None, 0, &p.tokens);
                roots.push(s);
                path_leaf[i] = s;
            }
        } else {
            let mut order: Vec<usize> = (0..paths.len()).collect();
            order.sort_by(|&a, &b| paths[a].tokens.cmp(&paths[b].tokens));
            // Chain of segments from the root to the previous path's leaf.
            let mut stack: Vec<SegId> = Vec::new();
            let mut prev: Option<&[TokenId]> = None;
            for &pi in &order {
                let cur = &paths[pi].tokens[..];
                let lcp = prev.map_or(0, |p| p.iter().zip(cur).take_while(|(a, b)| a == b).count());
                // Pop segments that start at or after the divergence point.
                while let Some(&top) = stack.last() {
                    if segments[top].start >= lcp {
                        stack.pop();
                    } else {
                        break;
                    }
                }
                if let Some(&top) = stack.last() {
                    let end = segments[top].start + segments[top].tokens.len();
                    if lcp < end {
                        // Split `top` at lcp: the tail keeps the old children.
                        let cut = lcp - segments[top].start;
                        let tail_tokens = segments[top].tokens.split_off(cut);
                        let tail = new_seg(&mut segments, Some(top), lcp, &tail_tokens);
                        let old_children = std::mem::take(&mut segments[top].children);
                        for &c in &old_children {
                            segments[c].parent = Some(tail);
                        }
                        segments[tail].children = old_children;
                        segments[top].children.push(tail);
                    }
                }
                let parent = stack.last().copied();
                if lcp < cur.len() {
                    let s = new_seg(&mut segments, parent, lcp, &cur[lcp..]);
                    match parent {
                        Some(p) => segments[p].children.push(s),
                        None => roots.push(s),
                    }
                    stack.push(s);
                }
                prev = Some(cur);
            }
            // Splits move segment tails around, so find each path's last segment by descending.
            let mut child_by_first: std::collections::HashMap<(Option<SegId>, TokenId), SegId> =
                std::collections::HashMap::new();
            for (i, s) in segments.iter().enumerate() {
                child_by_first.insert((s.parent, s.tokens[0]), i);
            }
            for (pi, p) in paths.iter().enumerate() {
                let mut parent = None;
                let mut pos = 0;
                let mut seg = usize::MAX;
                while pos < p.tokens.len() {
                    seg = child_by_first[&(parent, p.tokens[pos])];
                    pos += segments[seg].tokens.len();
                    parent = Some(seg);
                }
                path_leaf[pi] = seg;
            }
        }
        let mut plan = Plan { segments, roots, reads: vec![], path_reads: vec![], path_leaf };
        plan.assign_reads(paths);
        plan
    }

    fn assign_reads(&mut self, paths: &[PathSpec]) {
        for (pi, p) in paths.iter().enumerate() {
            let mut ids = Vec::with_capacity(p.queries.len());
            for q in &p.queries {
                let mut seg = self.path_leaf[pi];
                // The leaf may start after `q.at` (or, for prefix paths, the query may sit in a
                // descendant's range — impossible, since the leaf covers the path's last token).
                while self.segments[seg].start > q.at {
                    seg = self.segments[seg].parent.expect("query inside the path");
                }
                let off = q.at - self.segments[seg].start;
                let id = match self.segments[seg].reads.get(&off) {
                    Some(&id) => {
                        let r = &mut self.reads[id];
                        for t in &q.tokens {
                            if !r.tokens.contains(t) {
                                r.tokens.push(*t);
                            }
                        }
                        r.top_k = r.top_k.max(q.top_k);
                        id
                    }
                    None => {
                        self.reads.push(Read { tokens: q.tokens.clone(), top_k: q.top_k });
                        let id = self.reads.len() - 1;
                        self.segments[seg].reads.insert(off, id);
                        id
                    }
                };
                ids.push(id);
            }
            self.path_reads.push(ids);
        }
    }

    /// Total tokens the plan evaluates.
    pub fn tokens_evaluated(&self) -> usize {
        self.segments.iter().map(|s| s.tokens.len()).sum()
    }

    /// Depth (number of tokens) of the deepest path.
    pub fn max_len(&self) -> usize {
        self.segments.iter().map(|s| s.start + s.tokens.len()).max().unwrap_or(0)
    }
}

/// A KV-cache operation run before a wave's decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// Make `dst` a copy of `src` (dst is empty beforehand).
    Copy { src: usize, dst: usize },
}

/// Part of one segment decoded in a wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub seg: SegId,
    pub slot: usize,
    /// Token offsets inside the segment.
    pub range: Range<usize>,
}

/// One decode call: KV ops first, then the chunks in one batch, then slots to clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wave {
    pub ops: Vec<KvOp>,
    pub chunks: Vec<Chunk>,
    pub release: Vec<usize>,
}

/// Slot of each segment that stays in the cache at the end (only with `keep_leaves`).
pub type LeafSlots = Vec<(SegId, usize)>;

/// Packs the plan into waves of at most `n_batch` tokens over `n_slots` KV sequences.
/// Deeper segments go first so finished branches free their slots early. With `keep_leaves`,
/// leaf segments keep their slots at the end (for generation); there must be at most
/// `n_slots` leaves then.
pub fn schedule(plan: &Plan, n_slots: usize, n_batch: usize, keep_leaves: bool) -> Result<(Vec<Wave>, LeafSlots), String> {
    let n = plan.segments.len();
    let mut depth = vec![0usize; n];
    let mut order: Vec<SegId> = Vec::new();
    let mut stack: Vec<SegId> = plan.roots.iter().rev().copied().collect();
    while let Some(s) = stack.pop() {
        order.push(s);
        for &c in plan.segments[s].children.iter().rev() {
            depth[c] = depth[s] + 1;
            stack.push(c);
        }
    }
    // Height = levels below a segment; a branch that copies needs that many spare slots later.
    let mut height = vec![0usize; n];
    for &s in order.iter().rev() {
        if let Some(p) = plan.segments[s].parent {
            height[p] = height[p].max(height[s] + 1);
        }
    }
    let mut rank = vec![0usize; n];
    for (i, &s) in order.iter().enumerate() {
        rank[s] = i;
    }
    let mut slot_of: Vec<Option<usize>> = vec![None; n];
    let mut done_tokens = vec![0usize; n];
    let mut unlaunched = vec![0usize; n];
    for (i, s) in plan.segments.iter().enumerate() {
        unlaunched[i] = s.children.len();
    }
    let mut free: Vec<usize> = (0..n_slots).rev().collect();
    let mut ready: Vec<SegId> = plan.roots.clone();
    let mut running: Vec<SegId> = Vec::new();
    let mut waves = Vec::new();
    let mut finished = 0usize;
    let mut leaves: LeafSlots = Vec::new();
    while finished < n {
        let mut wave = Wave::default();
        let mut budget = n_batch;
        // 1. Continue segments already holding a slot.
        for &s in &running {
            if budget == 0 {
                break;
            }
            let len = plan.segments[s].tokens.len();
            let take = (len - done_tokens[s]).min(budget);
            wave.chunks.push(Chunk { seg: s, slot: slot_of[s].unwrap_or(usize::MAX), range: done_tokens[s]..done_tokens[s] + take });
            budget -= take;
        }
        // 2. Launch ready segments, deepest first, then in tree order.
        ready.sort_by_key(|&s| (std::cmp::Reverse(depth[s]), rank[s]));
        let mut still_ready = Vec::new();
        for &s in &ready {
            if budget == 0 {
                still_ready.push(s);
                continue;
            }
            let parent = plan.segments[s].parent;
            let slot = match parent {
                Some(p) if unlaunched[p] == 1 => {
                    // Last child takes over the parent's sequence.
                    slot_of[p].take()
                }
                Some(p) if free.len() > height[s] => free.pop().map(|dst| {
                    wave.ops.push(KvOp::Copy { src: slot_of[p].expect("parent holds a slot"), dst });
                    dst
                }),
                None if free.len() > height[s] => free.pop(),
                _ => None,
            };
            let Some(slot) = slot else {
                still_ready.push(s);
                continue;
            };
            if let Some(p) = parent {
                unlaunched[p] -= 1;
            }
            slot_of[s] = Some(slot);
            let take = plan.segments[s].tokens.len().min(budget);
            wave.chunks.push(Chunk { seg: s, slot, range: 0..take });
            budget -= take;
            running.push(s);
        }
        ready = still_ready;
        if wave.chunks.is_empty() {
            return Err(format!(
                "prefix tree needs more than {n_slots} parallel sequences (raise the sequence count)"
            ));
        }
        // 3. Account for what this wave completes.
        for c in &wave.chunks {
            done_tokens[c.seg] = c.range.end;
        }
        let mut still_running = Vec::new();
        for &s in &running {
            if done_tokens[s] < plan.segments[s].tokens.len() {
                still_running.push(s);
                continue;
            }
            finished += 1;
            if plan.segments[s].children.is_empty() {
                let slot = slot_of[s].expect("running segment holds a slot");
                if keep_leaves {
                    leaves.push((s, slot));
                } else {
                    slot_of[s] = None;
                    wave.release.push(slot);
                    free.push(slot);
                }
            } else {
                ready.extend(plan.segments[s].children.iter().copied());
            }
        }
        running = still_running;
        // Fix up chunk slots for continued segments (recorded before launch bookkeeping).
        for c in wave.chunks.iter_mut() {
            if c.slot == usize::MAX {
                c.slot = slot_of[c.seg].expect("running segment holds a slot");
            }
        }
        waves.push(wave);
    }
    Ok((waves, leaves))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[i32]) -> Vec<TokenId> {
        v.iter().map(|&x| TokenId(x)).collect()
    }
    fn path(v: &[i32]) -> PathSpec {
        let tokens = t(v);
        let at = tokens.len() - 1;
        PathSpec { tokens, queries: vec![Query { at, tokens: vec![TokenId(0)], top_k: 1 }] }
    }

    /// Simulates the waves: each slot holds a token list; checks every chunk continues exactly
    /// its own path and that every read is produced once with the right context.
    fn simulate(plan: &Plan, waves: &[Wave], n_slots: usize) -> Vec<Option<Vec<TokenId>>> {
        let mut slots: Vec<Vec<TokenId>> = vec![vec![]; n_slots];
        let mut read_ctx: Vec<Option<Vec<TokenId>>> = vec![None; plan.reads.len()];
        for w in waves {
            for op in &w.ops {
                let KvOp::Copy { src, dst } = *op;
                assert!(slots[dst].is_empty(), "copy into a dirty slot");
                slots[dst] = slots[src].clone();
            }
            for c in &w.chunks {
                let seg = &plan.segments[c.seg];
                assert_eq!(slots[c.slot].len(), seg.start + c.range.start, "chunk continues at the wrong position");
                for off in c.range.clone() {
                    slots[c.slot].push(seg.tokens[off]);
                    if let Some(&r) = seg.reads.get(&off) {
                        assert!(read_ctx[r].is_none(), "read produced twice");
                        read_ctx[r] = Some(slots[c.slot].clone());
                    }
                }
            }
            for &s in &w.release {
                slots[s].clear();
            }
        }
        read_ctx
    }

    fn check(paths: &[PathSpec], share: bool, n_slots: usize, n_batch: usize) -> Plan {
        let plan = Plan::build(paths, share);
        let (waves, _) = schedule(&plan, n_slots, n_batch, false).unwrap();
        let ctx = simulate(&plan, &waves, n_slots);
        for (pi, p) in paths.iter().enumerate() {
            for (qi, q) in p.queries.iter().enumerate() {
                let r = plan.path_reads[pi][qi];
                assert_eq!(ctx[r].as_deref(), Some(&p.tokens[..=q.at]), "path {pi} query {qi}");
            }
        }
        plan
    }

    #[test]
    fn shared_prefixes_are_evaluated_once() {
        let paths = vec![path(&[1, 2, 3, 4]), path(&[1, 2, 3, 5]), path(&[1, 2, 6]), path(&[1, 2, 3, 4]), path(&[7, 8])];
        let plan = check(&paths, true, 4, 64);
        // [1,2] + [3] + [4] + [5] + [6] + [7,8]
        assert_eq!(plan.tokens_evaluated(), 8);
        assert_eq!(plan.path_reads[0], plan.path_reads[3], "duplicates share their read");
        let naive = check(&paths, false, 4, 64);
        assert_eq!(naive.tokens_evaluated(), 17);
    }

    #[test]
    fn prefix_paths_and_mid_segment_queries() {
        let mut p = path(&[1, 2, 3, 4, 5]);
        p.queries.push(Query { at: 1, tokens: vec![TokenId(9)], top_k: 0 });
        let paths = vec![p, path(&[1, 2, 3]), path(&[1, 2, 3, 4, 6])];
        check(&paths, true, 3, 64);
    }

    #[test]
    fn tight_budgets_and_slots_still_work() {
        let mut paths = Vec::new();
        for persona in 0..5 {
            for scen in 0..7 {
                let mut v = vec![1, 2, 100 + persona, 100 + persona];
                v.extend((0..(3 + scen % 3)).map(|k| 1000 + scen * 10 + k));
                paths.push(path(&v));
            }
        }
        for (slots, batch) in [(3, 3), (3, 1), (4, 2), (8, 16), (16, 1000)] {
            let plan = check(&paths, true, slots, batch);
            assert!(plan.tokens_evaluated() < paths.iter().map(|p| p.tokens.len()).sum::<usize>());
            check(&paths, false, slots, batch);
        }
    }

    #[test]
    fn too_few_slots_is_an_error_not_a_hang() {
        let paths = vec![path(&[1, 2]), path(&[1, 3]), path(&[4, 5])];
        // One slot cannot hold a parent while its first child runs.
        let plan = Plan::build(&[path(&[1, 2]), path(&[1, 3])], true);
        assert!(schedule(&plan, 1, 8, false).is_err());
    }
}
