//! The model configuration: a Hugging Face Llama `config.json`, and the
//! presets shipped in `trainer/configs/`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result, TrainerError};

/// Llama-3 rope scaling (`rope_scaling` with `rope_type = "llama3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `"llama3"`; other types are refused.
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Overall scaling of low frequencies.
    pub factor: f64,
    /// Wavelengths past `original / low_freq_factor` are scaled fully.
    pub low_freq_factor: f64,
    /// Wavelengths below `original / high_freq_factor` are kept.
    pub high_freq_factor: f64,
    /// The context length the model was pre-trained with.
    pub original_max_position_embeddings: f64,
}

/// The fields of a Hugging Face `LlamaConfig` the model uses. Every other
/// field is kept as it was and written back on save.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Llama-3 rope scaling, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Longest context the model is meant for.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Standard deviation of the initial weights.
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    /// Every other field of `config.json`, kept as is.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn default_theta() -> f64 {
    10000.0
}

fn default_max_pos() -> usize {
    2048
}

fn default_init() -> f64 {
    0.02
}

/// Presets: name, file contents.
const PRESETS: &[(&str, &str)] = &[
    ("tiny", include_str!("../configs/tiny.json")),
    ("proxy-125m", include_str!("../configs/proxy-125m.json")),
    ("proxy-1b", include_str!("../configs/proxy-1b.json")),
];

impl LlamaConfig {
    /// Reads a `config.json`.
    pub fn load(path: &Path) -> Result<LlamaConfig> {
        let text = std::fs::read_to_string(path).at("reading", path)?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the contents of `path`, and checks it.
    fn parse(text: &str, path: &Path) -> Result<LlamaConfig> {
        let c: LlamaConfig = serde_json::from_str(text).map_err(|source| TrainerError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        match c.problem() {
            None => Ok(c),
            Some(problem) => Err(TrainerError::Config {
                path: path.to_path_buf(),
                problem,
            }),
        }
    }

    /// A preset by name (`tiny`, `proxy-125m`, `proxy-1b`) or a
    /// `config.json` path.
    pub fn preset_or_file(name: &str) -> Result<LlamaConfig> {
        match PRESETS.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => Self::parse(
                text,
                &Path::new("trainer/configs").join(format!("{name}.json")),
            ),
            None if Path::new(name).exists() => Self::load(Path::new(name)),
            None => Err(TrainerError::UnknownConfig {
                name: name.to_string(),
                presets: PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// What makes this configuration unusable, if anything.
    fn problem(&self) -> Option<String> {
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0 || kv == 0 {
            return Some("num_attention_heads and num_key_value_heads must be positive".into());
        }
        if !heads.is_multiple_of(kv) {
            return Some(format!(
                "num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv})"
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Some("head_dim must be even for RoPE".into());
        }
        if let Some(s) = &self.rope_scaling {
            if s.rope_type != "llama3" {
                return Some(format!(
                    "rope_scaling type {:?} is not supported (only \"llama3\")",
                    s.rope_type
                ));
            }
        }
        match self.extra.get("model_type") {
            Some(a) if a != "llama" => Some(format!("model_type {a} is not \"llama\"")),
            _ => None,
        }
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("config serializes");
        s.push('\n');
        s
    }

    /// The RoPE inverse frequencies, with Llama-3 scaling applied.
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim();
        (0..d / 2)
            .map(|k| {
                let f = 1.0 / self.rope_theta.powf(2.0 * k as f64 / d as f64);
                match &self.rope_scaling {
                    None => f,
                    Some(s) => {
                        let old = s.original_max_position_embeddings;
                        let (low_wavelen, high_wavelen) =
                            (old / s.low_freq_factor, old / s.high_freq_factor);
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / s.factor
                        } else {
                            let smooth = (old / wavelen - s.low_freq_factor)
                                / (s.high_freq_factor - s.low_freq_factor);
                            (1.0 - smooth) * f / s.factor + smooth * f
                        }
                    }
                }
            })
            .collect()
    }

    /// Parameter count.
    pub fn parameters(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let (q, kv) = (
            self.num_attention_heads * self.head_dim(),
            self.kv_heads() * self.head_dim(),
        );
        let layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * layer + h + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_have_their_sizes() {
        let size = |n: &str| LlamaConfig::preset_or_file(n).unwrap().parameters() as f64;
        assert!((size("tiny") / 1e6 - 10.0).abs() < 2.5, "{}", size("tiny"));
        assert!(
            (size("proxy-125m") / 1e6 - 125.0).abs() < 15.0,
            "{}",
            size("proxy-125m")
        );
        // The Llama-3.2-1B architecture: 1,235,814,400 parameters.
        assert_eq!(size("proxy-1b"), 1_235_814_400.0);
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = include_str!("../configs/proxy-1b.json");
        let path = Path::new("proxy-1b.json");
        let c = LlamaConfig::parse(text, path).unwrap();
        let again = LlamaConfig::parse(&c.to_json(), path).unwrap();
        assert_eq!(c, again);
        assert!(c.extra.contains_key("architectures"));
    }

    #[test]
    fn floats_survive_a_round_trip_bit_for_bit() {
        // A resumed run reads its config and state back from JSON: every f64
        // must come back with the same bits (serde_json's `float_roundtrip`;
        // without it, some 17-digit values come back one ulp off).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x >> 2) % 1e6;
            let back: f64 = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
        }
        let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
        c.rms_norm_eps = 1.000_000_000_000_000_2e-5;
        c.initializer_range = 0.1 + 0.2;
        let again = LlamaConfig::parse(&c.to_json(), Path::new("c.json")).unwrap();
        assert_eq!(again.rms_norm_eps.to_bits(), c.rms_norm_eps.to_bits());
        assert_eq!(
            again.initializer_range.to_bits(),
            c.initializer_range.to_bits()
        );
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let c = LlamaConfig::preset_or_file("proxy-1b").unwrap();
        let f = c.inv_freq();
        assert_eq!(f[0], 1.0);
        let plain = 1.0 / c.rope_theta.powf(2.0 * 31.0 / 64.0);
        assert!((f[31] - plain / 32.0).abs() < 1e-18);
        let e = LlamaConfig::parse(&text_with_rope("dynamic"), Path::new("c.json")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.json: rope_scaling type \"dynamic\" is not supported (only \"llama3\")"
        );
    }

    fn text_with_rope(kind: &str) -> String {
        include_str!("../configs/tiny.json").replace("\"llama3\"", &format!("{kind:?}"))
    }
}
