//! The library's files import each other without circles: every `use` and every inline
//! `crate::…` / `super::…` path of each file in `src/` (tests left out) is resolved to the file
//! that defines the module it names, and the resulting file graph must be acyclic. A circle means
//! two concerns that cannot be understood apart; break it by moving the shared vocabulary into a
//! module both use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`crate::controller::pass`) → file, for every file of the library.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().unwrap() != "bin" {
                    stack.push(path);
                }
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut segments: Vec<String> = vec!["crate".into()];
            segments.extend(rel.iter().map(|s| s.to_string_lossy().into_owned()));
            match segments.last().map(String::as_str) {
                Some("main") => continue,
                Some("lib") | Some("mod") => {
                    segments.pop();
                }
                _ => {}
            }
            out.insert(segments, path);
        }
    }
    out
}

/// The code of a file without its `#[cfg(test)]` part and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Every path a file names: `use` trees expanded, plus inline `crate::`/`super::`/`self::` paths.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for statement in code.split(';') {
        if let Some(at) = statement.find("use ") {
            let before = &statement[..at];
            if before.trim().is_empty() || before.trim_end().ends_with("pub") || before.trim_end().ends_with(')') {
                expand(&mut out, Vec::new(), statement[at + 4..].trim());
            }
        }
    }
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 6)].iter().collect();
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if boundary && (rest.starts_with("crate:") || rest.starts_with("super:") || rest.starts_with("self::")) {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_' || bytes[j] == ':') {
                j += 1;
            }
            let path: String = bytes[i..j].iter().collect();
            out.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn expand(out: &mut Vec<Vec<String>>, prefix: Vec<String>, tree: &str) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut head = prefix.clone();
        head.extend(tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut start) = (0, 0);
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(out, head.clone(), &inner[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand(out, head, &inner[start..]);
    } else if !tree.is_empty() {
        let mut path = prefix;
        let tree = tree.split(" as ").next().unwrap_or_default();
        path.extend(tree.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        out.push(path);
    }
}

/// The file a path names, seen from module `here`.
fn resolve(here: &[String], path: &[String], files: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    let mut absolute: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => vec!["crate".into()],
        Some("super") | Some("self") => here.to_vec(),
        Some(_) => here.to_vec(),
        None => return None,
    };
    let mut rest = if path[0] == "crate" { &path[1..] } else { path };
    while let Some(first) = rest.first() {
        match first.as_str() {
            "super" => {
                absolute.pop();
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    let relative_child = !matches!(path[0].as_str(), "crate" | "super" | "self");
    if relative_child {
        let mut child = here.to_vec();
        child.push(path[0].clone());
        if !files.contains_key(&child) {
            return None;
        }
    }
    absolute.extend(rest.iter().cloned());
    (1..=absolute.len()).rev().map(|n| absolute[..n].to_vec()).find(|m| files.contains_key(m))
}

#[test]
fn no_file_in_src_imports_itself_back_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &files {
        for named in paths(&code(path)) {
            if let Some(target) = resolve(module, &named, &files)
                && target != *module
                && !module.starts_with(&target)
            {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge; a parent's `mod` declarations are not imports.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        trail: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match state.get(node) {
            Some(1) => {
                let at = trail.iter().position(|n| n == node).unwrap();
                let mut circle = trail[at..].to_vec();
                circle.push(node.clone());
                return Some(circle);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(node.clone(), 1);
        trail.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, state, trail) {
                return Some(circle);
            }
        }
        trail.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut circles = Vec::new();
    for module in files.keys() {
        if let Some(circle) = visit(module, &edges, &mut BTreeMap::new(), &mut Vec::new()) {
            let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
            circles.push(names.join(" -> "));
        }
    }
    circles.sort();
    circles.dedup();
    assert!(circles.is_empty(), "import circles:\n{}", circles.join("\n"));
    assert!(edges.len() > 20, "the graph was read ({} files import others)", edges.len());
}
