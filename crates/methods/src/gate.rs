//! The gate of Cultural MoErges (specs/palette.md): how much each continent expert adapter
//! contributes to the meta agent, from the similarity between the prompt's hidden
//! representation and each continent name's representation.
//!
//! weights = softmax(cos(h_prompt, h_continent_i) / temperature)

use crate::MethodError;

/// Default gate temperature: cosine similarities of hidden states lie close together, so a
/// temperature well below 1 is needed for the gate to prefer one continent noticeably.
pub const DEFAULT_GATE_TEMPERATURE: f64 = 0.05;

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f64, MethodError> {
    if a.len() != b.len() || a.is_empty() {
        return Err(MethodError::Config(format!(
            "gate: hidden states of different sizes ({} and {})",
            a.len(),
            b.len()
        )));
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return Ok(0.0);
    }
    Ok(dot / (na.sqrt() * nb.sqrt()))
}

/// Gate weights over the experts: softmax of the cosine similarities divided by
/// `temperature`. They are positive and sum to 1.
pub fn gate_weights(
    prompt: &[f32],
    experts: &[Vec<f32>],
    temperature: f64,
) -> Result<Vec<f64>, MethodError> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(MethodError::Config(format!(
            "gate temperature must be a positive number, not {temperature}"
        )));
    }
    if experts.is_empty() {
        return Err(MethodError::Config("gate: no experts".into()));
    }
    let sims = experts
        .iter()
        .map(|e| cosine(prompt, e))
        .collect::<Result<Vec<_>, _>>()?;
    let max = sims.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = sims
        .iter()
        .map(|s| ((s - max) / temperature).exp())
        .collect();
    let z: f64 = exps.iter().sum();
    Ok(exps.into_iter().map(|e| e / z).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0]).unwrap()).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[-3.0, 0.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]).unwrap(), 0.0);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn gate_prefers_the_most_similar_expert_and_sharpens_with_low_temperature() {
        let prompt = [1.0f32, 0.2, 0.0];
        let experts = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let w = gate_weights(&prompt, &experts, 1.0).unwrap();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w[0] > w[1] && w[1] > w[2], "{w:?}");
        let sharp = gate_weights(&prompt, &experts, 0.01).unwrap();
        assert!(sharp[0] > 0.999, "{sharp:?}");
        // Softmax by hand at temperature 1: cos = (0.9806, 0.1961, 0).
        let c0 = 1.0 / (1.04f64).sqrt();
        let c1 = 0.2 / (1.04f64).sqrt();
        let z = c0.exp() + c1.exp() + 1.0;
        assert!(
            (w[0] - c0.exp() / z).abs() < 1e-9 && (w[2] - 1.0 / z).abs() < 1e-9,
            "{w:?}"
        );
        assert!(gate_weights(&prompt, &experts, 0.0).is_err());
        assert!(gate_weights(&prompt, &[], 1.0).is_err());
    }
}
