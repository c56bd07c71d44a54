//! `culturesteer score` and `culturesteer generate`: poke at a model.

use crate::model_opts::ModelOpts;
use anyhow::{bail, Result};
use clap::Args;
use culturesteer_llm::{
    ChatMessage, GenerateRequest, LanguageModel, Prompt, Sampling, ScoreRequest,
};

#[derive(Args, Debug)]
pub struct PromptArgs {
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user turn in the model's chat format.
    #[arg(long)]
    pub chat: bool,
    /// System text (implies --chat).
    #[arg(long)]
    pub system: Option<String>,
}

impl PromptArgs {
    fn build(&self, lm: &dyn LanguageModel) -> Result<Prompt> {
        if self.chat || self.system.is_some() {
            let mut msgs = Vec::new();
            if let Some(s) = &self.system {
                msgs.push(ChatMessage::system(s.clone()));
            }
            msgs.push(ChatMessage::user(self.prompt.clone()));
            Ok(lm.chat_prompt(&msgs)?)
        } else {
            Ok(Prompt::from(self.prompt.as_str()))
        }
    }
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Comma-separated candidate continuations, each scored as a whole string.
    #[arg(long, value_delimiter = ',')]
    pub candidates: Option<Vec<String>>,
    /// How many most likely next tokens to print.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelOpts,
}

pub fn run_score(a: ScoreArgs) -> Result<()> {
    let candidates = a.candidates.clone().unwrap_or_default();
    if a.candidates.is_some() && candidates.iter().all(|c| c.is_empty()) {
        bail!("--candidates is empty: give at least one non-empty candidate");
    }
    if candidates.iter().any(|c| c.is_empty()) {
        bail!("--candidates contains an empty candidate");
    }
    let mut lm = a.model.open()?.lm;
    let prompt = a.prompt.build(lm.as_ref())?;
    let req = ScoreRequest {
        prompt: prompt.clone(),
        continuations: candidates,
        next_tokens: vec![],
        top_k: a.top_k,
        ..Default::default()
    };
    let res = lm.score(std::slice::from_ref(&req))?.remove(0);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res)?);
        return Ok(());
    }
    println!("prompt: {} tokens", res.prompt_tokens);
    if !res.continuations.is_empty() {
        let lps: Vec<f64> = res.continuations.iter().map(|c| c.logprob).collect();
        let max = lps.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = lps.iter().map(|l| (l - max).exp()).sum();
        println!(
            "{:<24} {:>10} {:>8} {:>12}",
            "candidate", "log-prob", "tokens", "renormalised"
        );
        for c in &res.continuations {
            println!(
                "{:<24} {:>10.4} {:>8} {:>12.4}",
                format!("{:?}", c.text),
                c.logprob,
                c.tokens.len(),
                (c.logprob - max).exp() / z
            );
        }
    }
    if !res.top_k.is_empty() {
        println!("top {} next tokens:", res.top_k.len());
        for t in &res.top_k {
            println!(
                "  {:>8} {:<20} {:>10.4}",
                t.token.0,
                format!("{:?}", t.piece),
                t.logprob
            );
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus mass kept when sampling.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop strings (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub model: ModelOpts,
}

pub fn run_generate(a: GenerateArgs) -> Result<()> {
    if !(a.temperature >= 0.0) || !(a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--temperature must be ≥ 0 and --top-p in (0, 1]");
    }
    let mut lm = a.model.open()?.lm;
    let prompt = a.prompt.build(lm.as_ref())?;
    let sampling = if a.temperature == 0.0 {
        Sampling::Greedy
    } else {
        Sampling::Seeded {
            temperature: a.temperature,
            top_p: a.top_p,
            seed: a.seed,
        }
    };
    let g = lm
        .generate(&[GenerateRequest {
            prompt,
            max_tokens: a.max_tokens,
            sampling,
            stop: a.stop,
        }])?
        .remove(0);
    println!("{}", g.text);
    Ok(())
}
