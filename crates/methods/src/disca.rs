//! DISCA: a persona panel steers the model's binary decision at inference time
//! (specs/disca.md §4; the estimator itself is `culturesteer_core::disca`).
//!
//! Per item the method asks the model 2 × (1 + N) times: the base agent (the benchmark's own
//! prompt) and N persona agents (the persona text as system prompt), each with the original
//! option labels and with the labels swapped (§4.2). All prompts of a batch go to the model in
//! one call, so each persona's system prompt is a shared prefix evaluated once. The decision gaps
//! z_B − z_A feed the estimator, whose δ_micro is stored in the diagnostics; the answer is
//! p_right = σ(δ_micro / T_dec). The per-country prior (§4.8) is a recursion over the stored
//! δ_micro in item order, offered as a second view, `<name>+prior`, of the same answers.

use crate::readout::{read_options, render_prompt};
use crate::{Answer, Country, Item, Method, MethodError, PromptSpec, Readout, View};
use culturesteer_core::disca::{
    disca_micro, p_spare_preferred, CountryPrior, DiscaConfig, PanelGaps, PriorConfig,
};
use culturesteer_core::hash::fnv1a64;
use culturesteer_core::{CountryCode, MoralDimension};
use culturesteer_llm::LanguageModel;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Panel gaps shared by DISCA variants built on the same panels: the model is asked once per
/// item, and every variant (ablations included) runs its own estimator on the same gaps.
pub type GapCache = Arc<Mutex<HashMap<String, PanelGaps>>>;

/// The DISCA method with one persona panel per country.
pub struct Disca {
    name: String,
    config: DiscaConfig,
    panels: BTreeMap<CountryCode, Vec<String>>,
    seed: u64,
    cache: GapCache,
    /// Where each country's panel came from (recorded in the run manifest).
    provenance: BTreeMap<CountryCode, serde_json::Value>,
}

impl Disca {
    /// `panels`: persona texts per country (the base agent is the benchmark's own prompt and
    /// is not part of the panel). `seed` drives the importance-sampling noise; each item gets
    /// its own stream derived from (seed, country, item id), so results do not depend on
    /// batching or resumption.
    pub fn new(
        name: impl Into<String>,
        config: DiscaConfig,
        panels: BTreeMap<CountryCode, Vec<String>>,
        seed: u64,
    ) -> Self {
        Self {
            name: name.into(),
            config,
            panels,
            seed,
            cache: GapCache::default(),
            provenance: BTreeMap::new(),
        }
    }

    /// Records where each country's panel came from (source, value dimensions and items); the
    /// run manifest keeps it with the method's configuration.
    pub fn with_provenance(mut self, provenance: BTreeMap<CountryCode, serde_json::Value>) -> Self {
        self.provenance = provenance;
        self
    }

    /// Shares the model's panel gaps with other DISCA methods that use the same panels.
    pub fn with_gap_cache(mut self, cache: GapCache) -> Self {
        self.cache = cache;
        self
    }

    fn item_seed(&self, country: CountryCode, item: &str) -> u64 {
        fnv1a64(
            self.seed,
            country.as_str().bytes().chain([0xff]).chain(item.bytes()),
        )
    }
}

impl Disca {
    /// Runs the estimator on one item's gaps.
    fn finish(
        &self,
        country: CountryCode,
        item: &Item,
        cat: MoralDimension,
        mut gaps: PanelGaps,
    ) -> Result<Answer, MethodError> {
        if !self.config.debias {
            gaps.base_swap = None;
            gaps.personas_swap = None;
        }
        let micro = disca_micro(&self.config, cat, &gaps, self.item_seed(country, &item.id))
            .map_err(|e| MethodError::Item {
                id: item.id.clone(),
                what: e.to_string(),
            })?;
        let p_right = p_spare_preferred(micro.delta_micro, self.config.decision_temperature, true);
        Ok(Answer {
            probs: vec![1.0 - p_right, p_right],
            logprobs: vec![],
            diagnostics: json!({
                "delta_micro": micro.delta_micro,
                "debiased": gaps.base_swap.is_some(),
                "gaps": gaps,
                "disca": micro.diagnostics,
            }),
        })
    }
}

fn category(item: &Item) -> Result<MoralDimension, MethodError> {
    item.dimension.ok_or_else(|| MethodError::Item {
        id: item.id.clone(),
        what: "DISCA needs the moral dimension of the question (MultiTP benchmarks)".into(),
    })
}

/// z_B − z_A from the two raw option scores of an answer.
fn gap(item: &Item, a: &Answer) -> Result<f64, MethodError> {
    match a.logprobs.as_slice() {
        [za, zb] if za.is_finite() && zb.is_finite() => Ok(zb - za),
        other => Err(MethodError::Item {
            id: item.id.clone(),
            what: format!("DISCA needs two finite option scores, got {other:?}"),
        }),
    }
}

impl Method for Disca {
    fn name(&self) -> &str {
        &self.name
    }

    fn stochastic(&self) -> bool {
        true
    }

    fn config(&self) -> serde_json::Value {
        let mut c = json!({ "disca": self.config, "panels": self.panels, "seed": self.seed });
        if !self.provenance.is_empty() {
            c["panel_sources"] = json!(self.provenance);
        }
        c
    }

    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        let personas = self.panels.get(&country.code).ok_or_else(|| {
            MethodError::Config(format!(
                "{}: no persona panel for {} (give --personas FILE or --wvs FILE)",
                self.name, country.code
            ))
        })?;
        let n_agents = 1 + personas.len();
        let key = |item: &Item| {
            format!(
                "{}\u{1f}{}\u{1f}{}",
                country.code,
                item.id,
                serde_json::to_string(&(&item.prompt, &item.swapped, &item.readout))
                    .unwrap_or_default()
            )
        };
        let cached: HashMap<usize, PanelGaps> = {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| c.get(&key(it)).map(|g| (i, g.clone())))
                .collect()
        };
        // Expand every uncached item into its agents × label orders; remember where each lands.
        // The swapped order is always asked when the labels can be swapped, so the cached gaps
        // serve variants with and without debiasing.
        let mut expanded: Vec<Item> = Vec::new();
        let mut layout: Vec<(MoralDimension, bool)> = Vec::with_capacity(items.len());
        for (idx, item) in items.iter().enumerate() {
            let cat = category(item)?;
            if cached.contains_key(&idx) {
                layout.push((cat, false));
                continue;
            }
            match &item.readout {
                Readout::NextToken { labels } if labels.len() == 2 => {}
                Readout::Continuation { texts } if texts.len() == 2 => {}
                _ => {
                    return Err(MethodError::Item {
                        id: item.id.clone(),
                        what: "DISCA needs a two-option log-probability readout".into(),
                    })
                }
            }
            // The benchmark renders the swapped label order; the persona agents ask the same
            // two user turns with their own system text.
            let agent = |system: Option<String>, spec: &PromptSpec| Item {
                prompt: PromptSpec {
                    system,
                    ..spec.clone()
                },
                ..item.clone()
            };
            let mut orders = vec![&item.prompt];
            orders.extend(item.swapped.as_ref());
            for spec in &orders {
                expanded.push(agent(spec.system.clone(), spec));
                for p in personas {
                    expanded.push(agent(Some(p.clone()), spec));
                }
            }
            layout.push((cat, item.swapped.is_some()));
        }
        let prompts = expanded
            .iter()
            .map(|i| render_prompt(lm, &i.prompt))
            .collect::<Result<Vec<_>, _>>()?;
        // Every item cached: no model call at all (not even an empty one).
        let answers = if expanded.is_empty() {
            Vec::new()
        } else {
            read_options(lm, &expanded, prompts)?
        };
        let mut out = Vec::with_capacity(items.len());
        let mut k = 0;
        for (idx, (item, (cat, has_swap))) in items.iter().zip(layout).enumerate() {
            if let Some(gaps) = cached.get(&idx) {
                out.push(self.finish(country.code, item, cat, gaps.clone())?);
                continue;
            }
            let mut take = || -> Result<(f64, Vec<f64>), MethodError> {
                let g = (0..n_agents)
                    .map(|j| gap(item, &answers[k + j]))
                    .collect::<Result<Vec<f64>, _>>()?;
                k += n_agents;
                Ok((g[0], g[1..].to_vec()))
            };
            let (base_orig, personas_orig) = take()?;
            let (base_swap, personas_swap) = if has_swap {
                let (b, p) = take()?;
                (Some(b), Some(p))
            } else {
                (None, None)
            };
            let gaps = PanelGaps {
                base_orig,
                personas_orig,
                base_swap,
                personas_swap,
            };
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key(item), gaps.clone());
            out.push(self.finish(country.code, item, cat, gaps)?);
        }
        Ok(out)
    }

    fn headline(&self) -> Option<View> {
        // The reference preset: the country prior is part of the method's own number.
        let prior = self.config.prior.clone()?;
        Some(prior_view(
            self.name.clone(),
            prior,
            self.config.decision_temperature,
        ))
    }

    fn views(&self) -> Vec<View> {
        match &self.config.prior {
            // The prior is the headline; the same answers without it are a view.
            Some(_) => vec![View {
                name: format!("{}-no-prior", self.name),
                transform: Box::new(|answers: &[Answer]| Ok(answers.to_vec())),
            }],
            None => vec![prior_view(
                format!("{}+prior", self.name),
                PriorConfig::reference(),
                self.config.decision_temperature,
            )],
        }
    }
}

/// The country prior (specs/disca.md §4.8) as a view: a recursion over one country's stored
/// δ_micro in item order (the benchmark's pool order), started as the released runner starts
/// it (see [`PriorConfig::warm_start`]).
fn prior_view(name: String, prior: PriorConfig, t_dec: f64) -> View {
    View {
        name,
        transform: Box::new(move |answers: &[Answer]| {
            let micros = answers
                .iter()
                .map(|a| {
                    a.diagnostics
                        .get("delta_micro")
                        .and_then(serde_json::Value::as_f64)
                        .ok_or_else(|| {
                            MethodError::Config(
                                "a DISCA record has no delta_micro diagnostic".into(),
                            )
                        })
                })
                .collect::<Result<Vec<f64>, _>>()?;
            let steps = CountryPrior::walk(&prior, &micros);
            Ok(answers
                .iter()
                .zip(steps)
                .map(|(a, step)| {
                    let p_right = p_spare_preferred(step.delta_final, t_dec, true);
                    let mut diagnostics = a.diagnostics.clone();
                    diagnostics["prior"] = json!(step);
                    Answer {
                        probs: vec![1.0 - p_right, p_right],
                        logprobs: vec![],
                        diagnostics,
                    }
                })
                .collect())
        }),
    }
}
