//! The VSM13 scoring flags shared by `eval vsm13` and `tune softprompt|blackbox`: the index
//! constants C and the MAS second weight (specs/vsm13.md §4).

use anyhow::{bail, Result};
use clap::Args;
use culturesteer_core::metrics::{parse_vsm13_constants, MasSecondWeight, Vsm13Config};

#[derive(Args, Debug, Clone, Default)]
pub struct Vsm13Opts {
    /// VSM13 index constants C as KEY=NUMBER pairs, e.g. "PDI=20,IVR=-5" (any subset of PDI,
    /// IDV, MAS, UAI, LTO, IVR; the rest 0). The VSM 2013 manual publishes no values; the
    /// default is all 0.
    #[arg(long, default_value = "", value_name = "PDI=C,IDV=C,...")]
    pub vsm13_constants: String,
    /// Second weight of the MAS formula: 35 (the VSM 2013 manual, default) or 25 (as printed
    /// by Masoud et al. 2024).
    #[arg(long, default_value = "35", value_name = "35|25")]
    pub vsm13_mas_weight: String,
}

impl Vsm13Opts {
    /// The scoring configuration; a bad key, number or weight is a one-line error naming the
    /// flag and the token.
    pub fn config(&self) -> Result<Vsm13Config> {
        let constants = parse_vsm13_constants(&self.vsm13_constants)
            .map_err(|e| anyhow::anyhow!("--vsm13-constants: {e}"))?;
        let Some(mas_second_weight) = MasSecondWeight::from_weight(&self.vsm13_mas_weight) else {
            bail!(
                "--vsm13-mas-weight {:?}: use 35 (the manual) or 25 (Masoud et al.'s print)",
                self.vsm13_mas_weight
            );
        };
        Ok(Vsm13Config {
            constants,
            mas_second_weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_the_config_and_errors_name_flag_and_token() {
        let o = Vsm13Opts {
            vsm13_constants: "UAI=12.5,pdi=-3".into(),
            vsm13_mas_weight: "25".into(),
        };
        let c = o.config().unwrap();
        assert_eq!(c.constants, [-3.0, 0.0, 0.0, 12.5, 0.0, 0.0]);
        assert_eq!(c.mas_second_weight, MasSecondWeight::Masoud25);
        let d = Vsm13Opts {
            vsm13_constants: String::new(),
            vsm13_mas_weight: "35".into(),
        };
        assert_eq!(d.config().unwrap(), Vsm13Config::default());
        let e = Vsm13Opts {
            vsm13_constants: "PDI=1,FOO=2".into(),
            ..d.clone()
        }
        .config()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--vsm13-constants") && e.contains("\"FOO=2\""),
            "{e}"
        );
        let e = Vsm13Opts {
            vsm13_mas_weight: "30".into(),
            ..d
        }
        .config()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--vsm13-mas-weight") && e.contains("\"30\""),
            "{e}"
        );
    }
}
