//! In-process compile of a typical appliance config, against baselines measured in the same run:
//! parsing the same text with the `json5` crate to a `serde_json::Value` (the least any JSON5
//! loader does).
//!
//! `cargo bench --bench config_compile` prints µs per compile and the ratio to the baseline.
//! Under `cargo test` (no `--bench` argument) it runs each case once as a smoke test.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use openclaw::config::compile::compile_sources;
use openclaw::config::sources::{Inputs, Layer, Source};

fn appliance_text() -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config/valid-appliance/system.json5");
    std::fs::read_to_string(p).expect("appliance fixture")
}

fn compile_once(text: &str) -> bool {
    let src = Source { layer: Layer::System, path: PathBuf::from("system.json5"), text: text.to_string(), sha256: String::new() };
    let env: HashMap<String, String> = HashMap::new();
    let c = compile_sources(Inputs { system: None, state_dir: None }, vec![src], &env, false);
    c.is_valid()
}

/// Median of `rounds` timings of `iters` calls, in nanoseconds per call.
fn measure(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let text = appliance_text();
    // The first compile builds the schema and validator (once per process, as in the CLI).
    let first = Instant::now();
    let t0 = Instant::now();
    let schema = openclaw::config::schema::get();
    let t_schema = t0.elapsed();
    let t1 = Instant::now();
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let t_validator = t1.elapsed();
    black_box(validator);
    assert!(compile_once(&text), "the appliance fixture must compile");
    let cold = first.elapsed();
    let (rounds, iters) = if bench { (15, 400) } else { (1, 1) };
    let baseline = measure(rounds, iters, || {
        let v: serde_json::Value = json5::from_str(black_box(&text)).expect("json5");
        black_box(v);
    });
    let ours = measure(rounds, iters, || {
        black_box(compile_once(black_box(&text)));
    });
    println!("config compile (appliance config, {} bytes)", text.len());
    println!("  first compile in process, cold:                       {:>8.1} µs", cold.as_nanos() as f64 / 1000.0);
    println!("    schema load (embedded JSON, once per process):     {:>8.1} µs", t_schema.as_nanos() as f64 / 1000.0);
    println!("    validator build (only for configs with errors):    {:>8.1} µs", t_validator.as_nanos() as f64 / 1000.0);
    println!("  baseline json5 crate parse to Value:                  {:>8.1} µs", baseline / 1000.0);
    println!("  openclaw full compile (parse+merge+schema+rules):     {:>8.1} µs", ours / 1000.0);
    println!("  ratio compile / json5 parse:                          {:>8.2}x", ours / baseline);
}
