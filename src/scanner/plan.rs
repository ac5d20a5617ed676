//! What a catalogue's program is compiled from besides its sources: the entry points
//! and the type queries (all of a type's rules in one query). The build script
//! (`build.rs`, which compiles the embedded catalogue into the binary) and the scanner
//! (which compiles any other catalogue when it is first evaluated) include this same
//! file, so both compile one program from one plan. Only `std` here: the build script
//! has none of the crate.

/// What the plan reads of one rule; rules come in catalogue order (by id).
pub struct PlanRule<'a> {
    /// `data.scanledger.rules.<category>.<name>.deny`.
    pub deny_path: &'a str,
    pub indeterminate_path: Option<&'a str>,
    /// ARM types, lower-cased.
    pub types: &'a [String],
    /// Evaluated on each resource (not once on the subscription's inventory).
    pub per_resource: bool,
}

/// The query of one type: every rule of it, in one Rego array.
pub struct PlannedQuery {
    /// The lower-cased type.
    pub kind: String,
    /// `data.scanledger.bytype.t<n>.results`.
    pub path: String,
    /// What each element of `results` is: (rule index, is it `indeterminate`).
    pub parts: Vec<(usize, bool)>,
    /// The rules it covers, in catalogue order.
    pub rules: Vec<usize>,
    /// (module name, Rego text) to parse with the sources.
    pub module: (String, String),
}

/// The type queries of `rules`, by type in byte order.
pub fn type_queries(rules: &[PlanRule]) -> Vec<PlannedQuery> {
    let mut by_type: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, r) in rules.iter().enumerate() {
        if !r.per_resource {
            continue;
        }
        for t in r.types {
            by_type.entry(t.as_str()).or_default().push(i);
        }
    }
    by_type
        .into_iter()
        .enumerate()
        .map(|(n, (kind, indexes))| {
            let mut parts = Vec::new();
            let mut terms = Vec::new();
            for &i in &indexes {
                parts.push((i, false));
                terms.push(rules[i].deny_path);
                if let Some(path) = rules[i].indeterminate_path {
                    parts.push((i, true));
                    terms.push(path);
                }
            }
            let package = format!("scanledger.bytype.t{n}");
            PlannedQuery {
                kind: kind.to_owned(),
                path: format!("data.{package}.results"),
                parts,
                rules: indexes,
                module: (
                    format!("<type query {kind}>"),
                    format!(
                        "package {package}\n\nimport rego.v1\n\nresults := [\n\t{},\n]\n",
                        terms.join(",\n\t")
                    ),
                ),
            }
        })
        .collect()
}

/// The program's entry points: each rule's `deny` and `indeterminate`, in catalogue
/// order, then the type queries' paths, sorted (so the program is the same on every
/// compile).
pub fn entry_points(rules: &[PlanRule], queries: &[PlannedQuery]) -> Vec<String> {
    let mut paths: Vec<String> = queries.iter().map(|q| q.path.clone()).collect();
    paths.sort();
    rules
        .iter()
        .flat_map(|r| std::iter::once(r.deny_path).chain(r.indeterminate_path))
        .map(str::to_owned)
        .chain(paths)
        .collect()
}

/// Whether a module defines the rule `name` (a line starting with it).
pub fn declares(source: &str, name: &str) -> bool {
    source.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with([' ', '\t', '[', ':', '=']))
    })
}
