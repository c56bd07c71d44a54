//! Cultural Palette (Yuan et al., arXiv 2412.11167; specs/palette.md): five continent agents
//! draft, a meta agent distils the drafts into a summary of the target country, and the meta
//! agent answers the benchmark's question from that summary.
//!
//! Stages, batched over all items:
//! 1. **Cultural drafts**: for every item, the five continent agents (`agent_system` +
//!    `agent_draft`) each generate a short draft about the target country that ends with a
//!    chosen option (parsed and recorded).
//! 2. **Self-regulated aggregation**: the meta agent (`meta_system` + `meta_aggregate`) turns
//!    the five drafts into a short summary for the country.
//! 3. **Final decision**: the meta agent's conversation goes on with a user turn
//!    (`decide_turn`) asking it to answer the question of its first turn; the benchmark's answer cue
//!    ("Answer:") opens the meta agent's reply, where `P_gen` is read by the item's reader
//!    (GlobalOpinionQA: the option letters' probabilities, renormalised). Stages 2 and 3 are one `generate_then_score` call: the
//!    decision is scored on the KV cache the summary left, so the stage-2 prompt and the
//!    summary are not decoded twice.
//!
//! **Cultural MoErges.** When the model carries five expert adapters named after the continents
//! (`LanguageModel::experts`), each continent agent drafts with its own adapter at scale 1 (one
//! generation batch per continent), and for each item the meta agent runs stages 2 and 3 with
//! all five adapters scaled by the gate ([`crate::gate`]): softmax over continents of
//! cos(h_prompt, h_continent) / T, h being the base model's mean final hidden state of the
//! item's benchmark prompt and of the continent's name. Adapter scales are per context, so
//! with experts stages 2 and 3 run item by item. Without experts the meta agent is the base
//! model. **This is not the paper's MoErges:** the paper routes per token over FFN experts;
//! here whole LoRA adapters are gated once per question.
//!
//! Ablations (the paper's "w/o" rows) are separate method names:
//! `palette-cd` without cultural drafts (the meta agent writes the summary from its own
//! knowledge, `meta_aggregate_no_drafts`), `palette-sr` without self-regulation (the drafts go
//! straight into the decision, `decide_system_no_self_regulation`), `palette-cm` without
//! merging (the meta agent is the base model; without expert adapters this equals `palette`).
//!
//! Baselines that need no training data: `palette-modular` has no meta agent: `P_gen` is the
//! mean over the five continent agents of each agent's option distribution, read by the item's
//! reader at the answer cue right after the agent's own draft ([`cue_after_draft`]; drafting and
//! reading are one `generate_then_score` call). `palette-joint` replaces MoErges by a joint
//! merge: the meta agent runs with all five expert adapters at weight 1/5 and no gate (one set
//! of scales, so stages 2 and 3 stay batched); without expert adapters it equals `palette`.
//!
//! The target country's continent comes from the [`ContinentMap`] with its source
//! (CultureSPA's grouping for its 18 countries, UN M49 otherwise, `user` for overrides): each
//! answer records `continent` and `continent_source`, and [`Palette::with_targets`] puts both
//! for every target country into the config (so into run manifests). [`drafts_parsed`] counts
//! an answer's drafts with a parsed option; the runner sums it into the report.
//!
//! [`PaletteConfig::sequential`] runs the same calls one at a time (the baseline of `bench
//! palette`); the answers are identical, because the backend decodes every sequence alone.
//!
//! Every prompt and generated text goes into the answer's diagnostics, so results.jsonl shows
//! why an answer was chosen. The prompt wording is data (`data/palette/templates.json`).

use crate::gate::{cosine, gate_weights, DEFAULT_GATE_TEMPERATURE};
use crate::readout::{answer_from, read_options, render_prompt, score_request};
use crate::{Answer, Country, Item, Method, MethodError, PromptSpec, Readout};
use culturesteer_core::CountryCode;
use culturesteer_data::palette::{names, Continent, ContinentMap, PaletteTemplates};
use culturesteer_llm::{
    ChatMessage, GenerateRequest, Generation, LanguageModel, Prompt, Sampling, ScoreRequest,
};
use serde_json::json;

/// Which stages run (the ablations of the paper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaletteVariant {
    Full,
    /// Without cultural drafts (CD).
    NoDrafts,
    /// Without self-regulated aggregation (SR).
    NoSelfRegulation,
    /// Without merging of continent experts (CM).
    NoMerging,
    /// Baseline without a meta agent: `P_gen` is the mean of the five continent agents' option
    /// distributions, each read at the answer cue after the agent's own draft.
    Modular,
    /// MoErges replaced by a joint merge: the meta agent runs with all five expert adapters at
    /// weight 1/5, no gate (without expert adapters this equals `palette`).
    Joint,
}

impl PaletteVariant {
    /// The method name of each variant.
    pub const NAMES: [(&'static str, PaletteVariant); 6] = [
        ("palette", PaletteVariant::Full),
        ("palette-cd", PaletteVariant::NoDrafts),
        ("palette-sr", PaletteVariant::NoSelfRegulation),
        ("palette-cm", PaletteVariant::NoMerging),
        ("palette-modular", PaletteVariant::Modular),
        ("palette-joint", PaletteVariant::Joint),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .unwrap_or("palette")
    }

    fn drafts(self) -> bool {
        self != PaletteVariant::NoDrafts
    }

    fn summary(self) -> bool {
        self != PaletteVariant::NoSelfRegulation
    }
}

/// Settings of the pipeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaletteConfig {
    pub variant: PaletteVariant,
    /// Most tokens of one continent draft.
    pub draft_tokens: usize,
    /// Most tokens of the meta agent's summary.
    pub summary_tokens: usize,
    /// How drafts and summaries are generated (greedy by default).
    pub sampling: Sampling,
    /// Temperature of the expert gate's softmax (only with expert adapters).
    pub gate_temperature: f64,
    /// Run every model call alone, item after item (the baseline of `bench palette`); the
    /// answers are the same, only slower.
    pub sequential: bool,
    /// Score the decision on the KV cache the summary left (default); off, it is a separate
    /// scoring call from scratch (numbers then differ slightly, see `generate_then_score`).
    pub reuse_kv: bool,
}

impl Default for PaletteConfig {
    fn default() -> Self {
        Self {
            variant: PaletteVariant::Full,
            draft_tokens: 96,
            summary_tokens: 128,
            sampling: Sampling::Greedy,
            gate_temperature: DEFAULT_GATE_TEMPERATURE,
            sequential: false,
            reuse_kv: true,
        }
    }
}

/// The Cultural Palette method.
pub struct Palette {
    config: PaletteConfig,
    templates: PaletteTemplates,
    continents: ContinentMap,
    /// Hidden states of the five continent names under the base model (the gate's keys),
    /// computed on first use with experts.
    continent_keys: Option<Vec<Vec<f32>>>,
    /// The run's target countries, whose continent and its source the config records.
    targets: Vec<CountryCode>,
}

/// Where each continent's expert sits in the model's expert list ([`Continent::ALL`] order).
fn expert_slots(experts: &[String]) -> Result<[usize; 5], MethodError> {
    let mut slots = [0; 5];
    for (k, c) in Continent::ALL.iter().enumerate() {
        slots[k] = experts.iter().position(|e| e.eq_ignore_ascii_case(c.name())).ok_or_else(|| {
            MethodError::Config(format!(
                "palette: the expert adapters must be named after the five continents (africa, america, asia, europe, oceania); {} is missing from {experts:?}",
                c.name().to_ascii_lowercase()
            ))
        })?;
    }
    if experts.len() != 5 {
        return Err(MethodError::Config(format!(
            "palette: five continent experts expected, got {experts:?}"
        )));
    }
    Ok(slots)
}

/// Expert scales with `weights[k]` at continent k's slot.
fn scales_of(slots: &[usize; 5], weights: &[f64]) -> Vec<f32> {
    let mut s = vec![0.0; slots.len()];
    for (slot, w) in slots.iter().zip(weights) {
        s[*slot] = *w as f32;
    }
    s
}

/// What stages 2 and 3 produce for a run of items.
struct Decided {
    summaries: Vec<Option<String>>,
    /// The decision's own text: the meta agent's decision turn, or (palette-sr) the system
    /// text with the drafts.
    decisions: Vec<String>,
    answers: Vec<Answer>,
}

/// Stands in for the summary while the decision conversation is rendered once to learn the
/// text around it.
const SUMMARY_SLOT: &str = "\u{1}CULTURESTEER-SUMMARY\u{1}";

/// The cue the draft template asks each agent to end with ("Answer: X"); palette-modular reads
/// an agent's options there when the benchmark has no cue of its own.
pub const DRAFT_CUE: &str = "Answer:";

/// What the `continent_sources` of the config mean.
const CONTINENT_SOURCES: &str = "culturespa: CultureSPA's grouping of its 18 countries, which Cultural Palette very likely uses (an inference, data/continents/SOURCE.md); un-m49: the UN M49 region; geography: not in M49, placed by location; user: --continents";

/// The text that follows an agent's draft prompt when palette-modular reads the agent's
/// options: the draft up to its last "Answer:" (where the agent states its option; any "*"
/// right before it dropped), or the whole draft when it has none, then `cue` (on a new line
/// after text that does not end in white space).
pub fn cue_after_draft(draft: &str, cue: &str) -> String {
    let head = match draft
        .to_ascii_lowercase()
        .rfind(&DRAFT_CUE.to_ascii_lowercase())
    {
        // Markdown emphasis opened around the draft's own cue ("**Answer:**") is left out.
        Some(at) => draft[..at].trim_end_matches('*'),
        None => draft,
    };
    let sep = if head.is_empty() || head.ends_with(char::is_whitespace) {
        ""
    } else {
        "\n"
    };
    format!("{head}{sep}{cue}")
}

/// How many of the drafts recorded in a Palette answer's diagnostics have a parsed option:
/// (parsed, drafts); `None` when the answer records no drafts (palette-cd, other methods).
pub fn drafts_parsed(diagnostics: &serde_json::Value) -> Option<(usize, usize)> {
    let drafts = diagnostics.get("drafts")?.as_array()?;
    if drafts.is_empty() || drafts.iter().any(|d| d.get("continent").is_none()) {
        return None;
    }
    let parsed = drafts
        .iter()
        .filter(|d| d.get("choice").is_some_and(|c| !c.is_null()))
        .count();
    Some((parsed, drafts.len()))
}

/// Weights keyed by lower-case continent name, in [`Continent::ALL`] order.
fn named(v: &[f64]) -> serde_json::Map<String, serde_json::Value> {
    Continent::ALL
        .iter()
        .zip(v)
        .map(|(c, x)| (c.name().to_ascii_lowercase(), json!(x)))
        .collect()
}

/// The recorded drafts of one item: continent, text and the parsed option.
fn draft_info(drafts: &[String], labels: &[String]) -> Vec<serde_json::Value> {
    Continent::ALL
        .iter()
        .zip(drafts)
        .map(|(c, d)| {
            let choice = parse_draft_choice(d, labels);
            json!({ "continent": c.name(), "text": d, "choice": choice.map(|k| labels[k].clone()) })
        })
        .collect()
}

impl Palette {
    pub fn new(
        config: PaletteConfig,
        templates: PaletteTemplates,
        continents: ContinentMap,
    ) -> Result<Self, MethodError> {
        if config.draft_tokens == 0 || config.summary_tokens == 0 {
            return Err(MethodError::Config(
                "palette: draft and summary token limits must be at least 1".into(),
            ));
        }
        if !(config.gate_temperature.is_finite() && config.gate_temperature > 0.0) {
            return Err(MethodError::Config(format!(
                "palette: gate temperature must be a positive number, not {}",
                config.gate_temperature
            )));
        }
        Ok(Self {
            config,
            templates,
            continents,
            continent_keys: None,
            targets: Vec::new(),
        })
    }

    /// Records the run's target countries: [`Method::config`] (and so the run manifest) then
    /// lists each one's continent and where it comes from.
    pub fn with_targets(mut self, countries: &[CountryCode]) -> Self {
        self.targets = countries.to_vec();
        self
    }

    fn render(&self, name: &str, vars: &[(&str, &str)]) -> Result<String, MethodError> {
        self.templates
            .render(name, vars)
            .map_err(|e| MethodError::Config(e.to_string()))
    }

    fn generate_all(
        &self,
        lm: &mut dyn LanguageModel,
        chats: Vec<Vec<ChatMessage>>,
        max_tokens: usize,
    ) -> Result<Vec<String>, MethodError> {
        let reqs = chats
            .iter()
            .map(|m| {
                Ok(GenerateRequest {
                    prompt: lm.chat_prompt(m)?,
                    max_tokens,
                    sampling: self.config.sampling.clone(),
                    stop: vec![],
                })
            })
            .collect::<Result<Vec<_>, MethodError>>()?;
        Ok(self
            .generate_texts(lm, &reqs)?
            .into_iter()
            .map(|t| t.trim().to_string())
            .collect())
    }

    /// The generated texts of `reqs`: one batch, or one call each when `sequential`.
    fn generate_texts(
        &self,
        lm: &mut dyn LanguageModel,
        reqs: &[GenerateRequest],
    ) -> Result<Vec<String>, MethodError> {
        let gens = if self.config.sequential {
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                out.extend(lm.generate(std::slice::from_ref(r))?);
            }
            out
        } else {
            lm.generate(reqs)?
        };
        Ok(gens.into_iter().map(|g| g.text).collect())
    }

    /// The stage-1 prompts of one item: one chat per continent, in [`Continent::ALL`] order.
    pub fn draft_chats(
        &self,
        country: &Country,
        question: &str,
    ) -> Result<Vec<Vec<ChatMessage>>, MethodError> {
        Continent::ALL
            .iter()
            .map(|c| {
                Ok(vec![
                    ChatMessage::system(
                        self.render(names::AGENT_SYSTEM, &[("continent", c.name())])?,
                    ),
                    ChatMessage::user(self.render(
                        names::AGENT_DRAFT,
                        &[
                            ("continent", c.name()),
                            ("country", &country.name),
                            ("question", question),
                        ],
                    )?),
                ])
            })
            .collect()
    }

    /// The stage-2 prompt of one item (`drafts`: the rendered drafts, `None` without drafts).
    pub fn summary_chat(
        &self,
        country: &Country,
        home: Continent,
        question: &str,
        drafts: Option<&str>,
    ) -> Result<Vec<ChatMessage>, MethodError> {
        let mut vars = vec![
            ("country", country.name.as_str()),
            ("continent", home.name()),
            ("question", question),
        ];
        let user = match drafts {
            Some(d) => {
                vars.push(("drafts", d));
                self.render(names::META_AGGREGATE, &vars)?
            }
            None => self.render(names::META_AGGREGATE_NO_DRAFTS, &vars)?,
        };
        Ok(vec![
            ChatMessage::system(self.render(names::META_SYSTEM, &[])?),
            ChatMessage::user(user),
        ])
    }

    /// The stage-3 user turn after the meta agent's summary (the question is in the
    /// conversation's first turn; `question` fills templates that repeat it).
    pub fn decision_turn(&self, country: &Country, question: &str) -> Result<String, MethodError> {
        self.render(
            names::DECIDE_TURN,
            &[("country", &country.name), ("question", question)],
        )
    }

    /// The stage-3 system text without self-regulation: the raw drafts.
    pub fn decision_system_from_drafts(
        &self,
        country: &Country,
        drafts: &str,
    ) -> Result<String, MethodError> {
        self.render(
            names::DECIDE_SYSTEM_NO_SELF_REGULATION,
            &[("country", &country.name), ("drafts", drafts)],
        )
    }
}

/// The question as the agents see it: the benchmark's question without its answer cue.
pub fn question_text(item: &Item) -> &str {
    &item.question.stem
}

/// The option a draft chose, if it names one of `labels`: the label after the last "answer"
/// (case-insensitive) that a connector on the same line ties to it — "Answer: B", "the answer
/// is B", "my answer would be: (B)", "the answer to this question would be \"B\"" (at most
/// 80 characters between "answer" and the connector; the first connector followed by a label
/// counts). Small instruction-tuned models rarely
/// keep the requested "Answer: X" form; the label must stand alone ("B." or "B)" but not
/// "Because").
pub fn parse_draft_choice(draft: &str, labels: &[String]) -> Option<usize> {
    const CONNECTORS: [&str; 4] = [":", " is ", " would be ", " will be "];
    const MAX_GAP: usize = 80;
    let lower = draft.to_ascii_lowercase();
    lower.rmatch_indices("answer").find_map(|(at, _)| {
        let after = at + "answer".len();
        let line = lower[after..].split('\n').next().unwrap_or("");
        let mut ties: Vec<(usize, usize)> = CONNECTORS
            .iter()
            .flat_map(|c| line.match_indices(c).map(|(k, _)| (k, c.len())))
            .filter(|(k, _)| *k <= MAX_GAP)
            .collect();
        ties.sort_unstable();
        ties.into_iter().find_map(|(k, c)| {
            let rest = draft[after + k + c..].trim_start_matches(|ch: char| {
                ch.is_whitespace() || matches!(ch, '*' | '(' | '"' | '\'' | ':')
            });
            labels.iter().position(|l| {
                rest.strip_prefix(l.as_str()).is_some_and(|after| {
                    after.chars().next().is_none_or(|ch| !ch.is_alphanumeric())
                })
            })
        })
    })
}

fn labels_of(readout: &Readout) -> Vec<String> {
    match readout {
        Readout::NextToken { labels }
        | Readout::TopKLabels { labels, .. }
        | Readout::Generate { labels, .. } => labels.clone(),
        Readout::Continuation { texts } => (0..texts.len())
            .map(|i| ((b'A' + i as u8) as char).to_string())
            .collect(),
    }
}

impl Method for Palette {
    fn name(&self) -> &str {
        self.config.variant.name()
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "variant": self.config.variant,
            "draft_tokens": self.config.draft_tokens,
            "summary_tokens": self.config.summary_tokens,
            "sampling": self.config.sampling,
            "templates": self.templates.file(),
            "continents": self.continents.file(),
            "continent_overrides": self.continents.overrides().iter().map(|(c, k)| format!("{c}={}", k.name())).collect::<Vec<_>>(),
            "continent_sources": CONTINENT_SOURCES,
            "target_continents": self.targets.iter().filter_map(|c| {
                let k = self.continents.get(c)?;
                Some((c.to_string(), json!({ "continent": k.name(), "source": self.continents.source_of(c) })))
            }).collect::<serde_json::Map<_, _>>(),
            "merge": match self.config.variant {
                PaletteVariant::Modular => "none (palette-modular: no meta agent; P_gen is the mean of the five agents' option distributions, each read at the answer cue after its own draft)",
                PaletteVariant::NoMerging => "none (palette-cm: the meta agent is the base model)",
                PaletteVariant::Joint => "joint: the meta agent runs with all five continent adapters at weight 1/5, no gate (the base model without expert adapters)",
                _ => "Cultural MoErges: the gate's weights per question over whole continent adapters (the base model without expert adapters)",
            },
            "gate_temperature": self.config.gate_temperature,
        })
    }

    fn answer(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
    ) -> Result<Vec<Answer>, MethodError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let experts = lm.experts();
        let slots = if experts.is_empty() {
            None
        } else {
            Some(expert_slots(&experts)?)
        };
        // Whatever fails, the model is left without adapters for the next caller.
        let result = if self.config.sequential {
            items
                .iter()
                .try_fold(Vec::with_capacity(items.len()), |mut out, item| {
                    out.extend(self.answer_with(
                        lm,
                        country,
                        std::slice::from_ref(item),
                        &experts,
                        slots,
                    )?);
                    Ok(out)
                })
        } else {
            self.answer_with(lm, country, items, &experts, slots)
        };
        if slots.is_some() {
            lm.set_expert_scales(&vec![0.0; experts.len()])?;
        }
        result
    }
}

impl Palette {
    fn answer_with(
        &mut self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        items: &[Item],
        experts: &[String],
        slots: Option<[usize; 5]>,
    ) -> Result<Vec<Answer>, MethodError> {
        let home = self
            .continents
            .continent_of(&country.code)
            .map_err(|e| MethodError::Config(e.to_string()))?;
        let variant = self.config.variant;
        if variant == PaletteVariant::Modular {
            return self.answer_modular(lm, country, home, items, slots);
        }

        // Stage 1: 5 drafts per item. Without experts all in one generation batch; with
        // experts each continent agent is its own adapter, so one batch per continent.
        let n = Continent::ALL.len();
        let drafts: Vec<Vec<String>> = if !variant.drafts() {
            vec![vec![]; items.len()]
        } else {
            let per_item = items
                .iter()
                .map(|i| self.draft_chats(country, question_text(i)))
                .collect::<Result<Vec<_>, _>>()?;
            match slots {
                None => {
                    let texts = self.generate_all(
                        lm,
                        per_item.into_iter().flatten().collect(),
                        self.config.draft_tokens,
                    )?;
                    texts.chunks(n).map(<[String]>::to_vec).collect()
                }
                Some(slots) => {
                    let mut out = vec![Vec::with_capacity(n); items.len()];
                    for k in 0..n {
                        let mut one_hot = [0.0; 5];
                        one_hot[k] = 1.0;
                        lm.set_expert_scales(&scales_of(&slots, &one_hot))?;
                        let chats = per_item.iter().map(|c| c[k].clone()).collect();
                        for (o, t) in out.iter_mut().zip(self.generate_all(
                            lm,
                            chats,
                            self.config.draft_tokens,
                        )?) {
                            o.push(t);
                        }
                    }
                    out
                }
            }
        };
        let rendered: Vec<String> = drafts
            .iter()
            .map(|d| {
                let pairs: Vec<(Continent, &str)> = Continent::ALL
                    .iter()
                    .copied()
                    .zip(d.iter().map(String::as_str))
                    .collect();
                self.templates
                    .render_drafts(&pairs)
                    .map_err(|e| MethodError::Config(e.to_string()))
            })
            .collect::<Result<_, _>>()?;

        // Stages 2 and 3: batched over all items with the base model; with merging, item by
        // item under that item's gate weights.
        let (decided, merging) = match slots.filter(|_| variant != PaletteVariant::NoMerging) {
            Some(slots) if variant == PaletteVariant::Joint => {
                // Joint merge: one set of scales for every item, so stages 2-3 stay batched.
                let weights = [1.0 / n as f64; 5];
                lm.set_expert_scales(&scales_of(&slots, &weights))?;
                let merge = json!({
                    "merge": "joint: all five continent adapters at weight 1/5, no gate",
                    "weights": named(&weights),
                });
                (
                    self.decide(lm, country, home, items, &rendered)?,
                    vec![merge; items.len()],
                )
            }
            None => {
                let why = if slots.is_some() {
                    "none (palette-cm: the meta agent is the base model; the drafts came from the continent experts)"
                } else {
                    "none (no expert adapters: the meta agent is the base model)"
                };
                (
                    self.decide(lm, country, home, items, &rendered)?,
                    vec![json!(why); items.len()],
                )
            }
            Some(slots) => {
                lm.set_expert_scales(&vec![0.0; experts.len()])?;
                let keys = match &self.continent_keys {
                    Some(k) => k.clone(),
                    None => {
                        let names = Continent::ALL
                            .iter()
                            .map(|c| culturesteer_llm::Prompt::from(c.name().to_string()))
                            .collect::<Vec<_>>();
                        let k = lm.hidden_states(&names)?;
                        self.continent_keys = Some(k.clone());
                        k
                    }
                };
                // The gate reads every item's prompt under the base model, in one call.
                let queries = items
                    .iter()
                    .map(|i| render_prompt(lm, &i.prompt))
                    .collect::<Result<Vec<_>, _>>()?;
                let states = lm.hidden_states(&queries)?;
                let mut all = Decided {
                    summaries: vec![],
                    decisions: vec![],
                    answers: vec![],
                };
                let mut merging = Vec::with_capacity(items.len());
                for (i, (item, h)) in items.iter().zip(&states).enumerate() {
                    let sims = keys
                        .iter()
                        .map(|k| cosine(h, k))
                        .collect::<Result<Vec<_>, _>>()?;
                    let weights = gate_weights(h, &keys, self.config.gate_temperature)?;
                    lm.set_expert_scales(&scales_of(&slots, &weights))?;
                    let d = self.decide(
                        lm,
                        country,
                        home,
                        std::slice::from_ref(item),
                        &rendered[i..=i],
                    )?;
                    all.summaries.extend(d.summaries);
                    all.decisions.extend(d.decisions);
                    all.answers.extend(d.answers);
                    merging.push(json!({
                        "gate": "softmax(cos(h_prompt, h_continent) / T) over the base model's mean final hidden states",
                        "temperature": self.config.gate_temperature,
                        "similarity": named(&sims),
                        "weights": named(&weights),
                    }));
                }
                (all, merging)
            }
        };

        let Decided {
            summaries,
            decisions,
            mut answers,
        } = decided;
        for (i, a) in answers.iter_mut().enumerate() {
            let draft_info = draft_info(&drafts[i], &labels_of(&items[i].readout));
            let reader = std::mem::take(&mut a.diagnostics);
            a.diagnostics = json!({
                "variant": variant,
                "continent": home.name(),
                "continent_source": self.continents.source_of(&country.code),
                "drafts_by": if slots.is_some() { "continent expert adapters" } else { "the base model with continent prompts" },
                "drafts": draft_info,
                "summary": summaries[i],
                "decision": decisions[i],
                "merging": merging[i],
                "reader": reader,
            });
        }
        Ok(answers)
    }

    /// palette-modular: the five continent drafts of every item, each followed by the answer
    /// cue and read by the item's reader ([`cue_after_draft`]); `P_gen` is the mean of the five
    /// agents' distributions (agents whose generated read-out picked nothing are left out; none
    /// left gives an empty answer). No meta agent. With expert adapters each agent drafts and
    /// is read under its own adapter.
    fn answer_modular(
        &self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        home: Continent,
        items: &[Item],
        slots: Option<[usize; 5]>,
    ) -> Result<Vec<Answer>, MethodError> {
        let n = Continent::ALL.len();
        let per_item = items
            .iter()
            .map(|i| self.draft_chats(country, question_text(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut read: Vec<Vec<(String, Answer)>> =
            (0..items.len()).map(|_| Vec::with_capacity(n)).collect();
        match slots {
            None => {
                let jobs: Vec<(usize, Vec<ChatMessage>)> = per_item
                    .into_iter()
                    .enumerate()
                    .flat_map(|(i, chats)| chats.into_iter().map(move |c| (i, c)))
                    .collect();
                for ((i, _), r) in jobs.iter().zip(self.draft_then_read(lm, items, &jobs)?) {
                    read[*i].push(r);
                }
            }
            Some(slots) => {
                for k in 0..n {
                    let mut one_hot = [0.0; 5];
                    one_hot[k] = 1.0;
                    lm.set_expert_scales(&scales_of(&slots, &one_hot))?;
                    let jobs: Vec<(usize, Vec<ChatMessage>)> = per_item
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i, c[k].clone()))
                        .collect();
                    for ((i, _), r) in jobs.iter().zip(self.draft_then_read(lm, items, &jobs)?) {
                        read[*i].push(r);
                    }
                }
            }
        }
        let drafts_by = if slots.is_some() {
            "continent expert adapters"
        } else {
            "the base model with continent prompts"
        };
        items
            .iter()
            .zip(read)
            .map(|(item, agents)| {
                let (texts, answers): (Vec<String>, Vec<Answer>) = agents.into_iter().unzip();
                let drafts: Vec<String> = texts.iter().map(|t| t.trim().to_string()).collect();
                let decided: Vec<&Answer> = answers.iter().filter(|a| !a.probs.is_empty()).collect();
                let probs = match decided.first() {
                    None => vec![],
                    Some(first) => (0..first.probs.len())
                        .map(|j| {
                            decided.iter().map(|a| a.probs.get(j).copied().unwrap_or(0.0)).sum::<f64>()
                                / decided.len() as f64
                        })
                        .collect(),
                };
                let agents: Vec<serde_json::Value> = Continent::ALL
                    .iter()
                    .zip(answers)
                    .map(|(c, a)| json!({ "continent": c.name(), "probs": a.probs, "reader": a.diagnostics }))
                    .collect();
                // A mean of distributions has no option scores of its own: each agent's are
                // under `agents[k].reader`.
                Ok(Answer {
                    probs,
                    logprobs: vec![],
                    diagnostics: json!({
                        "variant": PaletteVariant::Modular,
                        "continent": home.name(),
                        "continent_source": self.continents.source_of(&country.code),
                        "drafts_by": drafts_by,
                        "drafts": draft_info(&drafts, &labels_of(&item.readout)),
                        "summary": null,
                        "decision": null,
                        "merging": "none (palette-modular: no meta agent)",
                        "p_gen": "mean over the five continent agents of the option distribution read at the answer cue after each agent's own draft",
                        "agents": agents,
                    }),
                })
            })
            .collect()
    }

    /// Generates a draft for each job (item index, agent chat) and reads the item's options
    /// after it ([`cue_after_draft`]): one `generate_then_score` call (the read-out reuses the
    /// draft's KV cache when the draft has no "Answer:" of its own), or a generation and then
    /// the item's reader when the item's read-out is itself generated or `reuse_kv` is off.
    /// Returns each job's raw draft and its agent's answer.
    fn draft_then_read(
        &self,
        lm: &mut dyn LanguageModel,
        items: &[Item],
        jobs: &[(usize, Vec<ChatMessage>)],
    ) -> Result<Vec<(String, Answer)>, MethodError> {
        let prompts = jobs
            .iter()
            .map(|(_, chat)| lm.chat_prompt(chat))
            .collect::<Result<Vec<_>, _>>()?;
        let reqs: Vec<GenerateRequest> = prompts
            .iter()
            .map(|p| GenerateRequest {
                prompt: p.clone(),
                max_tokens: self.config.draft_tokens,
                sampling: self.config.sampling.clone(),
                stop: vec![],
            })
            .collect();
        let read_prompt = |j: usize, draft: &str| -> Prompt {
            let (i, chat) = &jobs[j];
            let cue = match items[*i].question.cue.as_str() {
                "" => DRAFT_CUE,
                c => c,
            };
            let read = cue_after_draft(draft, cue);
            let mut messages = chat.clone();
            messages.push(ChatMessage::assistant(read.clone()));
            Prompt {
                text: format!("{}{read}", prompts[j].text),
                messages: Some(messages),
                ..Prompt::default()
            }
        };
        let its: Vec<&Item> = jobs.iter().map(|(i, _)| &items[*i]).collect();
        if !self.config.reuse_kv
            || its
                .iter()
                .any(|i| matches!(i.readout, Readout::Generate { .. }))
        {
            let texts = self.generate_texts(lm, &reqs)?;
            let owned: Vec<Item> = its.iter().map(|i| (*i).clone()).collect();
            let read = texts
                .iter()
                .enumerate()
                .map(|(j, t)| read_prompt(j, t))
                .collect();
            let answers = read_options(lm, &owned, read)?;
            return Ok(texts.into_iter().zip(answers).collect());
        }
        // Label tokens depend only on how the prompt ends: "…draft\n" + cue.
        let skeletons = its
            .iter()
            .enumerate()
            .map(|(j, item)| score_request(lm, item, read_prompt(j, "draft")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut follow = |j: usize, g: &Generation| -> culturesteer_llm::Result<ScoreRequest> {
            Ok(ScoreRequest {
                prompt: read_prompt(j, &g.text),
                ..skeletons[j].clone()
            })
        };
        let pairs = if self.config.sequential {
            let mut v = Vec::with_capacity(reqs.len());
            for k in 0..reqs.len() {
                v.extend(lm.generate_then_score(&reqs[k..=k], &mut |_, g| follow(k, g))?);
            }
            v
        } else {
            lm.generate_then_score(&reqs, &mut follow)?
        };
        pairs
            .into_iter()
            .zip(its)
            .map(|((g, r), item)| Ok((g.text, answer_from(item, &r)?)))
            .collect()
    }

    /// Stages 2 and 3 of `items`. With self-regulation they are one conversation of the meta
    /// agent: it writes the summary, then answers the decision turn (the benchmark's prompt)
    /// read by the benchmark's reader; the decision is scored on top of the summary's own KV
    /// cache (`generate_then_score`), so the stage-2 prompt and the summary are not decoded
    /// again. Without self-regulation the drafts go into the decision's system text.
    fn decide(
        &self,
        lm: &mut dyn LanguageModel,
        country: &Country,
        home: Continent,
        items: &[Item],
        rendered: &[String],
    ) -> Result<Decided, MethodError> {
        let variant = self.config.variant;
        if !variant.summary() {
            let mut decisions = Vec::with_capacity(items.len());
            let mut prompts = Vec::with_capacity(items.len());
            for (item, r) in items.iter().zip(rendered) {
                let system = self.decision_system_from_drafts(country, r)?;
                // Completion prompts take the system text verbatim in front of the question.
                let spec_system = if item.prompt.chat {
                    system.clone()
                } else {
                    format!("{system}\n\n")
                };
                prompts.push(render_prompt(
                    lm,
                    &PromptSpec {
                        system: Some(spec_system),
                        user: item.prompt.user.clone(),
                        chat: item.prompt.chat,
                    },
                )?);
                decisions.push(system);
            }
            let answers = read_options(lm, items, prompts)?;
            return Ok(Decided {
                summaries: vec![None; items.len()],
                decisions,
                answers,
            });
        }

        // The conversation of each item, rendered once with a stand-in for the summary.
        let mut gen_reqs = Vec::with_capacity(items.len());
        let mut around: Vec<(String, String, Vec<ChatMessage>)> = Vec::with_capacity(items.len());
        let mut decisions = Vec::with_capacity(items.len());
        for (item, r) in items.iter().zip(rendered) {
            let chat = self.summary_chat(
                country,
                home,
                question_text(item),
                variant.drafts().then_some(r.as_str()),
            )?;
            let prompt = lm.chat_prompt(&chat)?;
            // The question is in the conversation's first turn; the benchmark's answer cue
            // ("Answer:") opens the meta agent's reply, where the reader reads the option, as
            // in the benchmark's own prompt.
            let (question, cue) = (item.question.stem.as_str(), item.question.cue.as_str());
            let turn = self.decision_turn(country, question)?;
            let mut conv = chat;
            conv.push(ChatMessage::assistant(SUMMARY_SLOT));
            conv.push(ChatMessage::user(turn.clone()));
            let full = lm.chat_prompt(&conv)?;
            let (before, after) = full.text.split_once(SUMMARY_SLOT).ok_or_else(|| {
                MethodError::Config(
                    "palette: the chat format dropped the meta agent's summary turn".into(),
                )
            })?;
            let after = if cue.is_empty() {
                after.to_string()
            } else {
                format!("{after}{cue}")
            };
            around.push((before.to_string(), after, conv));
            decisions.push(turn);
            gen_reqs.push(GenerateRequest {
                prompt,
                max_tokens: self.config.summary_tokens,
                sampling: self.config.sampling.clone(),
                stop: vec![],
            });
        }
        // The decision prompt of item i once its summary is known.
        let decision_prompt = |i: usize, summary: &str| -> Prompt {
            let (before, after, conv) = &around[i];
            let mut messages = conv.clone();
            let at = messages.len() - 2;
            messages[at] = ChatMessage::assistant(summary);
            Prompt {
                text: format!("{before}{summary}{after}"),
                messages: Some(messages),
                ..Prompt::default()
            }
        };

        let n = items.len();
        let (texts, answers) = if !self.config.reuse_kv
            || items
                .iter()
                .any(|i| matches!(i.readout, Readout::Generate { .. }))
        {
            // A generated read-out is a second generation: no scores to reuse the KV for.
            let texts = self.generate_texts(lm, &gen_reqs)?;
            let prompts = texts
                .iter()
                .enumerate()
                .map(|(i, t)| decision_prompt(i, t))
                .collect();
            let answers = read_options(lm, items, prompts)?;
            (texts, answers)
        } else {
            // Label tokens depend only on how the prompt ends, which the stand-in does not change.
            let skeletons = (0..n)
                .map(|i| score_request(lm, &items[i], decision_prompt(i, SUMMARY_SLOT)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut follow = |i: usize, g: &Generation| -> culturesteer_llm::Result<ScoreRequest> {
                Ok(ScoreRequest {
                    prompt: decision_prompt(i, &g.text),
                    ..skeletons[i].clone()
                })
            };
            let pairs = if self.config.sequential {
                let mut v = Vec::with_capacity(n);
                for k in 0..n {
                    v.extend(lm.generate_then_score(&gen_reqs[k..=k], &mut |_, g| follow(k, g))?);
                }
                v
            } else {
                lm.generate_then_score(&gen_reqs, &mut follow)?
            };
            let answers = pairs
                .iter()
                .zip(items)
                .map(|((_, r), item)| answer_from(item, r))
                .collect::<Result<Vec<_>, _>>()?;
            (pairs.into_iter().map(|(g, _)| g.text).collect(), answers)
        };
        let summaries = texts
            .into_iter()
            .map(|t| Some(t.trim().to_string()))
            .collect();
        Ok(Decided {
            summaries,
            decisions,
            answers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use culturesteer_core::CountryCode;

    fn palette(variant: PaletteVariant) -> Palette {
        Palette::new(
            PaletteConfig {
                variant,
                ..Default::default()
            },
            PaletteTemplates::embedded().unwrap(),
            ContinentMap::embedded().unwrap(),
        )
        .unwrap()
    }

    fn nigeria() -> Country {
        Country {
            code: CountryCode::new("NGA").unwrap(),
            name: "Nigeria".into(),
        }
    }

    #[test]
    fn draft_prompts_name_each_continent_and_the_country() {
        let p = palette(PaletteVariant::Full);
        let chats = p
            .draft_chats(
                &nigeria(),
                "Question: Is work important?\nOptions: A. Yes B. No",
            )
            .unwrap();
        assert_eq!(chats.len(), 5);
        for (chat, c) in chats.iter().zip(Continent::ALL) {
            assert!(chat[0].content.contains(c.name()), "{}", chat[0].content);
            assert!(
                chat[1].content.contains("Nigeria")
                    && chat[1].content.contains("Is work important?")
            );
            assert!(chat[1].content.contains(c.name()));
        }
    }

    #[test]
    fn summary_and_decision_follow_the_variant() {
        let p = palette(PaletteVariant::Full);
        let with = p
            .summary_chat(&nigeria(), Continent::Africa, "Q?", Some("[Asia agent]\nX"))
            .unwrap();
        assert!(
            with[1].content.contains("[Asia agent]\nX")
                && with[1].content.contains("Nigeria (Africa)")
        );
        let without = p
            .summary_chat(&nigeria(), Continent::Africa, "Q?", None)
            .unwrap();
        assert!(
            !without[1].content.contains("agents wrote"),
            "{}",
            without[1].content
        );
        let turn = p.decision_turn(&nigeria(), "Q?").unwrap();
        assert!(turn.contains("Nigeria"), "{turn}");
        let sr = p.decision_system_from_drafts(&nigeria(), "DRAFTS").unwrap();
        assert!(sr.contains("DRAFTS") && sr.contains("Nigeria"));
        assert_eq!(
            PaletteVariant::from_name("palette-sr"),
            Some(PaletteVariant::NoSelfRegulation)
        );
        assert_eq!(PaletteVariant::NoDrafts.name(), "palette-cd");
        assert!(PaletteVariant::from_name("palette-x").is_none());
    }

    #[test]
    fn the_modular_cue_replaces_the_drafts_own_answer_or_follows_it() {
        assert_eq!(
            cue_after_draft("Family matters.\nAnswer: B", "Answer:"),
            "Family matters.\nAnswer:"
        );
        assert_eq!(
            cue_after_draft("a answer: A. More.\n**ANSWER:** C", "Choice: "),
            "a answer: A. More.\nChoice: ",
            "the last cue, any case"
        );
        assert_eq!(
            cue_after_draft("No option given.", "Answer:"),
            "No option given.\nAnswer:"
        );
        assert_eq!(cue_after_draft("Cut off ", "Answer:"), "Cut off Answer:");
        assert_eq!(cue_after_draft("", "Answer:"), "Answer:");
    }

    #[test]
    fn parsed_drafts_are_counted_from_the_diagnostics() {
        let d = json!({ "drafts": [
            { "continent": "Africa", "text": "x", "choice": "A" },
            { "continent": "America", "text": "y", "choice": null },
            { "continent": "Asia", "text": "z", "choice": "C" },
        ]});
        assert_eq!(drafts_parsed(&d), Some((2, 3)));
        assert_eq!(drafts_parsed(&json!({ "drafts": [] })), None);
        assert_eq!(drafts_parsed(&json!({ "debiased": true })), None);
        assert_eq!(drafts_parsed(&json!({ "drafts": ["text"] })), None);
        assert_eq!(
            PaletteVariant::from_name("palette-modular"),
            Some(PaletteVariant::Modular)
        );
        assert_eq!(PaletteVariant::Joint.name(), "palette-joint");
    }

    #[test]
    fn draft_choices_are_parsed_from_the_last_answer_line() {
        let labels: Vec<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            parse_draft_choice("People value family.\nAnswer: B", &labels),
            Some(1)
        );
        assert_eq!(
            parse_draft_choice("answer: a? no.\n**Answer:** C.", &labels),
            Some(2),
            "markdown around the cue"
        );
        assert_eq!(
            parse_draft_choice("Answer: A then... Answer: (C)", &labels),
            Some(2)
        );
        assert_eq!(parse_draft_choice("Answer: Because", &labels), None);
        assert_eq!(parse_draft_choice("no cue at all B", &labels), None);
        // What SmolLM2-135M-Instruct writes instead of "Answer: X".
        assert_eq!(
            parse_draft_choice(
                "Options: A. x B. y\n\nThe answer is C. Not a problem at all.",
                &labels
            ),
            Some(2)
        );
        assert_eq!(
            parse_draft_choice(
                "The answer to this question would be: B. DK/Refused",
                &labels
            ),
            Some(1)
        );
        assert_eq!(
            parse_draft_choice(
                "The answer to the question \"What is the value of the choice?\" would be \"A\".",
                &labels
            ),
            Some(0)
        );
        assert_eq!(
            parse_draft_choice(
                "The answer to the question \"What is it?\" would be \"The United States is\"",
                &labels
            ),
            None,
            "a sentence that starts with a capital is not a label"
        );
        assert_eq!(
            parse_draft_choice("Answer: B.\nOthers might answer differently.", &labels),
            Some(1),
            "a later \"answer\" without a connector falls back to the earlier one"
        );
    }
}
