//! docs/reference.md is generated from the CRD (crds/dcs.migration.io_redismigrations.yaml): every field with its
//! type, constraints and description, the printer columns and the admission rules. This test fails when the file
//! is stale; `DCS_UPDATE_DOCS=1 cargo test --test reference_docs` (or `make reference`) rewrites it.

use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

const CRD_FILE: &str = "crds/dcs.migration.io_redismigrations.yaml";
const REFERENCE: &str = "docs/reference.md";

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

fn code(text: &str) -> String {
    // A backtick-safe inline code span (pipes escaped for tables).
    let text = text.replace('|', "\\|");
    if text.contains('`') { format!("`` {text} ``") } else { format!("`{text}`") }
}

fn type_of(schema: &Value) -> String {
    match schema["type"].as_str() {
        Some("array") => format!("[]{}", type_of(&schema["items"])),
        Some("integer") => schema["format"].as_str().unwrap_or("integer").to_owned(),
        Some(t) => t.to_owned(),
        None if schema["x-kubernetes-int-or-string"] == true => "int or string".to_owned(),
        None => "any".to_owned(),
    }
}

fn constraints(schema: &Value, required: bool) -> Vec<String> {
    let mut out = Vec::new();
    if required {
        out.push("**required**".to_owned());
    }
    if let Some(d) = schema.get("default") {
        out.push(format!("default {}", code(&d.to_string())));
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> =
            values.iter().map(|v| code(v.as_str().map_or_else(|| v.to_string(), str::to_owned).as_str())).collect();
        out.push(format!("one of {}", values.join(", ")));
    }
    let number = |v: &Value| v.as_f64().map(|f| if f.fract() == 0.0 { format!("{}", f as i64) } else { f.to_string() });
    for (key, label) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
    ] {
        if let Some(n) = schema.get(key).and_then(number) {
            out.push(format!("{label} {n}"));
        }
    }
    if let Some(p) = schema["pattern"].as_str() {
        out.push(format!("pattern {}", code(p)));
    }
    out
}

struct Field {
    path: String,
    kind: String,
    constraints: Vec<String>,
    description: String,
}

fn walk(schema: &Value, path: &str, required: bool, fields: &mut Vec<Field>, rules: &mut Vec<(String, String)>) {
    fields.push(Field {
        path: path.to_owned(),
        kind: type_of(schema),
        constraints: constraints(schema, required),
        description: one_line(schema["description"].as_str().unwrap_or("")),
    });
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let at = match rule["fieldPath"].as_str() {
            Some(fp) => format!("{}{fp}", if path == "(object)" { "" } else { path }),
            None => path.to_owned(),
        };
        rules.push((at.trim_start_matches('.').to_owned(), one_line(rule["message"].as_str().unwrap_or(""))));
    }
    let required_keys: Vec<&str> =
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if let Some(props) = schema["properties"].as_object() {
        let mut names: Vec<&String> = props.keys().collect();
        names.sort();
        for name in names {
            let child = if path == "(object)" { name.clone() } else { format!("{path}.{name}") };
            walk(&props[name], &child, required_keys.contains(&name.as_str()), fields, rules);
        }
    }
    if schema["type"] == "array" && schema["items"]["properties"].is_object() {
        let items = &schema["items"];
        let required_keys: Vec<&str> =
            items["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let props = items["properties"].as_object().unwrap();
        let mut names: Vec<&String> = props.keys().collect();
        names.sort();
        for name in names {
            walk(&props[name], &format!("{path}[].{name}"), required_keys.contains(&name.as_str()), fields, rules);
        }
    }
}

fn render(crd: &Value) -> String {
    let spec = &crd["spec"];
    let version = &spec["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let kind = spec["names"]["kind"].as_str().unwrap();
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "# {kind} reference\n").unwrap();
    writeln!(w, "<!-- Generated from {CRD_FILE} by tests/reference_docs.rs (`make reference`): do not edit. -->\n")
        .unwrap();
    writeln!(w, "{}\n", one_line(schema["description"].as_str().unwrap_or(""))).unwrap();
    writeln!(w, "| | |\n|---|---|").unwrap();
    writeln!(w, "| API version | `{}/{}` |", spec["group"].as_str().unwrap(), version["name"].as_str().unwrap())
        .unwrap();
    writeln!(w, "| kind | `{kind}` ({}) |", spec["scope"].as_str().unwrap().to_lowercase()).unwrap();
    writeln!(w, "| plural | `{}` |", spec["names"]["plural"].as_str().unwrap()).unwrap();
    let list = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(w, "| short names | {} |", list(&spec["names"]["shortNames"])).unwrap();
    writeln!(w, "| categories | {} |", list(&spec["names"]["categories"])).unwrap();
    writeln!(
        w,
        "| subresources | {} |",
        version["subresources"]
            .as_object()
            .map(|o| o.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    )
    .unwrap();
    writeln!(w).unwrap();

    writeln!(w, "## Columns (`kubectl get rmig`)\n").unwrap();
    writeln!(w, "| column | value |\n|---|---|").unwrap();
    for c in version["additionalPrinterColumns"].as_array().into_iter().flatten() {
        writeln!(w, "| {} | {} |", c["name"].as_str().unwrap(), code(c["jsonPath"].as_str().unwrap())).unwrap();
    }
    writeln!(w).unwrap();

    let mut rules = Vec::new();
    for (section, title) in [("spec", "Spec"), ("status", "Status")] {
        let mut fields = Vec::new();
        walk(&schema["properties"][section], section, false, &mut fields, &mut rules);
        writeln!(w, "## {title}\n").unwrap();
        writeln!(w, "| field | type | constraints | description |\n|---|---|---|---|").unwrap();
        for f in fields.iter().skip(1) {
            writeln!(w, "| `{}` | {} | {} | {} |", f.path, f.kind, f.constraints.join("; "), f.description).unwrap();
        }
        writeln!(w).unwrap();
    }
    let mut top = Vec::new();
    walk(
        &Value::Object(
            schema
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k == "x-kubernetes-validations")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        "(object)",
        false,
        &mut top,
        &mut rules,
    );

    writeln!(w, "## Admission rules\n").unwrap();
    writeln!(
        w,
        "Besides the types and constraints above, the API server refuses a RedisMigration (CEL rules in the CRD):\n"
    )
    .unwrap();
    writeln!(w, "| field | rule |\n|---|---|").unwrap();
    for (path, message) in rules {
        writeln!(w, "| `{path}` | {message} |").unwrap();
    }
    out
}

#[test]
fn reference_docs_describe_every_crd_field_and_are_up_to_date() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crd: Value = serde_saphyr::from_str(&std::fs::read_to_string(repo.join(CRD_FILE)).unwrap()).unwrap();
    let generated = render(&crd);

    // Every field of the CRD is in it, with a description.
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let (mut fields, mut rules) = (Vec::new(), Vec::new());
    walk(&schema["properties"]["spec"], "spec", false, &mut fields, &mut rules);
    for f in &fields {
        assert!(generated.contains(&format!("| `{}` |", f.path)) || f.path == "spec", "{} is documented", f.path);
        assert!(!f.description.is_empty(), "{} has a description in the CRD (a doc comment in src/crd.rs)", f.path);
    }

    let path = repo.join(REFERENCE);
    if std::env::var_os("DCS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{REFERENCE} is stale: regenerate it with `DCS_UPDATE_DOCS=1 cargo test --test reference_docs` (make reference)"
    );
}
