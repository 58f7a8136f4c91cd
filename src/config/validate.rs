//! Schema validation of the merged config: every leaf error becomes a diagnostic at the
//! position the offending key or value was written, with the allowed keys and a "did you mean".

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::hints;
use super::locate::Locator;
use super::path::KeyPath;
use super::schema;

fn validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| jsonschema::validator_for(schema::get()).ok()).as_ref()
}

/// The cheap check for the common case, a valid config: `value` decodes into the typed model
/// (which enforces types, enums, unknown keys and required keys exactly as the schema does) and
/// every number is within the schema's `minimum`/`maximum`. When this holds, the schema has no
/// errors either (a property test checks this), so the jsonschema validator, whose build
/// dominates a `config check` process, is only built for configs that have errors.
/// Returns the decoded config when the fast path holds, so the caller need not decode it again.
pub fn fast_valid(value: &Value) -> Option<super::model::OpenClawConfig> {
    let config = serde_json::from_value::<super::model::OpenClawConfig>(value.clone()).ok()?;
    numbers_in_range(schema::get(), schema::get(), value).then_some(config)
}

fn numbers_in_range(root: &Value, s: &Value, v: &Value) -> bool {
    let Some(s) = schema::resolve(root, s) else { return false };
    if s.get("anyOf").is_some() || s.get("oneOf").is_some() || s.get("allOf").is_some() {
        // Unions: only a value without numbers inside is decided here.
        return !contains_number(v);
    }
    if !type_matches(s.get("type"), v) {
        return false;
    }
    match v {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return false };
            let min_ok = s.get("minimum").and_then(Value::as_f64).is_none_or(|m| x >= m);
            let max_ok = s.get("maximum").and_then(Value::as_f64).is_none_or(|m| x <= m);
            min_ok && max_ok
        }
        Value::Object(map) => map.iter().all(|(k, child)| {
            match s.get("properties").and_then(|p| p.get(k)).or_else(|| s.get("additionalProperties").filter(|a| a.is_object())) {
                Some(sub) => numbers_in_range(root, sub, child),
                None => false,
            }
        }),
        Value::Array(items) => match s.get("items") {
            Some(sub) => items.iter().all(|i| numbers_in_range(root, sub, i)),
            None => items.is_empty(),
        },
        _ => true,
    }
}

fn type_matches(t: Option<&Value>, v: &Value) -> bool {
    let one = |t: &str| match t {
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => false,
    };
    match t {
        None => true,
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(one),
        Some(_) => false,
    }
}

fn contains_number(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::Array(a) => a.iter().any(contains_number),
        Value::Object(m) => m.values().any(contains_number),
        _ => false,
    }
}

/// Validates `value` against the config schema; returns every error.
pub fn check(value: &Value, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let Some(v) = validator() else {
        return vec![Diagnostic::error("internal", KeyPath::root(), "the built-in config schema does not compile")];
    };
    let mut out = Vec::new();
    for err in v.iter_errors(value) {
        leaf(&err, value, loc, &mut out);
    }
    out.dedup();
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected_type(path: &KeyPath) -> String {
    let root = schema::get();
    match schema::at(root, path).and_then(|s| s.get("type")) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "another type".into(),
    }
}

fn leaf(err: &ValidationError<'_>, value: &Value, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let path = KeyPath::from_pointer(err.instance_path().as_str(), value);
    let found = path.get(value);
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                out.push(unknown_key(&path, key, loc));
            }
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // Keep the branches whose type matched; report their leaves if exactly one did.
            let here = err.instance_path().as_str();
            let matching: Vec<_> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().any(|e| {
                        e.instance_path().as_str() == here && matches!(e.kind(), ValidationErrorKind::Type { .. })
                    })
                })
                .collect();
            if let [only] = matching.as_slice() {
                for e in only.iter() {
                    leaf(e, value, loc, out);
                }
            } else if let Some(opts) = constant_options(&path) {
                out.push(loc.at_value(enum_error(&path, found, &opts), &path));
            } else {
                let d = Diagnostic::error(
                    "invalid-type",
                    &path,
                    format!("expected {}, found {}", branch_types(&path), found.map_or("nothing", json_type)),
                )
                .hint(schema_description(&path).unwrap_or_else(|| "see `openclaw config schema`".into()));
                out.push(loc.at_value(d, &path));
            }
        }
        ValidationErrorKind::Type { .. } => {
            let d = Diagnostic::error(
                "invalid-type",
                &path,
                format!("expected {}, found {}", expected_type(&path), found.map_or("nothing", json_type)),
            );
            let d = match schema_description(&path) {
                Some(h) => d.hint(h),
                None => d,
            };
            out.push(loc.at_value(d, &path));
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> =
                options.as_array().map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default();
            out.push(loc.at_value(enum_error(&path, found, &opts), &path));
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            let d = Diagnostic::error("missing-key", &path, format!("missing required key \"{name}\""));
            out.push(loc.at_key(d, &path));
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            let shown = found.map(|v| v.to_string()).unwrap_or_default();
            let d = Diagnostic::error("out-of-range", &path, format!("{shown} is below the minimum {limit}"));
            out.push(loc.at_value(d, &path));
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            let shown = found.map(|v| v.to_string()).unwrap_or_default();
            let d = Diagnostic::error("out-of-range", &path, format!("{shown} is above the maximum {limit}"));
            out.push(loc.at_value(d, &path));
        }
        _ => {
            let d = Diagnostic::error("invalid-value", &path, err.to_string());
            out.push(loc.at_value(d, &path));
        }
    }
}

fn enum_error(path: &KeyPath, found: Option<&Value>, opts: &[String]) -> Diagnostic {
    let shown = found.map(|v| v.to_string()).unwrap_or_default();
    let d = Diagnostic::error("invalid-value", path, format!("invalid value {shown}: expected one of {}", quoted_list(opts)));
    match found.and_then(Value::as_str).and_then(|s| hints::did_you_mean(s, opts)) {
        Some(s) => d.hint(format!("did you mean \"{s}\"?")),
        None => d,
    }
}

/// The branches of the `oneOf`/`anyOf` at `path`, resolved.
fn branches(path: &KeyPath) -> Vec<&'static Value> {
    let root = schema::get();
    let Some(s) = schema::at(root, path) else { return Vec::new() };
    let list = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(Value::as_array);
    list.into_iter().flatten().filter_map(|b| schema::resolve(root, b)).collect()
}

/// When every branch is a constant (a documented enum), the allowed values.
fn constant_options(path: &KeyPath) -> Option<Vec<String>> {
    let bs = branches(path);
    if bs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for b in bs {
        if let Some(c) = b.get("const").and_then(Value::as_str) {
            out.push(c.to_string());
        } else if let Some(e) = b.get("enum").and_then(Value::as_array) {
            out.extend(e.iter().filter_map(Value::as_str).map(String::from));
        } else {
            return None;
        }
    }
    Some(out)
}

fn branch_types(path: &KeyPath) -> String {
    let mut types: Vec<&str> = branches(path).iter().filter_map(|b| b.get("type").and_then(Value::as_str)).collect();
    types.dedup();
    if types.is_empty() { "another type".into() } else { types.join(" or ") }
}

fn schema_description(path: &KeyPath) -> Option<String> {
    let root = schema::get();
    let s = schema::at(root, path)?;
    let d = s.get("description")?.as_str()?;
    Some(d.split("\n\n").next().unwrap_or(d).replace('\n', " "))
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

/// The diagnostic for `key`, not allowed under `parent`.
pub fn unknown_key(parent: &KeyPath, key: &str, loc: &Locator<'_>) -> Diagnostic {
    let path = parent.key(key);
    let where_ = if parent.is_root() { "at the top level".to_string() } else { format!("in {parent}") };
    let root = schema::get();
    let allowed = schema::at(root, parent).map(|s| schema::allowed_keys(root, s)).unwrap_or_default();
    let d = if hints::unsupported_upstream(parent, key) {
        Diagnostic::error(
            "unsupported",
            &path,
            format!("\"{key}\" {where_} is an OpenClaw setting not supported by this gateway yet"),
        )
        .hint("remove it; this gateway would silently ignore it otherwise")
    } else {
        let d = Diagnostic::error("unknown-key", &path, format!("unknown key \"{key}\" {where_}"));
        let list = format!("allowed keys: {}", allowed.join(", "));
        match (hints::misplaced(parent, key), hints::did_you_mean(key, &allowed)) {
            (Some(h), _) => d.hint(h),
            (None, Some(s)) => d.hint(format!("did you mean \"{s}\"? {list}")),
            (None, None) => d.hint(list),
        }
    };
    loc.at_key(d, &path)
}
