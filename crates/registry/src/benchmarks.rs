//! Every benchmark `eval` accepts, and how each is loaded.

use crate::RegistryError;
use culturesteer_core::metrics::Vsm13Config;
use culturesteer_data::DataSource;
use culturesteer_eval::goqa::{Goqa, GoqaOptions};
use culturesteer_eval::multitp::{
    Aggregation, MultiTp, MultiTpDisca, MultiTpDiscaOptions, MultiTpOptions, MultiTpReader,
};
use culturesteer_eval::vsm13::{Vsm13, Vsm13Options};
use culturesteer_eval::Benchmark;

/// Every benchmark's options (each benchmark reads its own).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    /// multitp: system role (normal, default, expert).
    pub system_role: String,
    /// multitp: the model's chat format (`false`: raw completion prompt).
    pub chat: bool,
    /// multitp: per-dimension preference from the choice or the mean probability.
    pub aggregation: Aggregation,
    /// multitp: how the choice is read.
    pub multitp_reader: MultiTpReader,
    /// multitp: most generated tokens per answer with the generate-parse reader.
    pub max_tokens: usize,
    /// multitp-disca: decision temperature on [z_A, z_B].
    pub decision_temperature: f64,
    /// goqa: option reader, "top-k[:N]" or "next-token".
    pub goqa_reader: String,
    /// goqa: S_align divergence.
    pub s_align: String,
    /// vsm13: answer mode.
    pub vsm13_answer_mode: String,
    /// vsm13: index constants C and the MAS second weight.
    pub vsm13_config: Vsm13Config,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            system_role: "normal".into(),
            chat: true,
            aggregation: Aggregation::Choice,
            multitp_reader: MultiTpReader::Continuation,
            max_tokens: 48,
            decision_temperature: MultiTpDiscaOptions::default().decision_temperature,
            goqa_reader: "top-k:10".into(),
            s_align: "js-divergence-e".into(),
            vsm13_answer_mode: "logits_expectation".into(),
            vsm13_config: Vsm13Config::default(),
        }
    }
}

/// Loads one benchmark from the data with the options.
pub type Load = fn(&DataSource, &BenchOptions) -> Result<Box<dyn Benchmark>, RegistryError>;

/// One benchmark.
pub struct BenchmarkSpec {
    /// The name `eval` takes.
    pub name: &'static str,
    /// One line for `--help` and `list`.
    pub help: &'static str,
    pub load: Load,
}

fn err(name: &str) -> impl Fn(culturesteer_eval::BenchError) -> RegistryError + '_ {
    move |e| RegistryError::build(name, e)
}

fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, RegistryError>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| RegistryError::build(flag, e))
}

/// Every benchmark, in display order.
pub static BENCHMARKS: &[BenchmarkSpec] = &[
    BenchmarkSpec {
        name: "multitp",
        help: "MultiTP's own protocol: 460 English vignettes, group texts scored as continuations",
        load: |data, o| {
            let opts = MultiTpOptions {
                system_role: o.system_role.clone(),
                chat: o.chat,
                aggregation: o.aggregation,
                reader: o.multitp_reader,
                max_tokens: o.max_tokens,
            };
            Ok(Box::new(MultiTp::load(data, opts).map_err(err("multitp"))?))
        },
    },
    BenchmarkSpec {
        name: "multitp-disca",
        help: "the DISCA paper's protocol: frozen 310-scenario pools, A/B frame, T = 0.5",
        load: |data, o| {
            let opts = MultiTpDiscaOptions {
                decision_temperature: o.decision_temperature,
            };
            Ok(Box::new(
                MultiTpDisca::load(data, opts).map_err(err("multitp-disca"))?,
            ))
        },
    },
    BenchmarkSpec {
        name: "goqa",
        help:
            "GlobalOpinionQA as Modular Pluralism evaluates it; metric S_align (higher is better)",
        load: |data, o| {
            let opts = GoqaOptions {
                reader: parse("--goqa-reader", &o.goqa_reader)?,
                s_align: parse("--s-align", &o.s_align)?,
            };
            Ok(Box::new(Goqa::load(data, opts).map_err(err("goqa"))?))
        },
    },
    BenchmarkSpec {
        name: "vsm13",
        help: "Hofstede's VSM 2013 (24 items); metric L1 loss against Hofstede's scores",
        load: |data, o| {
            let opts = Vsm13Options {
                answer_mode: parse("--vsm13-answer-mode", &o.vsm13_answer_mode)?,
                config: o.vsm13_config,
            };
            Ok(Box::new(Vsm13::load(data, opts).map_err(err("vsm13"))?))
        },
    },
];

/// The entry of `name`, or an error listing every name.
pub fn benchmark(name: &str) -> Result<&'static BenchmarkSpec, RegistryError> {
    BENCHMARKS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| RegistryError::UnknownBenchmark {
            name: name.to_string(),
            available: BENCHMARKS
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Loads the named benchmark.
pub fn load_benchmark(
    name: &str,
    data: &DataSource,
    options: &BenchOptions,
) -> Result<Box<dyn Benchmark>, RegistryError> {
    (benchmark(name)?.load)(data, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_benchmark_loads_under_its_own_name() {
        for b in BENCHMARKS {
            let loaded = load_benchmark(b.name, &DataSource::Embedded, &BenchOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!(loaded.name(), b.name);
        }
    }

    #[test]
    fn unknown_names_and_bad_options_are_named() {
        let e = benchmark("gqoa").err().unwrap().to_string();
        assert_eq!(
            e,
            "unknown benchmark \"gqoa\" (available: multitp, multitp-disca, goqa, vsm13)"
        );
        let bad = BenchOptions {
            goqa_reader: "top-q".into(),
            ..BenchOptions::default()
        };
        let e = load_benchmark("goqa", &DataSource::Embedded, &bad)
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("--goqa-reader: "), "{e}");
    }
}
