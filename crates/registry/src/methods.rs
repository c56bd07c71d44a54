//! Every method `--method` accepts, in display order, and how each is built.

use crate::RegistryError;
use culturesteer_core::disca::{DiscaConfig, DiscaMode};
use culturesteer_core::CountryCode;
use culturesteer_data::palette::{ContinentMap, PaletteTemplates};
use culturesteer_data::personas::{load_wvs_file, resolve_panel, wvs_profile_text};
use culturesteer_data::DataSource;
use culturesteer_methods::disca::GapCache;
use culturesteer_methods::{
    CountryPrompt, Disca, Method, Palette, PaletteConfig, PaletteVariant, SystemPrompt, Vanilla,
};
use std::collections::BTreeMap;
use std::path::Path;

/// DISCA's constants: the paper's or everything the authors' released code does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Preset {
    /// The headline number has no country prior (the paper does not describe it).
    #[default]
    Paper,
    /// The released code: the country prior is part of the `disca` number.
    Reference,
}

/// DISCA's configuration for a preset.
pub fn disca_preset(preset: Preset) -> DiscaConfig {
    match preset {
        Preset::Paper => DiscaConfig::paper(),
        Preset::Reference => DiscaConfig::reference(),
    }
}

/// Cultural Palette's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PaletteSettings {
    /// Most tokens of each continent agent's draft.
    pub draft_tokens: usize,
    /// Most tokens of the meta agent's summary.
    pub summary_tokens: usize,
    /// Continent overrides for target countries, e.g. "RUS=Europe,USA=America" (source
    /// `user`; the default table is CultureSPA's grouping for its 18 countries, UN M49 otherwise).
    pub continents: Option<String>,
    /// Temperature of the expert gate's softmax.
    pub gate_temperature: f64,
}

impl Default for PaletteSettings {
    fn default() -> Self {
        Self {
            draft_tokens: 96,
            summary_tokens: 128,
            continents: None,
            gate_temperature: culturesteer_methods::gate::DEFAULT_GATE_TEMPERATURE,
        }
    }
}

impl PaletteSettings {
    /// The full variant's configuration, the templates and the continent map.
    pub fn parts(
        &self,
        data: &DataSource,
    ) -> Result<(PaletteConfig, PaletteTemplates, ContinentMap), RegistryError> {
        let continents =
            ContinentMap::load(data).map_err(|e| RegistryError::build("palette", e))?;
        let continents = match &self.continents {
            Some(spec) => continents
                .with_override_spec(spec)
                .map_err(|e| RegistryError::build("--continents", e))?,
            None => continents,
        };
        let cfg = PaletteConfig {
            draft_tokens: self.draft_tokens,
            summary_tokens: self.summary_tokens,
            gate_temperature: self.gate_temperature,
            ..PaletteConfig::default()
        };
        let templates =
            PaletteTemplates::load(data).map_err(|e| RegistryError::build("palette", e))?;
        Ok((cfg, templates, continents))
    }
}

/// What building methods needs besides their names.
pub struct MethodContext<'a> {
    pub countries: &'a [CountryCode],
    pub data: &'a DataSource,
    /// DISCA persona panels from a JSON file instead of the shipped WVS data.
    pub personas: Option<&'a Path>,
    /// DISCA persona panels from the individual-level WVS file.
    pub wvs: Option<&'a Path>,
    pub preset: Preset,
    pub seed: u64,
    pub palette: &'a PaletteSettings,
    /// DISCA's panel gaps, shared by every DISCA method built with this context (and across
    /// the seeds of a run: gaps do not depend on the seed).
    pub gaps: &'a GapCache,
}

/// State shared by the methods of one [`build_methods`] call: DISCA's persona panels are read
/// once for every DISCA variant.
#[derive(Default)]
pub struct Shared {
    panels: Option<Panels>,
}

impl Shared {
    /// DISCA's persona panels, read on first use.
    fn panels(&mut self, ctx: &MethodContext) -> Result<&Panels, RegistryError> {
        let panels = match self.panels.take() {
            Some(p) => p,
            None => load_panels(ctx)?,
        };
        Ok(self.panels.insert(panels))
    }
}

struct Panels {
    texts: BTreeMap<CountryCode, Vec<String>>,
    /// The whole-population persona (`all`; the panel's last when none is so named).
    whole: BTreeMap<CountryCode, String>,
    provenance: BTreeMap<CountryCode, serde_json::Value>,
}

/// Builds one method: (its name, the context, state shared within one call).
pub type Build =
    fn(&'static str, &MethodContext, &mut Shared) -> Result<Box<dyn Method>, RegistryError>;

/// One method.
pub struct MethodSpec {
    /// The name `--method` takes (and the serve API's `steering`).
    pub name: &'static str,
    /// One line for `--help` and `list`.
    pub help: &'static str,
    /// Its family, for grouping in help (baseline, disca, palette).
    pub family: &'static str,
    /// Whether `serve` offers it as a steering of `/v1/choose`.
    pub servable: bool,
    /// Whether `ablate` runs it by default (baselines, the full method, one switch off at a
    /// time).
    pub ablation_grid: bool,
    pub build: Build,
}

/// Every method, in display order.
pub static METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "vanilla",
        help: "the question alone",
        family: "baseline",
        servable: true,
        ablation_grid: true,
        build: |_, _, _| Ok(Box::new(Vanilla)),
    },
    MethodSpec {
        name: "country-prompt",
        help: "a system prompt: answer as a typical respondent from the country would",
        family: "baseline",
        servable: true,
        ablation_grid: true,
        build: |_, _, _| Ok(Box::new(CountryPrompt)),
    },
    MethodSpec {
        name: "wvs-profile",
        help: "a system prompt describing the country's WVS-7 value profile",
        family: "baseline",
        servable: false,
        ablation_grid: false,
        build: wvs_profile,
    },
    MethodSpec {
        name: "persona-prompt",
        help: "a system prompt: the whole-population persona of DISCA's panel, asked once (the persona text without DISCA's estimator)",
        family: "baseline",
        servable: false,
        ablation_grid: true,
        build: persona_prompt,
    },
    MethodSpec {
        name: "disca-consensus",
        help: "DISCA ablation: the persona consensus only (no importance sampling)",
        family: "disca",
        servable: false,
        ablation_grid: true,
        build: |n, c, s| {
            disca(n, c, s, |d| DiscaConfig {
                mode: DiscaMode::ConsensusOnly,
                ..d
            })
        },
    },
    MethodSpec {
        name: "disca",
        help: "DISCA: persona-panel logit steering with positional debiasing (Dao et al.)",
        family: "disca",
        servable: true,
        ablation_grid: true,
        build: |n, c, s| disca(n, c, s, |d| d),
    },
    MethodSpec {
        name: "disca-no-persona",
        help: "DISCA ablation: one agent equal to the base agent (the authors' ablation)",
        family: "disca",
        servable: false,
        ablation_grid: true,
        build: |n, c, s| {
            disca(n, c, s, |d| DiscaConfig {
                mode: DiscaMode::NoPersona,
                ..d
            })
        },
    },
    MethodSpec {
        name: "disca-always-is",
        help: "DISCA ablation: importance sampling on every item (no gate)",
        family: "disca",
        servable: false,
        ablation_grid: true,
        build: |n, c, s| {
            disca(n, c, s, |d| DiscaConfig {
                mode: DiscaMode::AlwaysOnIs,
                ..d
            })
        },
    },
    MethodSpec {
        name: "disca-no-debias",
        help: "DISCA ablation: the original label order only (no positional debiasing)",
        family: "disca",
        servable: false,
        ablation_grid: true,
        build: |n, c, s| {
            disca(n, c, s, |d| DiscaConfig {
                debias: false,
                ..d
            })
        },
    },
    MethodSpec {
        name: "disca-floor",
        help: "DISCA ablation: persona utility floor 0.5",
        family: "disca",
        servable: false,
        ablation_grid: true,
        build: |n, c, s| {
            disca(n, c, s, |d| DiscaConfig {
                persona_floor: 0.5,
                ..d
            })
        },
    },
    MethodSpec {
        name: "palette",
        help: "Cultural Palette: continent agents' drafts, a meta agent's summary, the decision (Yuan et al.)",
        family: "palette",
        servable: true,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
    MethodSpec {
        name: "palette-cd",
        help: "Cultural Palette ablation: without cultural drafts",
        family: "palette",
        servable: false,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
    MethodSpec {
        name: "palette-sr",
        help: "Cultural Palette ablation: without self-regulation (drafts go straight to the decision)",
        family: "palette",
        servable: false,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
    MethodSpec {
        name: "palette-cm",
        help: "Cultural Palette ablation: without merging of expert adapters (= palette without experts)",
        family: "palette",
        servable: false,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
    MethodSpec {
        name: "palette-modular",
        help: "Cultural Palette baseline without a meta agent: the mean of the five continent agents' option distributions, each read after its own draft",
        family: "palette",
        servable: false,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
    MethodSpec {
        name: "palette-joint",
        help: "Cultural Palette baseline: joint merge, the meta agent with all five expert adapters at weight 1/5, no gate (= palette without experts)",
        family: "palette",
        servable: false,
        ablation_grid: false,
        build: |n, c, _| palette(n, c),
    },
];

/// The entry of `name`, or an error listing every name.
pub fn method(name: &str) -> Result<&'static MethodSpec, RegistryError> {
    METHODS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| RegistryError::UnknownMethod {
            name: name.to_string(),
            available: names(|_| true),
        })
}

/// The names of the methods that pass `keep`, comma-separated.
pub fn names(keep: impl Fn(&MethodSpec) -> bool) -> String {
    METHODS
        .iter()
        .filter(|m| keep(m))
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the named methods (trimmed; vanilla is added first when a DISCA method is asked for
/// without it, as DISCA's reports compare with it). Every DISCA method shares `ctx.gaps`.
pub fn build_methods(
    names: &[String],
    ctx: &MethodContext,
) -> Result<Vec<Box<dyn Method>>, RegistryError> {
    let mut specs: Vec<&'static MethodSpec> = names
        .iter()
        .map(|n| method(n.trim()))
        .collect::<Result<_, _>>()?;
    if specs.iter().any(|m| m.family == "disca") && !specs.iter().any(|m| m.name == "vanilla") {
        specs.insert(0, method("vanilla")?);
    }
    let mut shared = Shared::default();
    specs
        .into_iter()
        .map(|m| (m.build)(m.name, ctx, &mut shared))
        .collect()
}

/// Builds exactly the named method (no vanilla added), e.g. for a speed benchmark.
pub fn build_one(name: &str, ctx: &MethodContext) -> Result<Box<dyn Method>, RegistryError> {
    let m = method(name.trim())?;
    (m.build)(m.name, ctx, &mut Shared::default())
}

fn wvs_profile(
    name: &'static str,
    ctx: &MethodContext,
    _: &mut Shared,
) -> Result<Box<dyn Method>, RegistryError> {
    let mut texts = BTreeMap::new();
    for &c in ctx.countries {
        texts.insert(
            c,
            wvs_profile_text(ctx.data, c).map_err(|e| RegistryError::build(name, e))?,
        );
    }
    Ok(Box::new(SystemPrompt::new(name, texts)))
}

fn persona_prompt(
    name: &'static str,
    ctx: &MethodContext,
    shared: &mut Shared,
) -> Result<Box<dyn Method>, RegistryError> {
    let whole = shared.panels(ctx)?.whole.clone();
    Ok(Box::new(SystemPrompt::new(name, whole)))
}

fn disca(
    name: &'static str,
    ctx: &MethodContext,
    shared: &mut Shared,
    variant: fn(DiscaConfig) -> DiscaConfig,
) -> Result<Box<dyn Method>, RegistryError> {
    let panels = shared.panels(ctx)?;
    Ok(Box::new(
        Disca::new(
            name,
            variant(disca_preset(ctx.preset)),
            panels.texts.clone(),
            ctx.seed,
        )
        .with_gap_cache(ctx.gaps.clone())
        .with_provenance(panels.provenance.clone()),
    ))
}

/// DISCA's persona panels for the context's countries, with where each dimension came from.
fn load_panels(ctx: &MethodContext) -> Result<Panels, RegistryError> {
    let err = |e: culturesteer_data::DataError| RegistryError::build("persona panels", e);
    // The WVS file is read once for all countries.
    let wvs = match (ctx.personas, ctx.wvs) {
        (None, Some(path)) => Some(load_wvs_file(path, Some(ctx.countries)).map_err(err)?),
        _ => None,
    };
    let mut texts = BTreeMap::new();
    let mut whole = BTreeMap::new();
    let mut provenance = BTreeMap::new();
    for &c in ctx.countries {
        let panel = match &wvs {
            Some(w) => w.panel(c),
            None => resolve_panel(ctx.personas, ctx.data, c),
        }
        .map_err(err)?;
        provenance.insert(
            c,
            serde_json::json!({ "source": panel.source, "dimensions": panel.dimensions, "left_out": panel.missing_dimensions }),
        );
        if let Some(p) = panel
            .personas
            .iter()
            .find(|p| p.id == "all")
            .or(panel.personas.last())
        {
            whole.insert(c, p.text.clone());
        }
        texts.insert(c, panel.personas.into_iter().map(|x| x.text).collect());
    }
    Ok(Panels {
        texts,
        whole,
        provenance,
    })
}

fn palette(name: &'static str, ctx: &MethodContext) -> Result<Box<dyn Method>, RegistryError> {
    let variant = PaletteVariant::from_name(name)
        .ok_or_else(|| RegistryError::build(name, "not a Cultural Palette variant"))?;
    let (cfg, templates, continents) = ctx.palette.parts(ctx.data)?;
    Ok(Box::new(
        Palette::new(PaletteConfig { variant, ..cfg }, templates, continents)
            .map_err(|e| RegistryError::build(name, e))?
            .with_targets(ctx.countries),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(
        countries: &'a [CountryCode],
        palette: &'a PaletteSettings,
        gaps: &'a GapCache,
    ) -> MethodContext<'a> {
        MethodContext {
            countries,
            data: &DataSource::Embedded,
            personas: None,
            wvs: None,
            preset: Preset::Paper,
            seed: 42,
            palette,
            gaps,
        }
    }

    #[test]
    fn every_entry_builds_under_its_own_name() {
        let countries = [CountryCode::new("USA").unwrap()];
        let (palette, gaps) = (PaletteSettings::default(), GapCache::default());
        for m in METHODS {
            let built = build_methods(&[m.name.to_string()], &ctx(&countries, &palette, &gaps))
                .unwrap_or_else(|e| panic!("{}: {e}", m.name));
            let names: Vec<&str> = built.iter().map(|b| b.name()).collect();
            if m.family == "disca" {
                assert_eq!(names, vec!["vanilla", m.name]);
                assert!(built[1].stochastic());
            } else {
                assert_eq!(names, vec![m.name]);
                assert!(!built[0].stochastic());
            }
        }
    }

    #[test]
    fn names_are_unique_and_palette_variants_match_the_methods_crate() {
        let mut seen = std::collections::BTreeSet::new();
        for m in METHODS {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(!m.help.is_empty() && !m.help.ends_with('.'), "{}", m.name);
            assert_eq!(
                m.family == "palette",
                PaletteVariant::from_name(m.name).is_some(),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn unknown_names_list_the_available_ones() {
        let err = method("dsica").err().unwrap().to_string();
        assert!(err.starts_with("unknown method \"dsica\""), "{err}");
        assert!(
            err.contains("vanilla, country-prompt, wvs-profile"),
            "{err}"
        );
        let countries = [CountryCode::new("USA").unwrap()];
        let (palette, gaps) = (PaletteSettings::default(), GapCache::default());
        let c = ctx(&countries, &palette, &gaps);
        assert!(build_methods(&["vanilla".into(), " nope ".into()], &c).is_err());
        // Names are trimmed.
        assert_eq!(build_methods(&[" disca ".into()], &c).unwrap().len(), 2);
    }

    #[test]
    fn persona_prompt_asks_with_the_whole_population_persona() {
        use culturesteer_eval::multitp::{MultiTpDisca, MultiTpDiscaOptions};
        use culturesteer_eval::Benchmark;
        use culturesteer_llm::standin::{Call, StandIn};
        let usa = CountryCode::new("USA").unwrap();
        let (palette, gaps) = (PaletteSettings::default(), GapCache::default());
        let mut m = build_one("persona-prompt", &ctx(&[usa], &palette, &gaps)).unwrap();
        let bench =
            MultiTpDisca::load(&DataSource::Embedded, MultiTpDiscaOptions::default()).unwrap();
        let c = bench.country(usa).unwrap();
        let items: Vec<_> = bench.items(&c).unwrap().into_iter().take(2).collect();
        let mut lm = StandIn::new();
        let log = lm.log();
        let country = culturesteer_methods::Country {
            code: c.code,
            name: c.name,
        };
        m.answer(&mut lm, &country, &items).unwrap();
        let panel = resolve_panel(None, &DataSource::Embedded, usa).unwrap();
        let all = &panel.personas.iter().find(|p| p.id == "all").unwrap().text;
        let others: Vec<&String> = panel
            .personas
            .iter()
            .filter(|p| p.id != "all")
            .map(|p| &p.text)
            .collect();
        let prompts: Vec<String> = log
            .calls()
            .into_iter()
            .flat_map(|c| match c {
                Call::Score(p) => p,
                Call::Generate(_) => vec![],
            })
            .collect();
        assert_eq!(prompts.len(), 2, "one prompt per item");
        for p in &prompts {
            assert!(p.contains(all.as_str()));
            assert!(others.iter().all(|o| o == &all || !p.contains(o.as_str())));
        }
    }

    #[test]
    fn disca_variants_share_one_panel_load_and_one_gap_cache() {
        let countries = [CountryCode::new("USA").unwrap()];
        let (palette, gaps) = (PaletteSettings::default(), GapCache::default());
        let names: Vec<String> = METHODS
            .iter()
            .filter(|m| m.family == "disca")
            .map(|m| m.name.to_string())
            .collect();
        let built = build_methods(&names, &ctx(&countries, &palette, &gaps)).unwrap();
        assert_eq!(built.len(), names.len() + 1);
        let configs: Vec<serde_json::Value> = built[1..].iter().map(|m| m.config()).collect();
        // Same panels everywhere, different DISCA settings.
        assert!(configs.windows(2).all(|w| w[0]["panels"] == w[1]["panels"]));
        assert!(configs.windows(2).all(|w| w[0]["disca"] != w[1]["disca"]));
    }
}
