//! The module layout stays acyclic: no module of `src/` imports (through `crate::…` or
//! `super::…` paths, outside its tests) a module that imports it back, directly or through
//! others. A module and its own parents or children do not count (a parent declares its
//! children). Any circle fails here, naming its members and their imports of each other.
//!
//! And the log is read and written through the store alone: no file of `src/` outside
//! `src/store/` holds SQL over the `events` table (`from`, `into`, `join` or `update` followed
//! by `events`, in any case, outside `//` comment lines).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` by its path (`projections::runner`), with its source text.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = relative
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                found.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    walk(&root, &root, &mut found);
    found
}

/// The longest module that `path` (`a::b::Item`) names, if any.
fn resolve(path: &[&str], modules: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

/// The paths after each `marker` (`crate::`, `super::`) in `text`, with `{a, b::c}` groups
/// expanded one level.
fn paths_after<'t>(text: &'t str, marker: &str) -> Vec<Vec<&'t str>> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices(marker) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + marker.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let head: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        if rest[end..].starts_with('{') {
            let group = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |i| end + i)];
            for item in group.split(',') {
                let item = item.trim();
                let mut path = head.clone();
                path.extend(
                    item.split("::")
                        .map(|s| s.split_whitespace().next().unwrap_or("")),
                );
                paths.push(path);
            }
        } else {
            paths.push(head);
        }
    }
    paths
}

fn imports(module: &str, text: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let production = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let own: Vec<&str> = module.split("::").collect();
    let mut found = BTreeSet::new();
    for path in paths_after(production, "crate::") {
        found.extend(resolve(&path, modules));
    }
    for path in paths_after(production, "super::") {
        let mut full: Vec<&str> = own[..own.len().saturating_sub(1)].to_vec();
        full.extend(path);
        found.extend(resolve(&full, modules));
    }
    let related = |other: &String| {
        other == module
            || other.is_empty()
            || module.is_empty()
            || other.starts_with(&format!("{module}::"))
            || module.starts_with(&format!("{other}::"))
    };
    found.retain(|other| !related(other));
    found
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'e> {
        edges: &'e BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'e str, usize>,
        low: BTreeMap<&'e str, usize>,
        stack: Vec<&'e str>,
        on_stack: BTreeSet<&'e str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'e>(state: &mut State<'e>, node: &'e str) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        for next in state.edges.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found.sort();
    state.found
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let modules = modules();
    let edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(module, text)| (module.clone(), imports(module, text, &modules)))
        .collect();
    let found = circles(&edges);
    let explain: Vec<String> = found
        .iter()
        .map(|circle| {
            let inner: Vec<String> = circle
                .iter()
                .map(|m| {
                    let within: Vec<&String> =
                        edges[m].iter().filter(|d| circle.contains(d)).collect();
                    format!("{m} -> {within:?}")
                })
                .collect();
            inner.join("; ")
        })
        .collect();
    assert!(found.is_empty(), "import circles: {explain:#?}");
}

#[test]
fn the_circle_check_sees_a_circle() {
    let modules: BTreeMap<String, String> = [
        ("a".to_owned(), "use crate::b::Thing;".to_owned()),
        ("b".to_owned(), "fn f() { crate::a::g() }".to_owned()),
        ("c".to_owned(), "use super::{a, b::Other};".to_owned()),
    ]
    .into();
    let edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(module, text)| (module.clone(), imports(module, text, &modules)))
        .collect();
    assert_eq!(circles(&edges), vec![vec!["a".to_owned(), "b".to_owned()]]);
    assert_eq!(edges["c"], ["a".to_owned(), "b".to_owned()].into());
}

/// The SQL keywords that name the table they read or write right after them.
const TABLE_KEYWORDS: [&str; 4] = ["from", "into", "join", "update"];

/// The lines of `text` (numbered from 1, trimmed) with SQL over the `events` table: one of
/// `TABLE_KEYWORDS`, whitespace (a string's line continuation included), then `events` as a
/// whole word, in any case. Lines that are `//` comments do not count.
fn sql_over_events(text: &str) -> Vec<(usize, String)> {
    let code = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for keyword in TABLE_KEYWORDS {
        for (at, _) in code.match_indices(keyword) {
            if code[..at].chars().next_back().is_some_and(is_word) {
                continue;
            }
            let rest = &code[at + keyword.len()..];
            let table = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\\');
            if table.len() == rest.len() {
                continue;
            }
            let Some(after) = table.strip_prefix("events") else {
                continue;
            };
            if after.chars().next().is_some_and(is_word) {
                continue;
            }
            let line = code[..at].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default();
            found.push((line, source.trim().to_owned()));
        }
    }
    found.sort();
    found
}

#[test]
fn only_the_store_has_sql_over_the_events_table() {
    let found: Vec<String> = modules()
        .iter()
        .filter(|(module, _)| !(*module == "store" || module.starts_with("store::")))
        .flat_map(|(module, text)| {
            sql_over_events(text)
                .into_iter()
                .map(move |(line, source)| format!("{module} (line {line}): {source}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "SQL over `events` outside src/store/ (read and write the log through the store): \
         {found:#?}"
    );
}

#[test]
fn the_events_check_sees_sql_over_events() {
    let text = "// select * from events: a comment
        let a = \"select position from events where event_id = $1\";
        let b = \"SELECT e.position FROM Events e\";
        let c = \"insert into \\
             events (position) values (1)\";
        let d = \"select 1 from log_head h join events e on true\";
        let e = \"update events set data = '{}'\";
        let f = \"select * from events_archive; insert into bench_raw_events (position)\";
        let g = \"select * from projection_rows where kind = 'events'\";
        let h = from_events(events.into_iter().map(into_events));";
    let lines: Vec<usize> = sql_over_events(text)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 6, 7]);
}
