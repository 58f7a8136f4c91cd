//! The JSON Schema of the config, generated from the Rust types.
//!
//! `schema/openclaw.schema.json` is this output, committed for editors and the NixOS module; a
//! test regenerates it and fails when it is stale.

use std::sync::OnceLock;

use serde_json::Value;

use super::model::OpenClawConfig;

/// Generates the schema (draft-07: its meta-schema is the cheapest for jsonschema to build, which
/// matters for a 5 ms `config check`). `Option<T>` fields are optional, not nullable: `null`
/// in a config file is an error, as upstream's strict schema has it.
pub fn generate() -> Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<OpenClawConfig>();
    let mut v = schema.to_value();
    strip_null(&mut v);
    v
}

/// The schema as pretty JSON with a trailing newline, as committed.
pub fn generate_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap_or_default();
    s.push('\n');
    s
}

/// The committed schema, embedded at build time. Parsing it is cheaper than generating it at
/// every start; `committed_schema_is_current` keeps it equal to [`generate`].
const EMBEDDED: &str = include_str!("../../schema/openclaw.schema.json");

/// The schema, loaded once per process.
pub fn get() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(EMBEDDED).unwrap_or_else(|_| generate()))
}

/// Removes `null` from `type` arrays and `{"type":"null"}` from `anyOf` (collapsing a single
/// remaining branch), which schemars emits for `Option<T>`, and adds unsigned integers' maximums.
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    map.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1 {
                    let only = branches.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(o) = only {
                        for (k, val) in o {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            // schemars records only the lower bound of unsigned integers; the typed decoding
            // refuses values above the type's maximum, so the schema must too.
            let max: Option<Value> = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(u8::MAX.into()),
                Some("uint16") => Some(u16::MAX.into()),
                Some("uint32") => Some(u32::MAX.into()),
                Some("uint64") => Some(u64::MAX.into()),
                _ => None,
            };
            if let Some(m) = max {
                map.entry("maximum").or_insert(m);
            }
            for (_, child) in map.iter_mut() {
                strip_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// The sub-schema that describes the value at `path` (following `$ref`, `properties`,
/// `additionalProperties`, `items`, and the object branch of `anyOf`).
pub fn at<'s>(schema: &'s Value, path: &super::path::KeyPath) -> Option<&'s Value> {
    use super::path::Seg;
    let mut cur = resolve(schema, schema)?;
    for seg in &path.0 {
        cur = match seg {
            Seg::Key(k) => {
                let obj = object_branch(schema, cur)?;
                match obj.get("properties").and_then(|p| p.get(k)) {
                    Some(s) => s,
                    None => match obj.get("additionalProperties") {
                        Some(s @ Value::Object(_)) => s,
                        _ => return None,
                    },
                }
            }
            Seg::Index(_) => cur.get("items")?,
        };
        cur = resolve(schema, cur)?;
    }
    Some(cur)
}

/// The names of the keys allowed at an object schema.
pub fn allowed_keys(schema: &Value, sub: &Value) -> Vec<String> {
    object_branch(schema, sub)
        .and_then(|o| o.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn object_branch<'s>(root: &'s Value, s: &'s Value) -> Option<&'s Value> {
    let s = resolve(root, s)?;
    if s.get("properties").is_some() || s.get("additionalProperties").is_some() {
        return Some(s);
    }
    s.get("anyOf")?.as_array()?.iter().filter_map(|b| resolve(root, b)).find(|b| b.get("properties").is_some())
}

/// Follows `$ref`s from `s` to the schema they name.
pub fn resolve<'s>(root: &'s Value, s: &'s Value) -> Option<&'s Value> {
    let mut s = s;
    for _ in 0..16 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = root.pointer(r.strip_prefix('#')?)?;
            continue;
        }
        // Draft-07 output wraps a described `$ref` as `allOf: [{"$ref": ...}]`.
        match s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            Some([only]) if s.get("properties").is_none() => s = only,
            _ => return Some(s),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schema/openclaw.schema.json` is generated: this test rewrites it and fails when it was
    /// stale, so a change to the config types without the regenerated file cannot land.
    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/openclaw.schema.json");
        let want = generate_pretty();
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if std::env::var_os("CI").is_none() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &want).unwrap();
            }
            panic!("schema/openclaw.schema.json was stale; it has been regenerated: run `cargo test` locally and commit it");
        }
    }

    #[test]
    fn schema_is_strict_and_documented() {
        let s = generate();
        assert_eq!(s["additionalProperties"], Value::Bool(false));
        assert_eq!(s["definitions"]["WhatsAppConfig"]["additionalProperties"], Value::Bool(false));
        // Option<T> is optional, not nullable.
        assert_eq!(s["definitions"]["GatewayAuth"]["properties"]["tokenFile"]["type"], "string");
        // Doc comments become descriptions; defaults are recorded.
        assert!(s["definitions"]["GatewayConfig"]["properties"]["port"]["description"].as_str().unwrap().contains("TCP port"));
        assert_eq!(s["definitions"]["GatewayConfig"]["properties"]["port"]["default"], 18789);
    }
}
