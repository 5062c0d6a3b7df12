//! Hugging Face checkpoints: `config.json` plus `model.safetensors`, or
//! `model-0000K-of-0000N.safetensors` shards listed in
//! `model.safetensors.index.json`, with HF tensor names. A checkpoint of a
//! run on a mix also carries the build's tokenizer ([`build_tokenizer`]),
//! as Hub checkpoints do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{SafeTensorError, View};
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::device::Precision;
use crate::error::{IoContext, Result, TrainerError};
use crate::model::Llama;

/// The single-file weights.
pub const WEIGHTS: &str = "model.safetensors";
/// The shard index of sharded weights.
pub const INDEX: &str = "model.safetensors.index.json";
/// The configuration.
pub const CONFIG: &str = "config.json";
/// Hugging Face's default shard size, 5 GB.
pub const MAX_SHARD_BYTES: u64 = 5_000_000_000;
/// The tokenizer.
pub const TOKENIZER: &str = "tokenizer.json";
/// The tokenizer's settings, with the chat template of a chat build.
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// `model.safetensors.index.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ShardIndex {
    metadata: BTreeMap<String, serde_json::Value>,
    weight_map: BTreeMap<String, String>,
}

/// Reads every tensor of a checkpoint directory, onto the CPU.
pub fn load_tensors(dir: &Path) -> Result<BTreeMap<String, Tensor>> {
    let index_path = dir.join(INDEX);
    let mut out = BTreeMap::new();
    if index_path.exists() {
        let text = std::fs::read_to_string(&index_path).at("reading", &index_path)?;
        let index: ShardIndex =
            serde_json::from_str(&text).map_err(|source| TrainerError::Json {
                path: index_path.clone(),
                source,
            })?;
        let files: BTreeSet<&String> = index.weight_map.values().collect();
        for file in files {
            out.extend(read_file(&dir.join(file))?);
        }
        for (name, file) in &index.weight_map {
            if !out.contains_key(name) {
                return Err(TrainerError::ShardIndex {
                    index: index_path,
                    name: name.clone(),
                    file: file.clone(),
                });
            }
        }
    } else {
        out.extend(read_file(&dir.join(WEIGHTS))?);
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| TrainerError::ReadTensors {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a checkpoint directory as a model on `device`.
pub fn load(dir: &Path, device: &Device, compute: DType) -> Result<Llama> {
    let config = LlamaConfig::load(&dir.join(CONFIG))?;
    let tensors = load_tensors(dir)?;
    Llama::from_tensors(&config, tensors, device, compute).map_err(|e| TrainerError::Checkpoint {
        dir: dir.to_path_buf(),
        source: Box::new(e),
    })
}

/// What [`init`] wrote.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// The model's parameter count.
    pub parameters: usize,
}

impl fmt::Display for Initialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ({} parameters)",
            self.dir.display(),
            self.parameters
        )
    }
}

/// Writes a freshly initialised checkpoint of `config` (weights drawn from
/// `seed`, see [`Llama::init`]) to `dir`, in `dtype`.
pub fn init(config: &LlamaConfig, seed: u64, dtype: Precision, dir: &Path) -> Result<Initialized> {
    let model = Llama::init(config, seed, &Device::Cpu, DType::F32)?;
    save(&model, dir, dtype, MAX_SHARD_BYTES, &[])?;
    Ok(Initialized {
        dir: dir.to_path_buf(),
        parameters: config.parameters(),
    })
}

/// Tensors in HF module order, converted to `dtype` on the CPU.
fn named_tensors(model: &Llama, dtype: Precision) -> Result<Vec<(String, Tensor)>> {
    model
        .params()
        .into_iter()
        .map(|(name, var)| {
            let t = var
                .as_tensor()
                .to_device(&Device::Cpu)?
                .to_dtype(dtype.into())?;
            Ok((name, t))
        })
        .collect()
}

/// Writes named tensors to one safetensors file, with the metadata
/// `{"format": "pt"}` that `transformers` expects.
///
/// The bytes are those of `safetensors::serialize`, but the file is written
/// here, a tensor at a time, rather than by `safetensors::serialize_to_file`:
/// that one writes a `tempfile::NamedTempFile` and renames it, and a temp
/// file is created with mode 0600 whatever the umask, so checkpoints were
/// unreadable to the rest of a group. This file is created as any other,
/// `0666 & !umask`. (A checkpoint is written under a temporary directory
/// name and renamed when complete, see [`save`], so the file needs no
/// temporary name of its own.)
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let fail = |source| TrainerError::WriteTensors {
        path: path.to_path_buf(),
        source,
    };
    let header = safetensors_header(tensors, metadata).map_err(fail)?;
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, File::create(path)?);
        file.write_all(&(header.bytes.len() as u64).to_le_bytes())?;
        file.write_all(&header.bytes)?;
        for &k in &header.order {
            file.write_all(&View::data(&tensors[k].1))?;
        }
        file.flush()
    };
    write().map_err(|e| fail(SafeTensorError::IoError(e)))
}

/// A safetensors header and the order of the tensors after it.
struct Header {
    /// The JSON, padded with spaces to a multiple of 8 bytes.
    bytes: Vec<u8>,
    /// Indexes into the tensors, in file order.
    order: Vec<usize>,
}

/// The header `safetensors::serialize` writes: tensors ordered by dtype
/// (widest alignment first), then by name, each with its byte range.
fn safetensors_header(
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> std::result::Result<Header, SafeTensorError> {
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| {
        let (na, ta) = &tensors[a];
        let (nb, tb) = &tensors[b];
        View::dtype(tb).cmp(&View::dtype(ta)).then(na.cmp(nb))
    });
    let mut offset = 0;
    let infos = order
        .iter()
        .map(|&k| {
            let (name, t) = &tensors[k];
            let n = View::data_len(t);
            let info = TensorInfo {
                dtype: View::dtype(t),
                shape: t.dims().to_vec(),
                data_offsets: (offset, offset + n),
            };
            offset += n;
            (name.clone(), info)
        })
        .collect();
    let mut bytes = serde_json::to_vec(&Metadata::new(Some(metadata), infos)?)?;
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(Header { bytes, order })
}

/// Bytes of a tensor's data.
fn size(t: &Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

/// Splits tensors, in order, into shards of at most `max_bytes` (a tensor
/// larger than that gets a shard of its own).
fn shards(tensors: Vec<(String, Tensor)>, max_bytes: u64) -> Vec<Vec<(String, Tensor)>> {
    let mut shards: Vec<Vec<(String, Tensor)>> = vec![Vec::new()];
    let mut in_shard = 0u64;
    for (name, t) in tensors {
        let s = size(&t);
        if in_shard > 0 && in_shard + s > max_bytes {
            shards.push(Vec::new());
            in_shard = 0;
        }
        in_shard += s;
        shards.last_mut().expect("one shard").push((name, t));
    }
    shards
}

/// Writes the weights into `dir`: `model.safetensors`, or shards and their
/// index.
fn write_weights(dir: &Path, shards: &[Vec<(String, Tensor)>]) -> Result<()> {
    if let [one] = shards {
        return write_safetensors(&dir.join(WEIGHTS), one);
    }
    let n = shards.len();
    let mut index = ShardIndex {
        metadata: BTreeMap::new(),
        weight_map: BTreeMap::new(),
    };
    let mut total = 0u64;
    for (k, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", k + 1);
        write_safetensors(&dir.join(&file), shard)?;
        for (name, t) in shard {
            total += size(t);
            index.weight_map.insert(name.clone(), file.clone());
        }
    }
    index.metadata.insert("total_size".into(), total.into());
    let path = dir.join(INDEX);
    let text = serde_json::to_string_pretty(&index).expect("the index serializes") + "\n";
    std::fs::write(&path, text).at("writing", &path)
}

/// A file [`save`] writes beside the weights.
pub enum Extra<'a> {
    /// A file of these bytes (`trainer_state.json`).
    Bytes(&'a str, Vec<u8>),
    /// A safetensors file of these tensors (`optimizer.safetensors`),
    /// written a tensor at a time like the weights.
    Tensors(&'a str, Vec<(String, Tensor)>),
    /// A copy of this file (`tokenizer.json`).
    Copy(&'a str, PathBuf),
}

/// The build directory of a mix: `OUT` for `OUT/mix/NAME` (or its `.json`
/// or `.mix` file).
fn build_dir(mix: &Path) -> Option<PathBuf> {
    let stem = match mix.extension().and_then(|e| e.to_str()) {
        Some("json" | "mix") => mix.with_extension(""),
        _ => mix.to_path_buf(),
    };
    stem.parent()?.parent().map(Path::to_path_buf)
}

/// The tokenizer files of the build that `mix` was made from
/// (`OUT/tokenizer.json` and `OUT/tokenizer_config.json`, those there are),
/// for [`save`] to copy into a checkpoint.
pub fn build_tokenizer(mix: &Path) -> Vec<Extra<'static>> {
    let Some(out) = build_dir(mix) else {
        return Vec::new();
    };
    [TOKENIZER, TOKENIZER_CONFIG]
        .into_iter()
        .map(|name| (name, out.join(name)))
        .filter(|(_, path)| path.is_file())
        .map(|(name, path)| Extra::Copy(name, path))
        .collect()
}

/// Saves `model` to `dir` in `dtype` (f32 reloads bit-exactly), as one file
/// or as shards of at most `max_shard_bytes` with an index. The directory is
/// written under a temporary name and renamed when complete; `extra` files
/// are written beside the weights. Every file gets the mode of any other new
/// file, `0666 & !umask` (see [`write_safetensors`]).
pub fn save(
    model: &Llama,
    dir: &Path,
    dtype: Precision,
    max_shard_bytes: u64,
    extra: &[Extra<'_>],
) -> Result<()> {
    let tmp = partial(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).at("removing", &tmp)?;
    }
    std::fs::create_dir_all(&tmp).at("creating", &tmp)?;
    write_weights(&tmp, &shards(named_tensors(model, dtype)?, max_shard_bytes))?;
    let mut config = model.config().clone();
    config
        .extra
        .insert("torch_dtype".into(), dtype.torch_name().into());
    let path = tmp.join(CONFIG);
    std::fs::write(&path, config.to_json()).at("writing", &path)?;
    for file in extra {
        match file {
            Extra::Bytes(name, bytes) => {
                let path = tmp.join(name);
                std::fs::write(&path, bytes).at("writing", &path)?;
            }
            Extra::Tensors(name, tensors) => write_safetensors(&tmp.join(name), tensors)?,
            // Read and written, not `fs::copy`: the copy gets the mode of
            // any new file, not the source's.
            Extra::Copy(name, from) => {
                let bytes = std::fs::read(from).at("reading", from)?;
                let path = tmp.join(name);
                std::fs::write(&path, bytes).at("writing", &path)?;
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).at("replacing", dir)?;
    }
    std::fs::rename(&tmp, dir).at("renaming to", dir)
}

fn partial(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(m: &Llama) -> Vec<(String, Vec<u32>)> {
        m.params()
            .into_iter()
            .map(|(k, v)| {
                let x = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                (k, x.iter().map(|f| f.to_bits()).collect())
            })
            .collect()
    }

    fn tiny() -> LlamaConfig {
        let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
        c.vocab_size = 64;
        c.num_hidden_layers = 2;
        c
    }

    #[test]
    fn f32_round_trip_is_bit_exact_single_and_sharded() {
        let dir = tempfile::tempdir().unwrap();
        for tied in [true, false] {
            let mut c = tiny();
            c.tie_word_embeddings = tied;
            let m = Llama::init(&c, 5, &Device::Cpu, DType::F32).unwrap();
            for (name, max) in [("one", MAX_SHARD_BYTES), ("sharded", 40_000)] {
                let d = dir.path().join(format!("{name}-{tied}"));
                save(&m, &d, Precision::F32, max, &[]).unwrap();
                assert_eq!(d.join(INDEX).exists(), name == "sharded");
                let back = load(&d, &Device::Cpu, DType::F32).unwrap();
                assert!(bits(&m) == bits(&back), "{name}, tied {tied}");
                assert_eq!(back.config().tie_word_embeddings, tied);
            }
        }
    }

    #[test]
    fn bf16_save_records_its_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let m = Llama::init(&tiny(), 5, &Device::Cpu, DType::F32).unwrap();
        save(
            &m,
            dir.path().join("b").as_path(),
            Precision::Bf16,
            MAX_SHARD_BYTES,
            &[],
        )
        .unwrap();
        let t = load_tensors(&dir.path().join("b")).unwrap();
        assert_eq!(t["model.norm.weight"].dtype(), DType::BF16);
        let c = LlamaConfig::load(&dir.path().join("b").join(CONFIG)).unwrap();
        assert_eq!(c.extra["torch_dtype"], "bfloat16");
    }

    #[test]
    fn safetensors_are_written_as_the_crate_serializes_them() {
        let dir = tempfile::tempdir().unwrap();
        let t = |v: Vec<f32>, dtype: DType| {
            let n = v.len();
            Tensor::from_vec(v, n, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        // Mixed dtypes and names out of order: the crate sorts them.
        let tensors = vec![
            ("b".to_string(), t(vec![1.0, 2.0, 3.0], DType::BF16)),
            ("a".to_string(), t(vec![4.0; 5], DType::F32)),
            ("c".to_string(), t(vec![-1.5], DType::F32)),
        ];
        let path = dir.path().join("x.safetensors");
        write_safetensors(&path, &tensors).unwrap();
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let expected =
            safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
                .unwrap();
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    #[cfg(unix)]
    #[test]
    fn checkpoint_files_get_the_mode_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let m = Llama::init(&tiny(), 5, &Device::Cpu, DType::F32).unwrap();
        let moments = vec![(
            "exp_avg.x".to_string(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        )];
        for (name, max) in [("one", MAX_SHARD_BYTES), ("sharded", 40_000)] {
            let d = dir.path().join(name);
            let extra = [Extra::Tensors("optimizer.safetensors", moments.clone())];
            save(&m, &d, Precision::F32, max, &extra).unwrap();
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                assert_eq!(mode(&p), mode(&plain), "{}", p.display());
            }
        }
    }

    #[test]
    fn a_checkpoint_carries_the_tokenizer_of_the_mixs_build() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        std::fs::create_dir_all(out.join("mix")).unwrap();
        std::fs::write(out.join(TOKENIZER), b"{\"model\": 1}").unwrap();
        let m = Llama::init(&tiny(), 5, &Device::Cpu, DType::F32).unwrap();
        for mix in ["mix/m", "mix/m.json", "mix/m.mix"] {
            let ckpt = dir.path().join("ckpt");
            let extra = build_tokenizer(&out.join(mix));
            save(&m, &ckpt, Precision::F32, MAX_SHARD_BYTES, &extra).unwrap();
            assert_eq!(
                std::fs::read(ckpt.join(TOKENIZER)).unwrap(),
                b"{\"model\": 1}"
            );
            assert!(!ckpt.join(TOKENIZER_CONFIG).exists(), "{mix}");
        }
        std::fs::write(out.join(TOKENIZER_CONFIG), b"{}").unwrap();
        assert_eq!(build_tokenizer(&out.join("mix/m")).len(), 2);
        assert!(build_tokenizer(Path::new("m")).is_empty());
        assert!(build_tokenizer(&dir.path().join("elsewhere/mix/m")).is_empty());
    }

    #[test]
    fn a_checkpoint_of_another_config_names_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let m = Llama::init(&tiny(), 5, &Device::Cpu, DType::F32).unwrap();
        save(&m, dir.path(), Precision::F32, MAX_SHARD_BYTES, &[]).unwrap();
        let mut c = tiny();
        c.num_hidden_layers = 3;
        std::fs::write(dir.path().join(CONFIG), c.to_json()).unwrap();
        let e = load(dir.path(), &Device::Cpu, DType::F32).err().unwrap();
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.starts_with("loading "), "{chain}");
        assert!(chain.contains("has no tensor model.layers.2."), "{chain}");
    }
}
