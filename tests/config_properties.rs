//! Property tests over the parser and the whole compiler: no input makes them panic, every
//! diagnostic carries a position, and the parser agrees with the `json5` crate on what JSON5 is.

use std::collections::HashMap;
use std::path::PathBuf;

use openclaw::config::compile::compile_sources;
use openclaw::config::json5;
use openclaw::config::sources::{Inputs, Layer, Source};
use proptest::prelude::*;

/// Random config-shaped JSON values, with keys from the real vocabulary so that merges, unknown
/// keys and type errors are all exercised.
fn value() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop::sample::select(vec![
        "gateway", "port", "bind", "auth", "token", "tokenFile", "hooks", "enabled", "path", "channels",
        "whatsapp", "allowFrom", "dmPolicy", "groupPolicy", "groups", "accounts", "messages", "agents",
        "models", "providers", "streamMode", "x", "$schema", "mode", "controlUi",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e6f64..1e6).prop_map(serde_json::Value::from),
        prop::sample::select(vec!["loopback", "lan", "open", "allowlist", "+15551234567", "${HOME}", "${NOPE}", "/", ""])
            .prop_map(serde_json::Value::from),
        "\\PC{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Renders a value as JSON5 with comments, unquoted keys, single quotes and trailing commas.
fn to_json5(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            out.push_str("{ // c\n");
            for (k, v) in m {
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '$') && !k.starts_with(|c: char| c.is_ascii_digit()) {
                    out.push_str(k);
                } else {
                    out.push_str(&serde_json::to_string(k).unwrap());
                }
                out.push_str(": ");
                to_json5(v, out);
                out.push_str(",\n");
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for v in a {
                to_json5(v, out);
                out.push_str(", /* x */");
            }
            out.push(']');
        }
        serde_json::Value::String(s) if !s.contains(['\'', '\\']) => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn source(layer: Layer, name: &str, text: String) -> Source {
    Source { layer, path: PathBuf::from(name), text, sha256: String::new() }
}

fn check_compile(system: Option<String>, state: Option<String>) {
    let mut srcs = Vec::new();
    if let Some(t) = system {
        srcs.push(source(Layer::System, "system.json5", t));
    }
    if let Some(t) = state {
        srcs.push(source(Layer::State, "state.json", t));
    }
    let n = srcs.len();
    let env: HashMap<String, String> = [("HOME".to_string(), "/home/x".to_string())].into();
    let c = compile_sources(Inputs { system: None, state_dir: None }, srcs, &env, false);
    for d in &c.diagnostics {
        assert!(d.file.is_some() && d.line.unwrap_or(0) > 0 && d.column.unwrap_or(0) > 0, "no position: {d:?}");
    }
    if n > 0 {
        assert_eq!(c.is_valid(), !c.diagnostics.iter().any(|d| d.is_error()));
    }
    if let Some(s) = c.snapshot() {
        assert!(s.typed().is_ok(), "a snapshot's config always decodes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let p = json5::parse(&text);
        for e in &p.errors {
            prop_assert!(e.pos.line >= 1 && e.pos.col >= 1);
        }
    }

    #[test]
    fn parser_never_panics_on_mutated_json5(v in value(), cut in 0usize..400, junk in "[{}\\[\\],:'\"/*\\\\0-9a-zA-Z ]{0,4}") {
        let mut text = String::new();
        to_json5(&v, &mut text);
        let at = text.char_indices().map(|(i, _)| i).nth(cut % text.chars().count().max(1)).unwrap_or(0);
        text.insert_str(at, &junk);
        let _ = json5::parse(&text);
    }

    #[test]
    fn parser_agrees_with_the_json5_crate(v in value()) {
        let mut text = String::new();
        to_json5(&v, &mut text);
        let ours = json5::parse(&text);
        prop_assert!(ours.errors.is_empty(), "{text}: {:?}", ours.errors);
        let theirs: serde_json::Value = ::json5::from_str(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(ours.node.map(|n| n.to_value()), Some(theirs));
    }

    #[test]
    fn compiler_never_panics_and_always_places_diagnostics(sys in prop::option::of(value()), st in prop::option::of(value()), junk in prop::option::of("\\PC{0,40}")) {
        let render = |v: serde_json::Value| { let mut s = String::new(); to_json5(&v, &mut s); s };
        let state = match (st, junk) {
            (Some(v), Some(j)) => Some(format!("{}{j}", render(v))),
            (Some(v), None) => Some(render(v)),
            (None, j) => j,
        };
        check_compile(sys.map(render), state);
    }
}

/// The appliance fixture with one number replaced, to probe the schema's ranges.
fn appliance_with(path: &[&str], n: i64) -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config/valid-appliance/system.json5")).unwrap();
    let mut v = json5::parse(&text).node.unwrap().to_value();
    let mut cur = &mut v;
    for (i, k) in path.iter().enumerate() {
        if i + 1 == path.len() {
            cur[*k] = serde_json::Value::from(n);
        } else {
            cur = &mut cur[*k];
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The fast path may skip the jsonschema validator only when the schema agrees.
    #[test]
    fn fast_path_implies_schema_valid(v in value()) {
        let schema = openclaw::config::schema::get();
        if openclaw::config::validate::fast_valid(&v).is_some() {
            prop_assert!(jsonschema::is_valid(schema, &v), "fast path accepted a schema-invalid config: {v}");
        }
    }

    #[test]
    fn fast_path_agrees_on_ranges(which in 0usize..4, n in prop::sample::select(vec![-1i64, 0, 1, 4000, 65535, 65536, 1 << 40])) {
        let paths: [&[&str]; 4] = [
            &["gateway", "port"],
            &["hooks", "maxBodyBytes"],
            &["channels", "whatsapp", "textChunkLimit"],
            &["channels", "whatsapp", "mediaMaxMb"],
        ];
        let v = appliance_with(paths[which], n);
        let schema = openclaw::config::schema::get();
        prop_assert_eq!(openclaw::config::validate::fast_valid(&v).is_some(), jsonschema::is_valid(schema, &v), "{:?} = {}", paths[which], n);
    }
}
