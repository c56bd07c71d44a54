//! Prefix-sharing evaluation plans, independent of any engine.
//!
//! A batch of token paths (prompt, or prompt + continuation) is turned into a compressed prefix
//! tree: every shared prefix becomes one *segment* that is evaluated once, and each branch
//! continues from a copy of its parent's KV cache. Prefixes are cut only at multiples of a block
//! size, so that the engine computes every token exactly as it would without sharing (see
//! [`Plan::build`]). [`schedule`] then orders segments into *waves* over a fixed number of KV
//! sequence slots. The executor (e.g. the llama.cpp backend) only has to run the waves.

use crate::types::TokenId;
use std::collections::BTreeMap;

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
    /// Segments whose KV is copied from a sequence held outside the plan (a cache of earlier
    /// calls, see [`Plan::build_with_cache`]) instead of being decoded: `loaded[s] =
    /// Some(seq)`. Empty when nothing is loaded.
    pub loaded: Vec<Option<usize>>,
}

impl Plan {
    /// Builds the plan. `share = None` makes every path its own root (the uncached reference,
    /// also the benchmarks' naive baseline). `share = Some(block)` shares prefixes, cut only at
    /// multiples of `block` tokens, and gives every path a leaf of at least `block` tokens (or
    /// the whole path when it is shorter): CPU matrix kernels treat rows in groups and switch
    /// to other code for very small batches, so these rules make every token pass through the
    /// same kernels as in the uncached reference, and the results are bit-identical.
    /// Paths must be non-empty.
    pub fn build(paths: &[PathSpec], share: Option<usize>) -> Plan {
        let mut segments: Vec<Segment> = Vec::new();
        let mut roots = Vec::new();
        let mut path_leaf = vec![usize::MAX; paths.len()];
        let new_seg = |segments: &mut Vec<Segment>,
                       parent: Option<SegId>,
                       start: usize,
                       tokens: &[TokenId]| {
            segments.push(Segment {
                parent,
                children: vec![],
                start,
                tokens: tokens.to_vec(),
                reads: BTreeMap::new(),
            });
            segments.len() - 1
        };
        match share {
            None => {
                for (i, p) in paths.iter().enumerate() {
                    let s = new_seg(&mut segments, None, 0, &p.tokens);
                    roots.push(s);
                    path_leaf[i] = s;
                }
            }
            Some(block) => {
                let block = block.max(1);
                // Start of a path's last block-unit: a short final piece is fused with the block
                // before it, so every leaf has at least `block` tokens.
                let last_unit = |len: usize| {
                    if len >= block {
                        (len - block) / block * block
                    } else {
                        0
                    }
                };
                let mut order: Vec<usize> = (0..paths.len()).collect();
                order.sort_by(|&a, &b| paths[a].tokens.cmp(&paths[b].tokens));
                // Chain of segments from the root to the previous path's leaf, and the paths
                // ending in each segment (they move when a segment is split).
                let mut stack: Vec<SegId> = Vec::new();
                let mut ending: Vec<Vec<usize>> = Vec::new();
                let mut prev: Option<usize> = None;
                for &pi in &order {
                    let cur = &paths[pi].tokens[..];
                    if let Some(q) = prev.filter(|&q| paths[q].tokens == cur) {
                        let leaf = path_leaf[q];
                        path_leaf[pi] = leaf;
                        ending[leaf].push(pi);
                        continue;
                    }
                    let shared = prev.map_or(0, |q| {
                        let p = &paths[q].tokens;
                        let lcp = p.iter().zip(cur).take_while(|(a, b)| a == b).count();
                        (lcp / block * block)
                            .min(last_unit(p.len()))
                            .min(last_unit(cur.len()))
                    });
                    while let Some(&top) = stack.last() {
                        if segments[top].start >= shared {
                            stack.pop();
                        } else {
                            break;
                        }
                    }
                    if let Some(&top) = stack.last() {
                        let end = segments[top].start + segments[top].tokens.len();
                        if shared < end {
                            // Split `top` at `shared`: the tail keeps its children and the paths
                            // that ended in it.
                            let cut = shared - segments[top].start;
                            let tail_tokens = segments[top].tokens.split_off(cut);
                            let tail = new_seg(&mut segments, Some(top), shared, &tail_tokens);
                            let moved = std::mem::take(&mut ending[top]);
                            ending.push(moved);
                            for &p in &ending[tail] {
                                path_leaf[p] = tail;
                            }
                            let old_children = std::mem::take(&mut segments[top].children);
                            for &c in &old_children {
                                segments[c].parent = Some(tail);
                            }
                            segments[tail].children = old_children;
                            segments[top].children.push(tail);
                        }
                    }
                    let parent = stack.last().copied();
                    let s = new_seg(&mut segments, parent, shared, &cur[shared..]);
                    ending.push(vec![pi]);
                    match parent {
                        Some(p) => segments[p].children.push(s),
                        None => roots.push(s),
                    }
                    stack.push(s);
                    path_leaf[pi] = s;
                    prev = Some(pi);
                }
            }
        }
        let mut plan = Plan {
            segments,
            roots,
            reads: vec![],
            path_reads: vec![],
            path_leaf,
            loaded: vec![],
        };
        plan.assign_reads(paths);
        plan
    }

    /// [`Plan::build`] with prefix sharing (cut on the grid of `block`) next to sequences that
    /// are already evaluated elsewhere: `cached` lists (sequence, its tokens). The cached token
    /// lists join the tree as paths without reads, so every point where a path leaves a cached
    /// sequence is a branch point on the grid; segments on a cached sequence's path that hold
    /// no read and whose parent is loaded too are *loaded* from that sequence (its KV up to
    /// the segment's end) instead of decoded, and segments only the cached lists need are left
    /// out. Loaded KV equals decoded KV for the same reason shared prefixes do (every cut on
    /// the grid). The returned plan is over `paths` alone.
    pub fn build_with_cache(
        paths: &[PathSpec],
        cached: &[(usize, &[TokenId])],
        block: usize,
    ) -> Plan {
        let n = paths.len();
        let mut all = paths.to_vec();
        // A sentinel ends each cached list, so that a path equal to one still branches from it
        // (at its last unit) instead of merging with it.
        all.extend(
            cached
                .iter()
                .filter(|(_, t)| !t.is_empty())
                .map(|(_, t)| PathSpec {
                    tokens: t.iter().copied().chain([TokenId(i32::MIN)]).collect(),
                    queries: vec![],
                }),
        );
        let cached: Vec<usize> = cached
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(seq, _)| *seq)
            .collect();
        let full = Plan::build(&all, Some(block));
        let m = full.segments.len();
        let chain = |leaf: SegId| std::iter::successors(Some(leaf), |&x| full.segments[x].parent);
        let mut needed = vec![false; m];
        for &leaf in &full.path_leaf[..n] {
            for x in chain(leaf) {
                needed[x] = true;
            }
        }
        let mut source: Vec<Option<usize>> = vec![None; m];
        for (j, &seq) in cached.iter().enumerate() {
            for x in chain(full.path_leaf[n + j]) {
                source[x].get_or_insert(seq);
            }
        }
        // New ids for the needed segments, in tree order (parents before children).
        let mut id = vec![usize::MAX; m];
        let mut order = Vec::new();
        let mut stack: Vec<SegId> = full.roots.iter().rev().copied().collect();
        while let Some(x) = stack.pop() {
            if !needed[x] {
                continue;
            }
            id[x] = order.len();
            order.push(x);
            stack.extend(full.segments[x].children.iter().rev());
        }
        let mut loaded = vec![None; order.len()];
        let mut segments = Vec::with_capacity(order.len());
        let mut roots = Vec::new();
        for &x in &order {
            let seg = &full.segments[x];
            let parent_loaded = seg.parent.is_none_or(|p| loaded[id[p]].is_some());
            if parent_loaded && seg.reads.is_empty() {
                loaded[id[x]] = source[x];
            }
            let parent = seg.parent.map(|p| id[p]);
            if parent.is_none() {
                roots.push(id[x]);
            }
            segments.push(Segment {
                parent,
                children: seg
                    .children
                    .iter()
                    .filter(|c| needed[**c])
                    .map(|c| id[*c])
                    .collect(),
                start: seg.start,
                tokens: seg.tokens.clone(),
                reads: seg.reads.clone(),
            });
        }
        Plan {
            segments,
            roots,
            reads: full.reads,
            path_reads: full.path_reads[..n].to_vec(),
            path_leaf: full.path_leaf[..n].iter().map(|&l| id[l]).collect(),
            loaded,
        }
    }

    /// The sequence a segment is loaded from, if it is (see [`Plan::build_with_cache`]).
    pub fn loaded_from(&self, s: SegId) -> Option<usize> {
        self.loaded.get(s).copied().flatten()
    }

    /// Tokens loaded instead of decoded.
    pub fn tokens_loaded(&self) -> usize {
        (0..self.segments.len())
            .filter(|&s| self.loaded_from(s).is_some())
            .map(|s| self.segments[s].tokens.len())
            .sum()
    }

    /// The tokens of the path from the root to the end of segment `s`.
    pub fn path_tokens(&self, s: SegId) -> Vec<TokenId> {
        let mut chain: Vec<SegId> =
            std::iter::successors(Some(s), |&x| self.segments[x].parent).collect();
        chain.reverse();
        chain
            .into_iter()
            .flat_map(|x| self.segments[x].tokens.iter().copied())
            .collect()
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
                        self.reads.push(Read {
                            tokens: q.tokens.clone(),
                            top_k: q.top_k,
                        });
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
        self.segments
            .iter()
            .map(|s| s.start + s.tokens.len())
            .max()
            .unwrap_or(0)
    }
}

/// Tokens a perfect prefix cache would evaluate for these paths: the size of their token trie.
pub fn unique_prefix_tokens(paths: &[&[TokenId]]) -> usize {
    unique_prefix_depths(paths).iter().sum()
}

/// Width, in token positions, of one bucket of [`unique_prefix_depths`].
pub const DEPTH_BUCKET: usize = 64;
/// Buckets of [`unique_prefix_depths`]; the last one holds every deeper position.
pub const DEPTH_BUCKETS: usize = 32;

/// The trie's tokens by position: bucket `b` counts the unique tokens at positions
/// `b·DEPTH_BUCKET .. (b+1)·DEPTH_BUCKET` (the engine's cost per token grows with position).
pub fn unique_prefix_depths(paths: &[&[TokenId]]) -> [usize; DEPTH_BUCKETS] {
    let mut sorted: Vec<&[TokenId]> = paths.to_vec();
    sorted.sort();
    let mut prev: &[TokenId] = &[];
    let mut out = [0; DEPTH_BUCKETS];
    for p in sorted {
        let lcp = prev.iter().zip(p).take_while(|(a, b)| a == b).count();
        for pos in lcp..p.len() {
            out[(pos / DEPTH_BUCKET).min(DEPTH_BUCKETS - 1)] += 1;
        }
        prev = p;
    }
    out
}

/// A KV-cache operation run before a wave's decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// Make `dst` a copy of `src` (dst is empty beforehand).
    Copy { src: usize, dst: usize },
}

/// One segment decoded in a wave, in KV sequence `slot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub seg: SegId,
    pub slot: usize,
}

/// One step: KV ops first, then the segments (each decoded whole), then slots to clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wave {
    pub ops: Vec<KvOp>,
    pub chunks: Vec<Chunk>,
    pub release: Vec<usize>,
}

/// Slot of each segment that stays in the cache at the end (only with `keep_leaves`).
pub type LeafSlots = Vec<(SegId, usize)>;

/// Orders the plan into waves over `n_slots` KV sequences. Deeper segments go first so
/// finished branches free their slots early. With `keep_leaves`, leaf segments keep their
/// slots at the end (for generation); there must be at most `n_slots` leaves then.
pub fn schedule(
    plan: &Plan,
    n_slots: usize,
    keep_leaves: bool,
) -> Result<(Vec<Wave>, LeafSlots), String> {
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
    let mut unlaunched: Vec<usize> = plan.segments.iter().map(|s| s.children.len()).collect();
    let mut free: Vec<usize> = (0..n_slots).rev().collect();
    let mut ready: Vec<SegId> = plan.roots.clone();
    let mut waves = Vec::new();
    let mut finished = 0usize;
    let mut leaves: LeafSlots = Vec::new();
    while finished < n {
        let mut wave = Wave::default();
        // Launch ready segments, deepest first, then in tree order.
        ready.sort_by_key(|&s| (std::cmp::Reverse(depth[s]), rank[s]));
        let mut still_ready = Vec::new();
        for &s in &ready {
            let parent = plan.segments[s].parent;
            let slot = match parent {
                Some(p) if unlaunched[p] == 1 => {
                    // Last child takes over the parent's sequence.
                    slot_of[p].take()
                }
                Some(p) if free.len() > height[s] => free.pop().map(|dst| {
                    wave.ops.push(KvOp::Copy {
                        src: slot_of[p].expect("parent holds a slot"),
                        dst,
                    });
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
            wave.chunks.push(Chunk { seg: s, slot });
        }
        ready = still_ready;
        if wave.chunks.is_empty() {
            return Err(format!(
                "prefix tree needs more than {n_slots} parallel sequences (raise the sequence count)"
            ));
        }
        for c in &wave.chunks {
            finished += 1;
            let s = c.seg;
            if plan.segments[s].children.is_empty() {
                if keep_leaves {
                    leaves.push((s, c.slot));
                } else {
                    slot_of[s] = None;
                    wave.release.push(c.slot);
                    free.push(c.slot);
                }
            } else {
                ready.extend(plan.segments[s].children.iter().copied());
            }
        }
        waves.push(wave);
    }
    Ok((waves, leaves))
}

/// Where a sequence's KV comes from before a [`TagGroup`] is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing: the sequence starts empty.
    Empty,
    /// The holder sequence's KV up to this position (segments decoded by earlier groups).
    Holder(usize),
    /// A sequence outside the plan (the prefix cache) up to this position.
    Loaded { seq: usize, end: usize },
}

/// One decode of the tagged schedule ([`tagged_groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagGroup {
    /// Each leaf slot's KV before the decode. Set before [`TagGroup::holder`], since a leaf may
    /// copy from the holder's old content.
    pub setup: Vec<(usize, Source)>,
    /// The holder's KV before the decode: the part of its old path later groups still need.
    pub holder: Source,
    /// Segments to decode, parents before children, each with every sequence its tokens join:
    /// the slots of the leaves below it, and the holder when a later group needs it.
    pub segs: Vec<(SegId, Vec<usize>)>,
    /// Leaves and their slots; emptied after the decode.
    pub leaves: Vec<(SegId, usize)>,
}

/// Orders the plan for one KV cache shared by all sequences (llama.cpp's unified cache), where
/// a token can belong to several sequences at once: instead of decoding a parent, copying its
/// sequence and decoding the children in later waves, every segment's tokens are tagged with
/// the sequences of all leaves below it, so a whole subtree is one decode (cut only at the
/// batch size) and nothing is copied. Leaves go in tree order in groups of `n_slots - 1`, each
/// leaf in its own slot; slot `n_slots - 1` (the returned holder) keeps the path that later
/// groups share with this one, so no segment is decoded twice. Returns the groups and the
/// holder's slot.
pub fn tagged_groups(plan: &Plan, n_slots: usize) -> Result<(Vec<TagGroup>, usize), String> {
    if n_slots < 2 {
        return Err(format!(
            "tagged decoding needs at least 2 parallel sequences, got {n_slots}"
        ));
    }
    let holder = n_slots - 1;
    let n = plan.segments.len();
    let mut order: Vec<SegId> = Vec::with_capacity(n);
    let mut stack: Vec<SegId> = plan.roots.iter().rev().copied().collect();
    while let Some(s) = stack.pop() {
        order.push(s);
        stack.extend(plan.segments[s].children.iter().rev());
    }
    let mut rank = vec![0usize; n];
    for (i, &s) in order.iter().enumerate() {
        rank[s] = i;
    }
    let leaves: Vec<SegId> = order
        .iter()
        .copied()
        .filter(|&s| plan.segments[s].children.is_empty())
        .collect();
    // Root-first chain of a segment.
    let chain = |s: SegId| {
        let mut c: Vec<SegId> =
            std::iter::successors(Some(s), |&x| plan.segments[x].parent).collect();
        c.reverse();
        c
    };
    let end = |s: SegId| plan.segments[s].start + plan.segments[s].tokens.len();
    // Loaded segments are available from the start; decoded ones once their group has run.
    let mut available: Vec<bool> = (0..n).map(|s| plan.loaded_from(s).is_some()).collect();
    // The source of a path's available prefix (available segments form a prefix of any path:
    // a loaded segment's parent is loaded, a decoded one's parent was decoded or loaded first).
    let source = |path: &[SegId], available: &[bool]| match path
        .iter()
        .take_while(|&&s| available[s])
        .last()
    {
        None => Source::Empty,
        Some(&a) => match plan.loaded_from(a) {
            Some(seq) => Source::Loaded { seq, end: end(a) },
            None => Source::Holder(end(a)),
        },
    };
    let per_group = n_slots - 1;
    let mut groups = Vec::with_capacity(leaves.len().div_ceil(per_group));
    for (gi, group) in leaves.chunks(per_group).enumerate() {
        let paths: Vec<Vec<SegId>> = group.iter().map(|&l| chain(l)).collect();
        let setup = paths
            .iter()
            .enumerate()
            .map(|(slot, p)| (slot, source(p, &available)))
            .collect();
        let mut tags: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (slot, p) in paths.iter().enumerate() {
            for &s in p.iter().filter(|&&s| !available[s]) {
                tags.entry(rank[s]).or_default().push(slot);
            }
        }
        // The next group's first path: what of it is available after this group stays in the
        // holder (the holder starts from its part available now).
        let next = leaves.get((gi + 1) * per_group).map(|&l| chain(l));
        let holder_src = match &next {
            None => Source::Empty,
            Some(p) => {
                for &s in p {
                    match tags.get_mut(&rank[s]) {
                        Some(t) => t.push(holder),
                        None if available[s] => {}
                        None => break,
                    }
                }
                source(p, &available)
            }
        };
        let segs: Vec<(SegId, Vec<usize>)> = tags.into_iter().map(|(r, t)| (order[r], t)).collect();
        for (s, _) in &segs {
            available[*s] = true;
        }
        groups.push(TagGroup {
            setup,
            holder: holder_src,
            segs,
            leaves: group.iter().copied().zip(0..).collect(),
        });
    }
    Ok((groups, holder))
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
        PathSpec {
            tokens,
            queries: vec![Query {
                at,
                tokens: vec![TokenId(0)],
                top_k: 1,
            }],
        }
    }

    /// Simulates the waves: each slot holds a token list; checks every segment continues exactly
    /// its own path and that every read is produced once with the right context.
    fn simulate(plan: &Plan, waves: &[Wave], n_slots: usize) -> Vec<Option<Vec<TokenId>>> {
        simulate_with(plan, waves, n_slots, &[])
    }

    /// [`simulate`] with cached sequences (index = the sequence number loads name).
    fn simulate_with(
        plan: &Plan,
        waves: &[Wave],
        n_slots: usize,
        cached: &[Vec<TokenId>],
    ) -> Vec<Option<Vec<TokenId>>> {
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
                if let Some(src) = plan.loaded_from(c.seg) {
                    // A load replaces the slot with the cached sequence, cut at the segment's end.
                    let end = seg.start + seg.tokens.len();
                    slots[c.slot] = cached[src][..end].to_vec();
                    assert!(seg.reads.is_empty(), "a loaded segment holds a read");
                    continue;
                }
                assert_eq!(
                    slots[c.slot].len(),
                    seg.start,
                    "segment continues at the wrong position"
                );
                for (off, tok) in seg.tokens.iter().enumerate() {
                    slots[c.slot].push(*tok);
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

    /// Each query's read saw exactly its path's tokens up to the query (`ctx`: the tokens
    /// each read's sequence held, from a simulation).
    fn assert_reads_see_their_paths(
        paths: &[PathSpec],
        plan: &Plan,
        ctx: &[Option<Vec<TokenId>>],
        what: &str,
    ) {
        for (pi, p) in paths.iter().enumerate() {
            for (qi, q) in p.queries.iter().enumerate() {
                let r = plan.path_reads[pi][qi];
                assert_eq!(
                    ctx[r].as_deref(),
                    Some(&p.tokens[..=q.at]),
                    "path {pi} query {qi}{what}"
                );
            }
        }
    }

    fn check(paths: &[PathSpec], share: Option<usize>, n_slots: usize) -> Plan {
        let plan = Plan::build(paths, share);
        let (waves, _) = schedule(&plan, n_slots, false).unwrap();
        let ctx = simulate(&plan, &waves, n_slots);
        assert_reads_see_their_paths(paths, &plan, &ctx, "");
        if let Some(block) = share {
            for s in &plan.segments {
                let end = s.start + s.tokens.len();
                assert_eq!(s.start % block, 0, "segment starts off the block grid");
                if !s.children.is_empty() {
                    assert_eq!(end % block, 0, "branch point off the block grid");
                }
                assert!(
                    s.tokens.len() >= block || s.start == 0,
                    "segment shorter than a block: {s:?}"
                );
            }
        }
        plan
    }

    #[test]
    fn shared_prefixes_are_evaluated_once() {
        let paths = vec![
            path(&[1, 2, 3, 4]),
            path(&[1, 2, 3, 5]),
            path(&[1, 2, 6]),
            path(&[1, 2, 3, 4]),
            path(&[7, 8]),
        ];
        let plan = check(&paths, Some(1), 4);
        // [1,2] + [3] + [4] + [5] + [6] + [7,8]
        assert_eq!(plan.tokens_evaluated(), 8);
        assert_eq!(
            plan.path_reads[0], plan.path_reads[3],
            "duplicates share their read"
        );
        let naive = check(&paths, None, 4);
        assert_eq!(naive.tokens_evaluated(), 17);
    }

    #[test]
    fn branch_points_sit_on_the_block_grid() {
        // Two personas of 10 tokens, three scenarios of 7 tokens each, block 4.
        let mut paths = Vec::new();
        for persona in 0..2 {
            for scen in 0..3 {
                let mut v: Vec<i32> = (0..10).map(|k| 100 * (persona + 1) + k).collect();
                v.extend((0..7).map(|k| 1000 * (scen + 1) + k));
                paths.push(path(&v));
            }
        }
        let plan = check(&paths, Some(4), 8);
        // Each persona: [0,8) once, then three leaves [8,17) of 9 tokens.
        assert_eq!(plan.tokens_evaluated(), 2 * (8 + 3 * 9));
        // A path that is a prefix of another still gets a leaf of at least a block.
        let paths = vec![
            path(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            path(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        ];
        let plan = check(&paths, Some(4), 4);
        assert_eq!(plan.tokens_evaluated(), 4 + 5 + 7);
    }

    #[test]
    fn prefix_paths_and_mid_segment_queries() {
        let mut p = path(&[1, 2, 3, 4, 5]);
        p.queries.push(Query {
            at: 1,
            tokens: vec![TokenId(9)],
            top_k: 0,
        });
        let paths = vec![p, path(&[1, 2, 3]), path(&[1, 2, 3, 4, 6])];
        for block in [1, 2, 3, 16] {
            check(&paths, Some(block), 3);
        }
    }

    #[test]
    fn tight_slots_still_work() {
        let mut paths = Vec::new();
        for persona in 0..5 {
            for scen in 0..7 {
                let mut v = vec![1, 2, 100 + persona, 100 + persona];
                v.extend((0..(3 + scen % 3)).map(|k| 1000 + scen * 10 + k));
                paths.push(path(&v));
            }
        }
        for slots in [3, 4, 8, 16] {
            for block in [1, 2, 4] {
                let plan = check(&paths, Some(block), slots);
                assert!(
                    plan.tokens_evaluated() < paths.iter().map(|p| p.tokens.len()).sum::<usize>()
                );
            }
            check(&paths, None, slots);
        }
    }

    #[test]
    fn unique_prefix_tokens_is_the_trie_size() {
        let a = t(&[1, 2, 3]);
        let b = t(&[1, 2, 4, 5]);
        let c = t(&[1, 2, 3]);
        let d = t(&[7]);
        assert_eq!(unique_prefix_tokens(&[&a, &b, &c, &d]), 3 + 2 + 1);
        let long: Vec<TokenId> = t(&(0..DEPTH_BUCKET as i32 + 3).collect::<Vec<_>>());
        let fork: Vec<TokenId> = [&long[..DEPTH_BUCKET + 1], &t(&[-1])[..]].concat();
        let depths = unique_prefix_depths(&[&long, &fork, &d]);
        // long: 64 in band 0 and 3 in band 1; fork adds its last token (band 1); d one token.
        assert_eq!(depths[0], DEPTH_BUCKET + 1);
        assert_eq!(depths[1], 4);
        assert_eq!(
            depths.iter().sum::<usize>(),
            unique_prefix_tokens(&[&long, &fork, &d])
        );
    }

    #[test]
    fn cached_sequences_are_loaded_not_decoded() {
        let block = 4;
        // Two personas of 10 tokens and scenarios of 7; the cache holds persona 1 with scenario
        // 1 (an earlier request) and an unrelated sequence.
        let seq = |persona: i32, scen: i32| {
            let mut v: Vec<i32> = (0..10).map(|k| 100 * persona + k).collect();
            v.extend((0..7).map(|k| 1000 * scen + k));
            v
        };
        let cached = vec![t(&seq(1, 1)), t(&[5; 12])];
        let listed: Vec<(usize, &[TokenId])> = cached
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.as_slice()))
            .collect();
        let paths: Vec<PathSpec> = [(1, 2), (1, 3), (2, 2)]
            .iter()
            .map(|&(p, s)| path(&seq(p, s)))
            .collect();
        let plan = Plan::build_with_cache(&paths, &listed, block);
        let (waves, _) = schedule(&plan, 4, false).unwrap();
        let ctx = simulate_with(&plan, &waves, 4, &cached);
        for (pi, p) in paths.iter().enumerate() {
            let r = plan.path_reads[pi][0];
            assert_eq!(ctx[r].as_deref(), Some(&p.tokens[..]), "path {pi}");
        }
        // Persona 1's first 8 tokens (the grid below the 10 shared) come from the cache; the
        // rest is what a plan without cache decodes, less those 8.
        assert_eq!(plan.tokens_loaded(), 8);
        let plain = Plan::build(&paths, Some(block));
        assert_eq!(plan.tokens_evaluated() - 8, plain.tokens_evaluated() - 8);
        assert_eq!(plan.segments.len(), plain.segments.len());
        // The same request again: everything up to each path's last block is loaded.
        let again: Vec<(usize, &[TokenId])> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.tokens.as_slice()))
            .collect();
        let plan = Plan::build_with_cache(&paths, &again, block);
        let known: Vec<Vec<TokenId>> = paths.iter().map(|p| p.tokens.clone()).collect();
        let (waves, _) = schedule(&plan, 4, false).unwrap();
        let ctx = simulate_with(&plan, &waves, 4, &known);
        for (pi, p) in paths.iter().enumerate() {
            assert_eq!(ctx[plan.path_reads[pi][0]].as_deref(), Some(&p.tokens[..]));
        }
        let decoded = plan.tokens_evaluated() - plan.tokens_loaded();
        // Each path decodes only its last unit (17 tokens: 12 on the grid + a leaf of 5 fused
        // into one block of ≥ 4 → 9 or fewer), never a read inside a loaded segment.
        assert!(decoded <= 3 * 9, "{decoded} tokens decoded");
    }

    /// Runs the tagged schedule on token lists (a sequence = its tokens in position order) and
    /// returns each read's context. Checks what llama.cpp checks of a batch whose tokens belong
    /// to several sequences (they hold the same positions beforehand, positions continue each
    /// sequence), that every segment is decoded exactly once and that loads come from cache.
    fn simulate_tagged(
        plan: &Plan,
        n_slots: usize,
        cached: &[Vec<TokenId>],
    ) -> Vec<Option<Vec<TokenId>>> {
        let (groups, holder) = tagged_groups(plan, n_slots).unwrap();
        let mut seqs: Vec<Vec<TokenId>> = vec![vec![]; n_slots];
        let mut read_ctx: Vec<Option<Vec<TokenId>>> = vec![None; plan.reads.len()];
        let mut decoded = vec![0usize; plan.segments.len()];
        let set = |seqs: &mut Vec<Vec<TokenId>>, seq: usize, src: Source| {
            seqs[seq] = match src {
                Source::Empty => vec![],
                Source::Holder(end) => {
                    assert!(seqs[holder].len() >= end, "the holder lacks [0, {end})");
                    seqs[holder][..end].to_vec()
                }
                Source::Loaded { seq: c, end } => cached[c][..end].to_vec(),
            };
        };
        for g in &groups {
            for &(slot, src) in &g.setup {
                assert_ne!(slot, holder);
                assert!(seqs[slot].is_empty(), "leaf slot {slot} not empty");
                set(&mut seqs, slot, src);
            }
            set(&mut seqs, holder, g.holder);
            for (s, tags) in &g.segs {
                let seg = &plan.segments[*s];
                decoded[*s] += 1;
                assert!(plan.loaded_from(*s).is_none(), "a loaded segment decoded");
                for &t in tags {
                    assert_eq!(seqs[t].len(), seg.start, "segment {s} in seq {t}");
                    assert_eq!(seqs[t], seqs[tags[0]], "coupled sequences diverged");
                }
                for (off, tok) in seg.tokens.iter().enumerate() {
                    for &t in tags {
                        seqs[t].push(*tok);
                    }
                    if let Some(&r) = seg.reads.get(&off) {
                        assert!(read_ctx[r].is_none(), "read produced twice");
                        read_ctx[r] = Some(seqs[tags[0]].clone());
                    }
                }
            }
            for &(leaf, slot) in &g.leaves {
                assert_eq!(
                    seqs[slot],
                    plan.path_tokens(leaf),
                    "leaf {leaf} in slot {slot}"
                );
                seqs[slot].clear();
            }
        }
        for (s, &d) in decoded.iter().enumerate() {
            let want = usize::from(plan.loaded_from(s).is_none());
            assert_eq!(d, want, "segment {s} decoded {d} times");
        }
        read_ctx
    }

    fn check_tagged(paths: &[PathSpec], plan: &Plan, n_slots: usize, cached: &[Vec<TokenId>]) {
        let ctx = simulate_tagged(plan, n_slots, cached);
        assert_reads_see_their_paths(paths, plan, &ctx, &format!(" with {n_slots} slots"));
    }

    #[test]
    fn tagged_groups_decode_each_segment_once_in_any_number_of_slots() {
        // Personas × scenarios × two label orders, as DISCA asks, plus prefix paths.
        let mut paths = Vec::new();
        for persona in 0..5 {
            for scen in 0..7 {
                for order in 0..2 {
                    let mut v = vec![1, 2, 100 + persona, 100 + persona];
                    v.extend((0..(3 + scen % 3)).map(|k| 1000 + scen * 10 + k));
                    v.extend([5000 + order, 6000]);
                    paths.push(path(&v));
                }
            }
        }
        let mut p = path(&[1, 2, 3, 4, 5]);
        p.queries.push(Query {
            at: 1,
            tokens: vec![TokenId(9)],
            top_k: 0,
        });
        paths.extend([p, path(&[1, 2, 3]), path(&[7, 8])]);
        for share in [Some(1), Some(2), Some(4), None] {
            let plan = Plan::build(&paths, share);
            for slots in [2, 3, 4, 8, 16, 200] {
                check_tagged(&paths, &plan, slots, &[]);
            }
        }
        // One group when the leaves fit: a DISCA question's ten prompts in 16 sequences.
        let plan = Plan::build(&paths[..10], Some(1));
        let (groups, holder) = tagged_groups(&plan, 16).unwrap();
        assert_eq!((groups.len(), holder), (1, 15));
        assert_eq!(groups[0].holder, Source::Empty);
        assert!(tagged_groups(&plan, 1).is_err());
    }

    #[test]
    fn tagged_groups_load_from_the_cache() {
        let seq = |persona: i32, scen: i32| {
            let mut v: Vec<i32> = (0..10).map(|k| 100 * persona + k).collect();
            v.extend((0..7).map(|k| 1000 * scen + k));
            v
        };
        let cached = vec![t(&seq(1, 1)), t(&[5; 12]), t(&seq(2, 9))];
        let listed: Vec<(usize, &[TokenId])> = cached
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.as_slice()))
            .collect();
        let paths: Vec<PathSpec> = [(1, 2), (1, 3), (2, 2), (2, 3), (3, 1), (1, 1)]
            .iter()
            .map(|&(p, s)| path(&seq(p, s)))
            .collect();
        for block in [1, 4] {
            let plan = Plan::build_with_cache(&paths, &listed, block);
            assert!(plan.tokens_loaded() > 0);
            for slots in [2, 3, 4, 16] {
                check_tagged(&paths, &plan, slots, &cached);
            }
        }
    }

    #[test]
    fn too_few_slots_is_an_error_not_a_hang() {
        // One slot cannot hold a parent while its first child runs.
        let plan = Plan::build(&[path(&[1, 2]), path(&[1, 3])], Some(1));
        assert!(schedule(&plan, 1, false).is_err());
    }
}
