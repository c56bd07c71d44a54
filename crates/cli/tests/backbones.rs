//! `scripts/backbones` writes `docs/results/backbones.md` from the cells it publishes beside the
//! table, so a machine without the grid's run directories (a fresh clone) can rewrite it: the
//! committed table must be exactly what the script makes from the committed cells.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The table without its first paragraph's line that names the machine's cores and the date.
fn without_stamp(table: &str) -> String {
    table
        .lines()
        .filter(|l| !l.starts_with("Written by `scripts/backbones` on "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn backbones_table_is_rebuilt_from_the_published_cells_alone() {
    let root = repo_root();
    let committed = root.join("docs/results/backbones.md");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(
        &root.join("docs/results/backbones"),
        &tmp.path().join("backbones"),
    );
    let table = tmp.path().join("backbones.md");
    let out = Command::new("bash")
        .arg(root.join("scripts/backbones"))
        .arg("--table-only")
        .arg("--table")
        .arg(&table)
        .arg("--out")
        .arg(tmp.path().join("no-runs-here"))
        .env("CULTURESTEER_BIN", env!("CARGO_BIN_EXE_culturesteer"))
        .env_remove("CULTURESTEER_THREADS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/backbones --table-only failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = std::fs::read_to_string(&table).unwrap();
    let want = std::fs::read_to_string(&committed).unwrap();
    assert!(made.contains("| multitp-disca (MIS ↓) |"), "{made}");
    assert_eq!(
        without_stamp(&made),
        without_stamp(&want),
        "docs/results/backbones.md is not what scripts/backbones makes from docs/results/backbones/ \
         (re-run `scripts/backbones --table-only` and commit both)"
    );
}
