//! The DISCA estimator (specs/disca.md §4), as pure math on the model's decision gaps.
//!
//! Per scenario the model is asked by a base agent and N persona agents, each with the original
//! option labels and with the labels swapped; each answer gives a raw gap z_B − z_A. From them:
//!
//! 1. divide by the category temperature T_cat (§4.2) and debias: δ = (δ^orig − δ^swap)/2 (§4.3);
//! 2. consensus δ̄ = mean persona gap, proposal width σ = max(sample std, σ0) (§4.4);
//! 3. per pass, K perturbations ε_k ~ N(0, σ²) of δ̄ are weighted by a prospect-theory utility
//!    of how much closer each moves every persona (and the consensus) than the base agent was:
//!    w = softmax(U/η), δ*_pass = Σ w_k ε_k unless the effective sample size is below ρ (§4.5);
//! 4. two passes are combined with the reliability gate r = exp(−(δ*₁−δ*₂)²/s) (§4.6);
//! 5. δ_micro = α·δ̄ + (1−α)·δ_base + r·mean(δ*), α = clamp(min ESS, ρ, 1) (§4.7, as the code);
//! 6. optionally the per-country prior (§4.8, [`CountryPrior`]) — a recursion over the stream of
//!    δ_micro, kept separate so "with" and "without prior" come from the same answers;
//! 7. p_right = σ(δ_final / T_dec) (§4.9).
//!
//! Every constant of §4.11 is a field of [`DiscaConfig`]. The random draws cannot match the
//! authors' torch stream (§8 row 5): we use ChaCha20 seeded per scenario and Box–Muller normals.

use crate::moral::MoralDimension;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiscaError {
    #[error("DISCA: {0}")]
    Invalid(String),
}

/// What the estimator does (the full method and the ablations of the paper's Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DiscaMode {
    /// Everything of §4.2–§4.7.
    #[default]
    Full,
    /// No importance sampling: δ_micro = δ̄ (the persona consensus).
    ConsensusOnly,
    /// Importance sampling without the reliability gate (r ≡ 1).
    AlwaysOnIs,
    /// No personas, as the authors' ablation runs it: the panel is replaced by one agent whose
    /// gap is the debiased base gap, and everything else (importance sampling, gate, blend,
    /// prior) runs as in `Full` — so δ̄ = δ_base, σ = σ0 and δ_micro = δ_base + δ*.
    NoPersona,
}

/// The per-country prior of the released code (§4.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorConfig {
    /// Scenarios before the prior gets any weight (N_warmup = 50).
    pub warmup: usize,
    /// Decay constant of the prior weight (τ = 100).
    pub tau: f64,
    /// EMA rate of the country state (β = 0.1).
    pub beta: f64,
    /// Scenarios the state sees before the walk starts: the released runner predicts the
    /// first three scenarios of a country for debug output before its main loop, and those
    /// calls update the prior, so the main loop starts at k = 3 with a state that has already
    /// absorbed scenarios 0–2 (specs/disca.md §4.8). 3 reproduces that; 0 starts fresh.
    #[serde(default)]
    pub warm_start: usize,
}

impl PriorConfig {
    /// The released code's prior: N_warmup 50, τ 100, β 0.1, warm start 3.
    pub fn reference() -> Self {
        Self {
            warmup: 50,
            tau: 100.0,
            beta: 0.1,
            warm_start: 3,
        }
    }
}

impl Default for PriorConfig {
    fn default() -> Self {
        Self::reference()
    }
}

/// Every constant of the estimator (specs/disca.md §4.11), with the code's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscaConfig {
    pub mode: DiscaMode,
    /// IS samples per pass (K_half = 64).
    pub k_half: usize,
    /// Independent IS passes (2; more gives the N-pass gate V_r = 2·Var).
    pub passes: usize,
    /// Floor on the proposal width σ (σ0 = 0.3).
    pub sigma_floor: f64,
    /// Weight of the collective (consensus) term in the utility (λ = 0.7).
    pub lambda_coop: f64,
    /// Softmax temperature of the IS weights (η = 0.5).
    pub eta: f64,
    /// ESS-ratio guard: a pass with a lower ESS contributes δ* = 0 (ρ = 0.1); also the lower
    /// clamp of the anchor blend.
    pub ess_guard: f64,
    /// Prospect-theory curvature for gains (α = 0.88).
    pub pt_alpha: f64,
    /// Prospect-theory curvature for losses (β = 0.88).
    pub pt_beta: f64,
    /// Loss aversion (κ = 2.25).
    pub pt_kappa: f64,
    /// Bandwidth of the reliability gate (s = 0.04).
    pub reliability_scale: f64,
    /// ESS-adaptive anchor blend (on in the code; off gives δ_micro = δ̄ + δ*).
    pub anchor_blend: bool,
    /// Per-persona utility floor f (0 = off, the binary track's default).
    pub persona_floor: f64,
    /// Decision temperature T_dec on the final gap (0.5).
    pub decision_temperature: f64,
    /// T_cat per moral dimension, in `MoralDimension::ALL` order (4.0, 3.5, 1.5, 1.5, 1.5, 1.5).
    pub category_temperatures: [f64; 6],
    /// Average the two label orders (positional debiasing); off = original order only.
    pub debias: bool,
    /// The per-country prior, when it is part of the configuration's headline number.
    pub prior: Option<PriorConfig>,
}

impl DiscaConfig {
    /// The method as the paper describes it: no country prior (our default).
    pub fn paper() -> Self {
        Self {
            mode: DiscaMode::Full,
            k_half: 64,
            passes: 2,
            sigma_floor: 0.3,
            lambda_coop: 0.7,
            eta: 0.5,
            ess_guard: 0.1,
            pt_alpha: 0.88,
            pt_beta: 0.88,
            pt_kappa: 2.25,
            reliability_scale: 0.04,
            anchor_blend: true,
            persona_floor: 0.0,
            decision_temperature: 0.5,
            category_temperatures: [4.0, 3.5, 1.5, 1.5, 1.5, 1.5],
            debias: true,
            prior: None,
        }
    }

    /// Everything the authors' released code does, the country prior included.
    pub fn reference() -> Self {
        Self {
            prior: Some(PriorConfig::default()),
            ..Self::paper()
        }
    }

    /// T_cat of a dimension.
    pub fn category_temperature(&self, d: MoralDimension) -> f64 {
        let i = MoralDimension::ALL
            .iter()
            .position(|x| *x == d)
            .unwrap_or(0);
        self.category_temperatures[i]
    }

    fn validate(&self) -> Result<(), DiscaError> {
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let ok = self.k_half > 0
            && self.passes > 0
            && pos(self.eta)
            && pos(self.reliability_scale)
            && pos(self.decision_temperature)
            && self.sigma_floor.is_finite()
            && self.sigma_floor >= 0.0
            && (0.0..=1.0).contains(&self.lambda_coop)
            && (0.0..=1.0).contains(&self.ess_guard)
            && self.persona_floor >= 0.0
            && self.category_temperatures.iter().all(|t| pos(*t));
        if ok {
            Ok(())
        } else {
            Err(DiscaError::Invalid(format!(
                "invalid configuration {self:?}"
            )))
        }
    }
}

impl Default for DiscaConfig {
    fn default() -> Self {
        Self::paper()
    }
}

/// Raw decision gaps z_B − z_A (before T_cat) of the base agent and the personas, in the
/// original label order and, when the labels could be swapped, in the swapped order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelGaps {
    pub base_orig: f64,
    pub personas_orig: Vec<f64>,
    pub base_swap: Option<f64>,
    pub personas_swap: Option<Vec<f64>>,
}

/// Per-scenario diagnostics (the columns the authors log, §4.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscaDiagnostics {
    pub logit_temperature: f64,
    /// Debiased base gap δ_base.
    pub delta_base: f64,
    /// Consensus δ̄.
    pub delta_consensus: f64,
    /// Proposal width σ.
    pub sigma: f64,
    /// Positional bias b = (δ_base^orig + δ_base^swap)/2, when both orders were asked.
    pub positional_bias: Option<f64>,
    /// δ* of each pass.
    pub delta_star: Vec<f64>,
    /// ESS ratio of each pass.
    pub ess: Vec<f64>,
    /// V_r.
    pub reliability_var: f64,
    /// r.
    pub reliability_r: f64,
    /// α_ess of the anchor blend.
    pub anchor_alpha: f64,
}

/// Result of steps 1–6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroResult {
    pub delta_micro: f64,
    pub diagnostics: DiscaDiagnostics,
}

/// Prospect-theory value v(z) = z^α for gains, −κ(−z)^β for losses.
pub fn pt_value(z: f64, alpha: f64, beta: f64, kappa: f64) -> f64 {
    if z >= 0.0 {
        z.powf(alpha)
    } else {
        -kappa * (-z).powf(beta)
    }
}

/// The reliability gate r = exp(−V_r / s).
pub fn reliability(v_r: f64, scale: f64) -> f64 {
    (-v_r / scale).exp()
}

/// The anchor-blend weight as the code computes it: clamp(min ESS, guard, 1).
pub fn anchor_alpha(min_ess: f64, guard: f64) -> f64 {
    min_ess.clamp(guard, 1.0)
}

/// One importance-sampling pass (§4.5) with standard-normal draws `z`: returns (δ*, ESS ratio).
pub fn is_pass(
    cfg: &DiscaConfig,
    delta_base: f64,
    personas: &[f64],
    consensus: f64,
    sigma: f64,
    z: &[f64],
) -> (f64, f64) {
    let v = |x: f64| pt_value(x, cfg.pt_alpha, cfg.pt_beta, cfg.pt_kappa);
    let n = personas.len() as f64;
    let eps: Vec<f64> = z.iter().map(|z| sigma * z).collect();
    let utils: Vec<f64> = eps
        .iter()
        .map(|&e| {
            let moved = consensus + e;
            let individual = personas
                .iter()
                .map(|&d| {
                    let u = v(((delta_base - d).abs() - (moved - d).abs()) / sigma);
                    if cfg.persona_floor > 0.0 {
                        u.max(-cfg.persona_floor)
                    } else {
                        u
                    }
                })
                .sum::<f64>()
                / n;
            let collective = v(((delta_base - consensus).abs() - e.abs()) / sigma);
            (1.0 - cfg.lambda_coop) * individual + cfg.lambda_coop * collective
        })
        .collect();
    let max = utils
        .iter()
        .map(|u| u / cfg.eta)
        .fold(f64::NEG_INFINITY, f64::max);
    let ex: Vec<f64> = utils.iter().map(|u| (u / cfg.eta - max).exp()).collect();
    let total: f64 = ex.iter().sum();
    let w: Vec<f64> = ex.iter().map(|x| x / total).collect();
    let ess = 1.0 / (w.len() as f64 * w.iter().map(|x| x * x).sum::<f64>());
    let star = if ess >= cfg.ess_guard {
        w.iter().zip(&eps).map(|(w, e)| w * e).sum()
    } else {
        0.0
    };
    (star, ess)
}

fn check_finite(what: &str, xs: &[f64]) -> Result<(), DiscaError> {
    if xs.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(DiscaError::Invalid(format!("non-finite {what}: {xs:?}")))
    }
}

/// Steps 1–6 for one scenario with given standard-normal draws, one vector of `k_half` per
/// pass (tests pass fixed vectors; [`disca_micro`] draws them).
pub fn disca_micro_with_eps(
    cfg: &DiscaConfig,
    category: MoralDimension,
    gaps: &PanelGaps,
    eps: &[Vec<f64>],
) -> Result<MicroResult, DiscaError> {
    cfg.validate()?;
    let n = gaps.personas_orig.len();
    if n == 0 && cfg.mode != DiscaMode::NoPersona {
        return Err(DiscaError::Invalid("the persona panel is empty".into()));
    }
    check_finite("gap", &[gaps.base_orig])?;
    check_finite("persona gap", &gaps.personas_orig)?;
    let t = cfg.category_temperature(category);
    let swap = match (cfg.debias, gaps.base_swap, &gaps.personas_swap) {
        (true, Some(b), Some(p)) => {
            if p.len() != n {
                return Err(DiscaError::Invalid(format!(
                    "{} persona gaps in the original order but {} swapped",
                    n,
                    p.len()
                )));
            }
            check_finite("swapped gap", &[b])?;
            check_finite("swapped persona gap", p)?;
            Some((b, p))
        }
        (true, None, None) | (false, _, _) => None,
        _ => {
            return Err(DiscaError::Invalid(
                "the swapped order needs both the base and the persona gaps".into(),
            ))
        }
    };
    let (delta_base, personas, bias) = match swap {
        Some((bs, ps)) => (
            (gaps.base_orig / t - bs / t) / 2.0,
            gaps.personas_orig
                .iter()
                .zip(ps)
                .map(|(o, s)| (o / t - s / t) / 2.0)
                .collect::<Vec<f64>>(),
            Some((gaps.base_orig / t + bs / t) / 2.0),
        ),
        None => (
            gaps.base_orig / t,
            gaps.personas_orig.iter().map(|o| o / t).collect(),
            None,
        ),
    };
    // The authors' no-persona ablation: one agent that is a copy of the base agent.
    let personas = if cfg.mode == DiscaMode::NoPersona {
        vec![delta_base]
    } else {
        personas
    };
    let n = personas.len();
    let consensus = personas.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (personas
            .iter()
            .map(|d| (d - consensus).powi(2))
            .sum::<f64>()
            / (n - 1) as f64)
            .sqrt()
    } else {
        0.0
    };
    let sigma = sd.max(cfg.sigma_floor);
    let mut diag = DiscaDiagnostics {
        logit_temperature: t,
        delta_base,
        delta_consensus: consensus,
        sigma,
        positional_bias: bias,
        delta_star: vec![],
        ess: vec![],
        reliability_var: 0.0,
        reliability_r: 1.0,
        anchor_alpha: 1.0,
    };
    let micro = match cfg.mode {
        DiscaMode::ConsensusOnly => consensus,
        DiscaMode::Full | DiscaMode::AlwaysOnIs | DiscaMode::NoPersona => {
            if eps.len() != cfg.passes || eps.iter().any(|e| e.len() != cfg.k_half) {
                return Err(DiscaError::Invalid(format!(
                    "need {} draw vectors of {} values",
                    cfg.passes, cfg.k_half
                )));
            }
            if sigma <= 0.0 {
                return Err(DiscaError::Invalid(
                    "proposal width is zero (raise sigma_floor)".into(),
                ));
            }
            for z in eps {
                let (s, e) = is_pass(cfg, delta_base, &personas, consensus, sigma, z);
                diag.delta_star.push(s);
                diag.ess.push(e);
            }
            let c = combine_passes(cfg, delta_base, consensus, &diag.delta_star, &diag.ess);
            diag.reliability_var = c.reliability_var;
            diag.reliability_r = c.reliability_r;
            diag.anchor_alpha = c.anchor_alpha;
            c.delta_micro
        }
    };
    Ok(MicroResult {
        delta_micro: micro,
        diagnostics: diag,
    })
}

/// Steps 5–6 (§4.6–§4.7) from the passes' δ* and ESS ratios: the reliability gate over the
/// passes and the ESS-adaptive anchor blend of δ̄ and δ_base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    pub delta_micro: f64,
    /// V_r: (δ*₁ − δ*₂)² for two passes, 2·Var(δ*) (ddof 1) for more.
    pub reliability_var: f64,
    pub reliability_r: f64,
    /// α_ess (1 when the blend is off).
    pub anchor_alpha: f64,
}

/// Combines the importance-sampling passes (§4.6–§4.7): `δ_micro = α·δ̄ + (1 − α)·δ_base +
/// r·mean(δ*)` with `α = clamp(min ESS, ρ, 1)` (the released code's blend), or `δ̄ + r·mean(δ*)`
/// with the blend off; r ≡ 1 in [`DiscaMode::AlwaysOnIs`].
pub fn combine_passes(
    cfg: &DiscaConfig,
    delta_base: f64,
    consensus: f64,
    stars: &[f64],
    esses: &[f64],
) -> Combined {
    let m = stars.len() as f64;
    let mean_star = if stars.is_empty() {
        0.0
    } else {
        stars.iter().sum::<f64>() / m
    };
    let reliability_var = match stars.len() {
        2 => (stars[0] - stars[1]).powi(2),
        n if n > 2 => 2.0 * stars.iter().map(|s| (s - mean_star).powi(2)).sum::<f64>() / (m - 1.0),
        _ => 0.0,
    };
    let reliability_r = if cfg.mode == DiscaMode::AlwaysOnIs {
        1.0
    } else {
        reliability(reliability_var, cfg.reliability_scale)
    };
    let star = reliability_r * mean_star;
    let (anchor_alpha, delta_micro) = if cfg.anchor_blend {
        let a = anchor_alpha(
            esses.iter().cloned().fold(f64::INFINITY, f64::min),
            cfg.ess_guard,
        );
        (a, a * consensus + (1.0 - a) * delta_base + star)
    } else {
        (1.0, consensus + star)
    };
    Combined {
        delta_micro,
        reliability_var,
        reliability_r,
        anchor_alpha,
    }
}

/// Steps 1–6 drawing the normals from ChaCha20 seeded with `seed` (Box–Muller).
pub fn disca_micro(
    cfg: &DiscaConfig,
    category: MoralDimension,
    gaps: &PanelGaps,
    seed: u64,
) -> Result<MicroResult, DiscaError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let eps: Vec<Vec<f64>> = (0..cfg.passes)
        .map(|_| standard_normals(&mut rng, cfg.k_half))
        .collect();
    disca_micro_with_eps(cfg, category, gaps, &eps)
}

/// `n` standard-normal draws (Box–Muller on uniform (0, 1] pairs).
pub fn standard_normals(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.gen::<f64>();
        let u2: f64 = rng.gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = std::f64::consts::TAU * u2;
        out.push(r * th.cos());
        out.push(r * th.sin());
    }
    out.truncate(n);
    out
}

/// The per-country prior state (§4.8): reset per country, updated in scenario order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct CountryPrior {
    /// δ_country.
    pub delta: f64,
    /// Scenarios seen (k).
    pub k: usize,
}

/// One step of the prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriorStep {
    pub delta_final: f64,
    pub alpha_h: f64,
    /// δ_country before this step's update.
    pub delta_country: f64,
    /// k before this step's update.
    pub k: usize,
}

impl CountryPrior {
    pub fn new() -> Self {
        Self::default()
    }

    /// The prior over one country's stream of δ_micro, in stream order: the state first absorbs
    /// the first `cfg.warm_start` values (as the released runner's debug calls do), then every
    /// value is blended and absorbed in turn. One step per value.
    pub fn walk(cfg: &PriorConfig, micros: &[f64]) -> Vec<PriorStep> {
        let mut state = Self::new();
        for &m in micros.iter().take(cfg.warm_start) {
            state.apply(cfg, m);
        }
        micros.iter().map(|&m| state.apply(cfg, m)).collect()
    }

    /// Blends δ_micro with the state before the update, then updates the state.
    pub fn apply(&mut self, cfg: &PriorConfig, delta_micro: f64) -> PriorStep {
        let alpha_h = if self.k < cfg.warmup {
            0.0
        } else {
            1.0 - (-((self.k - cfg.warmup) as f64) / cfg.tau).exp()
        };
        let step = PriorStep {
            delta_final: alpha_h * self.delta + (1.0 - alpha_h) * delta_micro,
            alpha_h,
            delta_country: self.delta,
            k: self.k,
        };
        self.delta = (1.0 - cfg.beta) * self.delta + cfg.beta * delta_micro;
        self.k += 1;
        step
    }
}

/// Step 8: p_right = σ(δ_final / T_dec); the probability of sparing the preferred group is
/// p_right when it is on the right, else 1 − p_right.
pub fn p_spare_preferred(
    delta_final: f64,
    decision_temperature: f64,
    preferred_on_right: bool,
) -> f64 {
    let p_right = 1.0 / (1.0 + (-delta_final / decision_temperature).exp());
    if preferred_on_right {
        p_right
    } else {
        1.0 - p_right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    #[test]
    fn pt_value_gate_and_blend() {
        close(pt_value(1.0, 0.88, 0.88, 2.25), 1.0, 1e-15);
        close(pt_value(2.0, 0.88, 0.88, 2.25), 2f64.powf(0.88), 1e-15);
        close(
            pt_value(-2.0, 0.88, 0.88, 2.25),
            -2.25 * 2f64.powf(0.88),
            1e-15,
        );
        close(reliability(0.0, 0.04), 1.0, 0.0);
        close(reliability((0.1f64 - 0.1).powi(2), 0.04), 1.0, 0.0);
        close(reliability(0.04, 0.04), (-1f64).exp(), 1e-15);
        close(anchor_alpha(0.05, 0.1), 0.1, 0.0);
        close(anchor_alpha(0.25, 0.1), 0.25, 0.0);
        close(anchor_alpha(1.2, 0.1), 1.0, 0.0);
    }

    /// K = 2, two personas: every quantity by hand.
    #[test]
    fn one_pass_by_hand() {
        let cfg = DiscaConfig {
            k_half: 2,
            ..DiscaConfig::paper()
        };
        // δ_base = 0, personas 1 and 3: δ̄ = 2, σ = sd(1,3) = √2.
        let (db, p, m) = (0.0, [1.0, 3.0], 2.0);
        let s = 2f64.sqrt();
        let z = [0.5, -1.0];
        let v = |x: f64| pt_value(x, 0.88, 0.88, 2.25);
        let u: Vec<f64> = z
            .iter()
            .map(|&z| {
                let e = s * z;
                let ind = (v(((db - 1.0f64).abs() - (m + e - 1.0f64).abs()) / s)
                    + v(((db - 3.0f64).abs() - (m + e - 3.0f64).abs()) / s))
                    / 2.0;
                0.3 * ind + 0.7 * v(((db - m) as f64).abs() / s - e.abs() / s)
            })
            .collect();
        let w0 = 1.0 / (1.0 + ((u[1] - u[0]) / 0.5).exp());
        let w = [w0, 1.0 - w0];
        let ess = 1.0 / (2.0 * (w[0] * w[0] + w[1] * w[1]));
        let (star, e) = is_pass(&cfg, db, &p, m, s, &z);
        close(e, ess, 1e-12);
        close(star, w[0] * s * z[0] + w[1] * s * z[1], 1e-12);
        // The guard: an ESS below ρ gives δ* = 0.
        let strict = DiscaConfig {
            ess_guard: 0.99,
            k_half: 2,
            ..DiscaConfig::paper()
        };
        if ess < 0.99 {
            assert_eq!(is_pass(&strict, db, &p, m, s, &z).0, 0.0);
        }
    }

    fn gaps() -> PanelGaps {
        PanelGaps {
            base_orig: 1.2,
            personas_orig: vec![2.0, 3.5, -0.5, 1.0],
            base_swap: Some(-0.4),
            personas_swap: Some(vec![-1.0, -2.5, 0.5, 0.2]),
        }
    }

    #[test]
    fn debias_temperature_and_blend_algebra() {
        let cfg = DiscaConfig::paper();
        let eps = vec![vec![0.3; 64], vec![-0.2; 64]];
        let r = disca_micro_with_eps(&cfg, MoralDimension::Age, &gaps(), &eps).unwrap();
        let d = &r.diagnostics;
        assert_eq!(d.logit_temperature, 1.5);
        close(d.delta_base, (1.2 / 1.5 + 0.4 / 1.5) / 2.0, 1e-12);
        close(
            d.positional_bias.unwrap(),
            (1.2 / 1.5 - 0.4 / 1.5) / 2.0,
            1e-12,
        );
        let ps = [
            (2.0 + 1.0) / 3.0,
            (3.5 + 2.5) / 3.0,
            (-0.5 - 0.5) / 3.0,
            (1.0 - 0.2) / 3.0,
        ];
        let mean = ps.iter().sum::<f64>() / 4.0;
        close(d.delta_consensus, mean, 1e-12);
        let sd = (ps.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        close(d.sigma, sd.max(0.3), 1e-12);
        // Constant draws: every sample equal → uniform weights, ESS 1, δ* = σ·z.
        close(d.ess[0], 1.0, 1e-12);
        close(d.delta_star[0], d.sigma * 0.3, 1e-12);
        close(d.delta_star[1], d.sigma * -0.2, 1e-12);
        let v = (d.delta_star[0] - d.delta_star[1]).powi(2);
        close(d.reliability_var, v, 1e-12);
        let star = (-v / 0.04).exp() * (d.delta_star[0] + d.delta_star[1]) / 2.0;
        close(r.delta_micro, mean + star, 1e-12); // α = clamp(1) = 1
    }

    #[test]
    fn modes_and_switches_change_what_they_should() {
        let eps = vec![vec![0.3; 64], vec![-0.2; 64]];
        let run = |cfg: DiscaConfig| {
            disca_micro_with_eps(&cfg, MoralDimension::Species, &gaps(), &eps).unwrap()
        };
        let full = run(DiscaConfig::paper());
        let cons = run(DiscaConfig {
            mode: DiscaMode::ConsensusOnly,
            ..DiscaConfig::paper()
        });
        close(cons.delta_micro, full.diagnostics.delta_consensus, 1e-15);
        // No persona: one agent equal to the base agent; IS, gate and blend still run.
        let nop = run(DiscaConfig {
            mode: DiscaMode::NoPersona,
            ..DiscaConfig::paper()
        });
        close(
            nop.diagnostics.delta_consensus,
            full.diagnostics.delta_base,
            1e-15,
        );
        close(nop.diagnostics.sigma, 0.3, 1e-15);
        assert_eq!(nop.diagnostics.delta_star.len(), 2);
        let star = nop.diagnostics.reliability_r
            * (nop.diagnostics.delta_star[0] + nop.diagnostics.delta_star[1])
            / 2.0;
        close(nop.delta_micro, full.diagnostics.delta_base + star, 1e-12);
        assert!(star != 0.0);
        let always = run(DiscaConfig {
            mode: DiscaMode::AlwaysOnIs,
            ..DiscaConfig::paper()
        });
        assert_eq!(always.diagnostics.reliability_r, 1.0);
        assert!(full.diagnostics.reliability_r < 1.0);
        assert!(always.delta_micro != full.delta_micro);
        let nodebias = run(DiscaConfig {
            debias: false,
            ..DiscaConfig::paper()
        });
        close(nodebias.diagnostics.delta_base, 1.2 / 4.0, 1e-15);
        assert_eq!(nodebias.diagnostics.positional_bias, None);
        // Single pass when the labels could not be swapped.
        let single = PanelGaps {
            base_swap: None,
            personas_swap: None,
            ..gaps()
        };
        let s = disca_micro_with_eps(
            &DiscaConfig::paper(),
            MoralDimension::Species,
            &single,
            &eps,
        )
        .unwrap();
        close(s.diagnostics.delta_base, 1.2 / 4.0, 1e-15);
        // The persona floor bounds each persona's loss term.
        let z: Vec<f64> = (0..64).map(|k| (k as f64 - 32.0) / 10.0).collect();
        let eps2 = vec![z.clone(), z.iter().map(|x| -x).collect()];
        let a = disca_micro_with_eps(&DiscaConfig::paper(), MoralDimension::Age, &gaps(), &eps2)
            .unwrap();
        let b = disca_micro_with_eps(
            &DiscaConfig {
                persona_floor: 0.5,
                ..DiscaConfig::paper()
            },
            MoralDimension::Age,
            &gaps(),
            &eps2,
        )
        .unwrap();
        assert!(a.diagnostics.delta_star != b.diagnostics.delta_star);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let eps = vec![vec![0.0; 64], vec![0.0; 64]];
        let empty = PanelGaps {
            base_orig: 0.0,
            personas_orig: vec![],
            base_swap: None,
            personas_swap: None,
        };
        assert!(
            disca_micro_with_eps(&DiscaConfig::paper(), MoralDimension::Age, &empty, &eps).is_err()
        );
        let nan = PanelGaps {
            base_orig: f64::NAN,
            ..gaps()
        };
        assert!(
            disca_micro_with_eps(&DiscaConfig::paper(), MoralDimension::Age, &nan, &eps).is_err()
        );
        let uneven = PanelGaps {
            personas_swap: Some(vec![1.0]),
            ..gaps()
        };
        assert!(
            disca_micro_with_eps(&DiscaConfig::paper(), MoralDimension::Age, &uneven, &eps)
                .is_err()
        );
        assert!(disca_micro_with_eps(
            &DiscaConfig::paper(),
            MoralDimension::Age,
            &gaps(),
            &eps[..1]
        )
        .is_err());
    }

    #[test]
    fn seeded_draws_are_deterministic_and_normal() {
        let a = disca_micro(&DiscaConfig::paper(), MoralDimension::Gender, &gaps(), 7).unwrap();
        let b = disca_micro(&DiscaConfig::paper(), MoralDimension::Gender, &gaps(), 7).unwrap();
        assert_eq!(a, b);
        let z = standard_normals(&mut ChaCha20Rng::seed_from_u64(1), 20000);
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn prior_recursion() {
        let cfg = PriorConfig {
            warmup: 2,
            tau: 10.0,
            beta: 0.5,
            warm_start: 0,
        };
        let mut p = CountryPrior::new();
        let s0 = p.apply(&cfg, 1.0);
        assert_eq!(
            (s0.alpha_h, s0.delta_final, s0.delta_country, s0.k),
            (0.0, 1.0, 0.0, 0)
        );
        p.apply(&cfg, 1.0); // δ = 0.75
        let s2 = p.apply(&cfg, -1.0); // k = 2 = warmup: α = 0
        assert_eq!(s2.alpha_h, 0.0);
        close(s2.delta_country, 0.75, 1e-15);
        let s3 = p.apply(&cfg, 0.0);
        let a = 1.0 - (-0.1f64).exp();
        close(s3.alpha_h, a, 1e-15);
        close(s3.delta_final, a * -0.125, 1e-15);
        // A walk with no warm start is the same recursion; a warm start of 2 absorbs the first
        // two values first, so the walk starts at k = 2 with δ = 0.75.
        let fresh = CountryPrior::walk(&cfg, &[1.0, 1.0, -1.0, 0.0]);
        assert_eq!(fresh[3], s3);
        let warm = CountryPrior::walk(
            &PriorConfig {
                warm_start: 2,
                ..cfg.clone()
            },
            &[1.0, 1.0, -1.0],
        );
        assert_eq!((warm[0].k, warm[0].delta_country), (2, 0.75));
        assert_eq!(warm.len(), 3);
        assert_eq!(PriorConfig::reference().warm_start, 3);
        close(p_spare_preferred(0.0, 0.5, true), 0.5, 0.0);
        close(
            p_spare_preferred(1.0, 0.5, false),
            1.0 - 1.0 / (1.0 + (-2f64).exp()),
            1e-15,
        );
    }
}
