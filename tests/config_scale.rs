//! Scale of the config compiler (issue 14 item 17): a large, valid config checks in linear time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use openclaw::config::compile::compile_sources;
use openclaw::config::json5;
use openclaw::config::sources::{Inputs, Layer, Source};

/// A valid config with `n` keys in one object (WhatsApp groups by JID).
fn many_groups(n: usize) -> String {
    let mut s = String::from("{ channels: { whatsapp: { groups: {\n");
    for i in 0..n {
        s.push_str(&format!("  \"1203630{i:08}@g.us\": {{ requireMention: true }},\n"));
    }
    s.push_str("} } } }\n");
    s
}

/// The time bound is for an optimised build; a debug build (plain `cargo test`) is allowed 10x.
fn bound() -> Duration {
    if cfg!(debug_assertions) { Duration::from_secs(10) } else { Duration::from_secs(1) }
}

#[test]
fn issue14_item17_duplicate_key_detection_is_linear() {
    // The parser alone, at two sizes: quadratic detection made 4x the keys cost 16x the time.
    let small = many_groups(25_000);
    let large = many_groups(100_000);
    let t = Instant::now();
    let p = json5::parse(&small);
    let t_small = t.elapsed();
    assert!(p.errors.is_empty());
    let t = Instant::now();
    let p = json5::parse(&large);
    let t_large = t.elapsed();
    assert!(p.errors.is_empty());
    eprintln!("parse: 25,000 keys {t_small:?}, 100,000 keys {t_large:?}");
    assert!(t_large < t_small * 8 + Duration::from_millis(50), "4x the keys took {t_large:?} vs {t_small:?}: not linear");
    // A duplicate among 100,000 keys is still reported, with both positions.
    let dup = large.replacen("} } } }", "  \"120363000000007@g.us\": {},\n} } } }", 1);
    let p = json5::parse(&dup);
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert!(p.errors[0].to_string().contains("first defined at 9:3"), "{}", p.errors[0]);
}

#[test]
fn issue14_item17_a_valid_100000_key_config_checks_in_under_a_second() {
    let text = many_groups(100_000);
    let env: HashMap<String, String> = HashMap::new();
    let srcs = vec![Source { layer: Layer::System, path: PathBuf::from("big.json5"), text, sha256: String::new() }];
    let t = Instant::now();
    let c = compile_sources(Inputs { system: None, state_dir: None }, srcs, &env, false);
    let took = t.elapsed();
    assert!(c.is_valid(), "{:?}", c.diagnostics.iter().take(3).collect::<Vec<_>>());
    eprintln!("100,000-key config compiled in {took:?}");
    assert!(took < bound(), "100,000 keys took {took:?} (bound {:?})", bound());
}
