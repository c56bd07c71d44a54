//! Token selection from a logit row: greedy, or temperature + top-p with a seeded RNG.
//! Pure code, shared by every backend that exposes full logits.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

/// Index of the largest logit (first on ties).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// Samples an index from `softmax(logits / temperature)` restricted to the smallest set of most
/// likely tokens whose mass reaches `top_p`. `temperature <= 0` means greedy.
pub fn sample_top_p(logits: &[f32], temperature: f64, top_p: f64, rng: &mut ChaCha20Rng) -> usize {
    if temperature <= 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &z)| (i, ((z as f64 - max) / temperature).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    // Sort by probability (descending), index ascending on ties, so the order is deterministic.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top_p = top_p.clamp(0.0, 1.0);
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        kept += 1;
        mass += p.1 / total;
        if mass >= top_p {
            break;
        }
    }
    let probs = &probs[..kept.max(1)];
    let kept_total: f64 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.gen::<f64>() * kept_total;
    for p in probs {
        if u < p.1 {
            return p.0;
        }
        u -= p.1;
    }
    probs[probs.len() - 1].0
}

/// Log-softmax normaliser of a logit row in f64: `log Σ exp(z)`.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return max;
    }
    let s: f64 = logits.iter().map(|&z| (z as f64 - max).exp()).sum();
    max + s.ln()
}

/// The `k` largest entries of a row, best first (index ascending on ties).
pub fn top_k(logits: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(logits.len());
    if k == 0 {
        return vec![];
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let cmp = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    idx.select_nth_unstable_by(k - 1, cmp);
    idx.truncate(k);
    idx.sort_by(cmp);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn greedy_and_top_k() {
        let z = [0.1f32, 3.0, -1.0, 3.0, 2.0];
        assert_eq!(argmax(&z), 1);
        assert_eq!(top_k(&z, 3), vec![1, 3, 4]);
        assert_eq!(top_k(&z, 0), Vec::<usize>::new());
    }

    #[test]
    fn log_sum_exp_matches_direct() {
        let z = [1.0f32, 2.0, 3.0];
        let direct = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((log_sum_exp(&z) - direct).abs() < 1e-12);
    }

    #[test]
    fn seeded_sampling_is_deterministic_and_respects_top_p() {
        let z = [5.0f32, 4.0, 0.0, -3.0];
        let draw = |seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample_top_p(&z, 1.0, 0.9, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        // top_p = 0.9 keeps only the two most likely tokens (mass 0.73 + 0.27 > 0.9).
        assert!(draw(7).iter().all(|&i| i < 2));
        assert!(draw(7).contains(&1));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(sample_top_p(&z, 0.0, 1.0, &mut rng), 0);
    }
}
