//! Embeds the rule catalogue (`rules/`: Rego files, `lib/` helpers and the fixtures
//! beside each rule) as a static table, so the binary works from any folder; and its
//! metadata and program, read and compiled here, so a scan parses no Rego first (~0.2 s
//! of every run).

use std::path::{Path, PathBuf};

// Shared with the scanner; not every item is used here.
#[allow(dead_code)]
#[path = "src/scanner/plan.rs"]
mod plan;

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
    println!("cargo:rerun-if-changed=src/scanner/plan.rs");
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
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("embedded_rules.rs"), table)
        .expect("writing the embedded rules table");

    // The program, as the scanner compiles the embedded catalogue (src/scanner/rules.rs,
    // `Catalogue::compiled`). A catalogue that does not compile here is written as no
    // program: the scanner then compiles it itself, and reports what is wrong.
    let sources: Vec<(String, String)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rego"))
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under rules/");
            let rel = rel.to_str().expect("UTF-8 rule paths").replace('\\', "/");
            (
                rel,
                std::fs::read_to_string(p).expect("reading a rule file"),
            )
        })
        .collect();
    let (program, entries, metadata) = match compile(&sources) {
        Ok(compiled) => compiled,
        Err(e) => {
            println!("cargo:warning=the embedded rules were not compiled at build time: {e}");
            (Vec::new(), String::new(), String::new())
        }
    };
    std::fs::write(out_dir.join("embedded_metadata.tsv"), metadata)
        .expect("writing the embedded rules' metadata");
    std::fs::write(out_dir.join("embedded_program.bin"), program)
        .expect("writing the embedded program");
    std::fs::write(out_dir.join("embedded_program.entries"), entries)
        .expect("writing the embedded program's entry points");
}

/// What the plan needs of a rule, read from its metadata as the scanner reads it.
struct Planned {
    id: String,
    deny: String,
    indeterminate: Option<String>,
    /// Lower-cased.
    types: Vec<String>,
    per_resource: bool,
}

/// The serialized program of the catalogue of `sources` (relative path, text); its
/// entry points (one per line), which the scanner checks against its own plan; and each
/// rule file's package and metadata, as the scanner would read them (`rel`, package and
/// metadata as compact JSON, tab-separated, one file per line).
fn compile(sources: &[(String, String)]) -> Result<(Vec<u8>, String, String), String> {
    use regorus::languages::rego::compiler::Compiler;
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    let mut rules: Vec<Planned> = Vec::new();
    let mut metadata = String::new();
    for (rel, text) in sources {
        let package = engine
            .add_policy(rel.clone(), text.clone())
            .map_err(|e| format!("{rel}: {e}"))?;
        if Path::new(rel).starts_with("lib") {
            continue;
        }
        let meta = engine
            .eval_rule(format!("{package}.metadata"))
            .map_err(|e| format!("{rel}: metadata: {e}"))?;
        let json = serde_json::to_string(&meta).map_err(|e| format!("{rel}: metadata: {e}"))?;
        if [rel.as_str(), package.as_str(), json.as_str()]
            .iter()
            .any(|f| f.contains(['\t', '\n']))
        {
            return Err(format!(
                "{rel}: a tab or line break in its path, package or metadata"
            ));
        }
        metadata.push_str(&format!("{rel}\t{package}\t{json}\n"));
        let id = meta["id"]
            .as_string()
            .map_err(|_| format!("{rel}: no string id"))?
            .to_string();
        let types = meta["resource_types"]
            .as_array()
            .map_err(|_| format!("{rel}: no resource_types"))?
            .iter()
            .map(|t| t.as_string().map(|t| t.to_ascii_lowercase()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("{rel}: a resource type is not a string"))?;
        let per_resource = match &meta["scope"] {
            regorus::Value::Undefined => true,
            scope => match scope.as_string().map(|s| s.to_string()).as_deref() {
                Ok("resource") => true,
                Ok("subscription") => false,
                _ => return Err(format!("{rel}: unknown scope")),
            },
        };
        let indeterminate =
            plan::declares(text, "indeterminate").then(|| format!("{package}.indeterminate"));
        rules.push(Planned {
            id,
            deny: format!("{package}.deny"),
            indeterminate,
            types,
            per_resource,
        });
    }
    // Catalogue order, as the scanner sorts its rules.
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    let planned: Vec<plan::PlanRule> = rules
        .iter()
        .map(|r| plan::PlanRule {
            deny_path: &r.deny,
            indeterminate_path: r.indeterminate.as_deref(),
            types: &r.types,
            per_resource: r.per_resource,
        })
        .collect();
    let queries = plan::type_queries(&planned);
    for q in &queries {
        engine
            .add_policy(q.module.0.clone(), q.module.1.clone())
            .map_err(|e| format!("a type query: {e}"))?;
    }
    let entries = plan::entry_points(&planned, &queries);
    let entry_refs: Vec<&str> = entries.iter().map(String::as_str).collect();
    let first = entry_refs.first().ok_or("no rule")?.to_string();
    let policy = engine
        .compile_with_entrypoint(&first.into())
        .map_err(|e| format!("{e}"))?;
    let program = Compiler::compile_from_policy_inlining(&policy, &entry_refs)
        .or_else(|_| Compiler::compile_from_policy(&policy, &entry_refs))
        .map_err(|e| format!("{e}"))?;
    let bytes = program.serialize_binary().map_err(|e| e.to_string())?;
    Ok((bytes, entries.join("\n"), metadata))
}
