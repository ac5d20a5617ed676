//! Embeds the rule catalogue (`rules/`: Rego files, `lib/` helpers and the fixtures
//! beside each rule) as a static table, so the binary works from any folder.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".rego") || name.ends_with(".fixtures.json") {
                out.push(path);
            }
        }
    }
}

fn main() {
    // Read when the script runs, not when it was compiled: a target folder copied from
    // another checkout would otherwise embed that checkout's rules.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("rules");
    // A directory makes cargo rerun this script when anything under it changes.
    println!("cargo:rerun-if-changed=rules");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut table = String::from("pub(crate) static EMBEDDED_RULES: &[(&str, &str)] = &[\n");
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .expect("under rules/")
            .to_str()
            .expect("UTF-8 rule paths")
            .replace('\\', "/");
        let abs = path.to_str().expect("UTF-8 rule paths");
        table.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_rules.rs");
    std::fs::write(out, table).expect("writing the embedded rules table");
}
