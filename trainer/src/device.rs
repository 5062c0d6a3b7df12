//! What the command line and `run.json` name: the device to run on and the
//! dtypes of the forward pass and of saved weights.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

/// A floating-point dtype for the forward pass or for saved weights.
/// Written `f32` and `bf16`, on the command line and in `run.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The `torch_dtype` of a Hugging Face `config.json` for weights in this
    /// dtype.
    pub fn torch_name(self) -> &'static str {
        match self {
            Precision::F32 => "float32",
            Precision::Bf16 => "bfloat16",
        }
    }
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        match p {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// The device to run on: `cpu`, `cuda` (GPU 0) or `cuda:N`.
///
/// Not a `clap::ValueEnum`: a value enum is a fixed list of names, and
/// `cuda:N` carries a number. clap parses it through [`FromStr`] instead,
/// which refuses anything else with a message that lists the forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// The CUDA GPU of this ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// The candle device. A CUDA device needs a build with the `cuda`
    /// feature.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(_) if !cfg!(feature = "cuda") => Err(TrainerError::NoCuda),
            DeviceSpec::Cuda(ordinal) => Ok(Device::new_cuda(ordinal)?),
        }
    }

    /// The default dtype of the forward pass: bf16 on CUDA, f32 on the CPU.
    pub fn default_compute(self) -> Precision {
        match self {
            DeviceSpec::Cpu => Precision::F32,
            DeviceSpec::Cuda(_) => Precision::Bf16,
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = TrainerError;

    fn from_str(s: &str) -> Result<DeviceSpec> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| TrainerError::BadDevice(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        for (text, device) in [
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), device);
        }
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cudax", "cuda:", "cuda:-1", "CPU"] {
            let e = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(e.contains("use cpu, cuda or cuda:N"), "{e}");
        }
    }

    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
            assert!(e.contains("built without CUDA"), "{e}");
        }
    }

    #[test]
    fn precisions_serialize_as_their_names() {
        assert_eq!(serde_json::to_string(&Precision::Bf16).unwrap(), "\"bf16\"");
        assert_eq!(
            serde_json::from_str::<Precision>("\"f32\"").unwrap(),
            Precision::F32
        );
        use clap::ValueEnum;
        let names: Vec<_> = Precision::value_variants()
            .iter()
            .map(|p| p.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["f32", "bf16"]);
    }
}
