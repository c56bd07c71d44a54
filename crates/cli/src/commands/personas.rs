//! `culturesteer personas`: show DISCA persona panels (WVS wave 7) without loading a model.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use culturesteer_core::CountryCode;
use culturesteer_data::goqa::GOQA_SUBSET;
use culturesteer_data::personas::{
    country_prompt_name, load_panel, load_wvs_profile_text, shipped_country_sources, PersonaSource,
    PersonaSourceKind,
};
use culturesteer_data::wvs::GOQA_WVS_ITEMS;
use culturesteer_data::DataSource;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PersonasCmd {
    /// Print a country's persona panel (label and system text of each persona).
    ///
    /// Source, first match wins: `--personas FILE`, else `--wvs FILE`, else the shipped WVS-7
    /// country marginals (19 countries), else the WVS items of GlobalOpinionQA (data/wvs/
    /// goqa_wvs_items.json: every DISCA country; dimensions without answers are left out and
    /// the output says which dimension came from which items; see `personas list`).
    ///
    /// With `--wvs`, the paper's procedure (specs/disca.md §3): respondents born 1900-2010 and
    /// surveyed in 2015 or later; cohorts young (age < 36), middle (36-55), older (56+), plus
    /// everyone; ten value dimensions scored as the mean of their items (negative codes
    /// dropped), rounded to 3 decimals, normalised and cut at quartiles; a score <= 0 skips its
    /// sentence. Panel: [young, middle, older, all].
    ///
    /// Without a WVS file (our extension; the marginals have no age breakdown): each item is
    /// recoded to the inverted file's coding (Q6, Q46, Q29-Q31, Q199: 5 - code; Q33: 6 - code;
    /// Q57: 3 - code; Q200: 4 - code; Q254: 5 - code, "not of this nationality" dropped;
    /// Q17, Q19-Q23: mentioned = 1, else 0; Q152, Q153, Q177-Q182: the code) and a
    /// dimension's items are pooled, each weighted by its share of respondents who answered.
    /// The whole-country persona uses each dimension's pooled mean, as above. The three
    /// others use, for every dimension, the answer at the 25th, 50th and 75th percentile of
    /// the pooled answers (the first answer whose cumulative share reaches p), ordered toward
    /// the dimension's named pole (more religious, more independence-minded, more permissive,
    /// more trusting, more active, prouder, happier, more egalitarian, more post-materialist,
    /// more tolerant); an answer of 0 counts here. Panel: [q25, q50, q75, all].
    ///
    /// Texts are English only: the authors' pre-translated persona languages are not shipped.
    /// The base agent ("You are a helpful assistant.") is not part of the panel.
    Show(ShowArgs),
    /// List the countries with shipped WVS data (usable without --wvs or --personas): WVS-7
    /// marginals, or the WVS items of GlobalOpinionQA.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// ISO 3166-1 alpha-3 country code, e.g. USA.
    #[arg(long)]
    pub country: String,
    /// WVS-7 individual-level "inverted" CSV (WVS_Cross-National_Wave_7_inverted_csv_v6_0.csv,
    /// from worldvaluessurvey.org; not shipped): age-cohort personas as in the paper.
    #[arg(long, value_name = "FILE", conflicts_with = "personas")]
    pub wvs: Option<PathBuf>,
    /// JSON persona texts: {"USA": [{"label": "...", "text": "..."}, ...], ...} or one list
    /// [...] for every country; entries may also be plain strings; 1 to 16 personas each.
    #[arg(long, value_name = "FILE")]
    pub personas: Option<PathBuf>,
    /// Directory with the data/ layout to read the WVS marginals from instead of the
    /// embedded copy.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also print the one-paragraph WVS-profile prompt (the whole-country descriptors; not
    /// available with --personas).
    #[arg(long)]
    pub profile: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Directory with the data/ layout to read the WVS marginals from instead of the
    /// embedded copy.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn data_source(dir: &Option<PathBuf>) -> DataSource {
    match dir {
        Some(d) => DataSource::dir(d),
        None => DataSource::Embedded,
    }
}

pub fn run(cmd: PersonasCmd) -> Result<()> {
    match cmd {
        PersonasCmd::Show(a) => show(a),
        PersonasCmd::List(a) => list(a),
    }
}

fn show(a: ShowArgs) -> Result<()> {
    let country = CountryCode::new(&a.country.trim().to_ascii_uppercase())
        .map_err(|e| anyhow!("--country: {e}"))?;
    let data = data_source(&a.data_dir);
    let source = PersonaSource::resolve(a.personas.as_deref(), a.wvs.as_deref(), &data);
    let panel = load_panel(&source, country).context("persona panel")?;
    let profile = if a.profile {
        Some(load_wvs_profile_text(&source, country).context("WVS profile")?)
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::to_value(&panel)?;
        if let (Some(p), Some(obj)) = (&profile, v.as_object_mut()) {
            obj.insert("profile".into(), serde_json::Value::String(p.clone()));
        }
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "{} ({}): {} personas from the {} {}\n",
        country,
        country_prompt_name(country),
        panel.len(),
        panel.source,
        match panel.source {
            PersonaSourceKind::Goqa => format!(
                "{} and {}",
                data.display_path(GOQA_WVS_ITEMS),
                data.display_path(GOQA_SUBSET)
            ),
            _ => source.display(),
        }
    );
    if !panel.dimensions.is_empty() || !panel.missing_dimensions.is_empty() {
        writeln!(out, "\nValue dimensions and where their answers come from:")?;
        for d in &panel.dimensions {
            writeln!(
                out,
                "  {:<24} {} ({})",
                d.dimension.key(),
                d.source,
                d.items.join(", ")
            )?;
        }
        for d in &panel.missing_dimensions {
            writeln!(out, "  {:<24} left out: no data for {country}", d.key())?;
        }
    }
    for (i, p) in panel.personas.iter().enumerate() {
        writeln!(out, "\n[{}] {} - {}\n{}", i + 1, p.id, p.label, p.text)?;
    }
    if let Some(p) = profile {
        writeln!(out, "\n[WVS profile]\n{p}")?;
    }
    emit(&out)
}

fn list(a: ListArgs) -> Result<()> {
    let data = data_source(&a.data_dir);
    let countries = shipped_country_sources(&data)?;
    if a.json {
        let v: Vec<serde_json::Value> = countries
            .iter()
            .map(|(c, n, k)| serde_json::json!({ "country": c, "name": n, "source": k }))
            .collect();
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = String::new();
    for (c, n, k) in &countries {
        writeln!(out, "{c}  {n:<32} {k}")?;
    }
    emit(&out)
}
