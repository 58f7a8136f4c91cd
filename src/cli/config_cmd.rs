//! `openclaw config ...`: check, compile, explain, schema.
//!
//! Exit codes: 0 valid (warnings allowed), 1 invalid, 2 an input cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::env::ProcessEnv;
use crate::config::path::KeyPath;
use crate::config::sources::SourceRequest;
use crate::config::{self, Compilation, Diagnostic};

/// Which config files to read.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The system config file (default: $OPENCLAW_CONFIG_PATH, else /etc/openclaw/openclaw.json
    /// if it exists). It wins over the state file for every key it sets.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The state directory whose openclaw.json is the state layer (default: $OPENCLAW_STATE_DIR,
    /// else ~/.openclaw).
    #[arg(long, value_name = "DIR", conflicts_with = "no_state")]
    pub state_dir: Option<PathBuf>,
    /// Ignore the state directory: check the system file alone, without reading secret files
    /// (for build-time checks, e.g. the NixOS module, where neither exists yet).
    #[arg(long)]
    pub no_state: bool,
}

impl SourceArgs {
    fn request(&self) -> SourceRequest {
        SourceRequest { config: self.config.clone(), state_dir: self.state_dir.clone(), no_state: self.no_state }
    }
}

/// `openclaw config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the merged configuration and print every diagnostic (exit 0 valid, 1 invalid,
    /// 2 unreadable).
    Check {
        /// Which files.
        #[command(flatten)]
        sources: SourceArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate and write the snapshot the gateway runs from (atomically, mode 0600).
    Compile {
        /// Which files.
        #[command(flatten)]
        sources: SourceArgs,
        /// Where to write the snapshot.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a setting's value, where it came from and what it shadowed.
    Explain {
        /// The setting, e.g. `gateway.port` or `channels.whatsapp.allowFrom`.
        key: String,
        /// Which files.
        #[command(flatten)]
        sources: SourceArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the configuration.
    Schema,
}

/// Runs a `config` subcommand.
pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { sources, json } => check(&sources, json),
        ConfigCommand::Compile { sources, out, json } => compile(&sources, &out, json),
        ConfigCommand::Explain { key, sources, json } => explain(&key, &sources, json),
        ConfigCommand::Schema => {
            print!("{}", config::schema::generate_pretty());
            ExitCode::SUCCESS
        }
    }
}

fn run_compiler(sources: &SourceArgs, json: bool) -> Result<Compilation, ExitCode> {
    let opts = config::Options { request: sources.request() };
    config::compile(&opts, &ProcessEnv).map_err(|e| {
        if json {
            println!("{}", json!({"ok": false, "valid": false, "error": {"kind": "unreadable", "message": e.to_string()}}));
        } else {
            eprintln!("openclaw: error: {e}");
        }
        ExitCode::from(2)
    })
}

fn sources_json(c: &Compilation) -> serde_json::Value {
    json!(c.sources.iter().map(|s| json!({"layer": s.layer, "path": s.path, "sha256": s.sha256})).collect::<Vec<_>>())
}

fn describe_sources(c: &Compilation) -> String {
    if c.sources.is_empty() {
        let state = c.inputs.state_dir.as_ref().map(|d| format!(", {}/openclaw.json", d.display())).unwrap_or_default();
        return format!("no config files found ({}{state}); using defaults", config::sources::DEFAULT_SYSTEM_CONFIG);
    }
    c.sources.iter().map(|s| format!("{} {}", s.layer.as_str(), s.path.display())).collect::<Vec<_>>().join(" + ")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn print_diagnostics<'a>(diags: impl Iterator<Item = &'a Diagnostic>, to_stderr: bool) {
    for d in diags {
        if to_stderr {
            eprintln!("{d}");
        } else {
            println!("{d}");
        }
    }
}

fn report_json(c: &Compilation, extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({
        "ok": c.is_valid(),
        "valid": c.is_valid(),
        "sources": sources_json(c),
        "errors": c.errors().collect::<Vec<_>>(),
        "warnings": c.warnings().collect::<Vec<_>>(),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

fn check(sources: &SourceArgs, json: bool) -> ExitCode {
    let c = match run_compiler(sources, json) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (errors, warnings) = (c.errors().count(), c.warnings().count());
    if json {
        println!("{}", report_json(&c, json!({})));
    } else {
        print_diagnostics(c.diagnostics.iter(), false);
        if c.is_valid() {
            let w = if warnings > 0 { format!(" ({})", plural(warnings, "warning")) } else { String::new() };
            println!("Config valid: {}{w}", describe_sources(&c));
        } else {
            println!(
                "Config invalid: {}, {} in {}",
                plural(errors, "error"),
                plural(warnings, "warning"),
                describe_sources(&c)
            );
        }
    }
    if c.is_valid() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn compile(sources: &SourceArgs, out: &std::path::Path, json: bool) -> ExitCode {
    let c = match run_compiler(sources, json) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(snap) = c.snapshot() else {
        if json {
            println!("{}", report_json(&c, json!({})));
        } else {
            print_diagnostics(c.diagnostics.iter(), true);
            eprintln!("openclaw: error: config invalid ({}); snapshot not written", plural(c.errors().count(), "error"));
        }
        return ExitCode::from(1);
    };
    if let Err(e) = snap.write(out) {
        if json {
            println!("{}", json!({"ok": false, "error": {"kind": "write", "message": e.to_string()}}));
        } else {
            eprintln!("openclaw: error: {e}");
        }
        return ExitCode::from(2);
    }
    if json {
        println!("{}", report_json(&c, json!({"snapshot": out})));
    } else {
        print_diagnostics(c.warnings(), true);
        eprintln!("Snapshot written: {} (from {})", out.display(), describe_sources(&c));
    }
    ExitCode::SUCCESS
}

fn explain(key: &str, sources: &SourceArgs, json: bool) -> ExitCode {
    let Some(path) = KeyPath::parse_dotted(key) else {
        eprintln!("openclaw: error: {key:?} is not a config path (write it like gateway.port or channels.whatsapp.allowFrom[0])");
        return ExitCode::from(2);
    };
    let schema = config::schema::get();
    if config::schema::at(schema, &path).is_none() {
        let parent = path.parent();
        let allowed = config::schema::at(schema, &parent).map(|s| config::schema::allowed_keys(schema, s)).unwrap_or_default();
        let hint = path
            .last_key()
            .and_then(|k| config::hints::did_you_mean(k, &allowed))
            .map(|s| format!(" (did you mean {}?)", parent.key(s)))
            .unwrap_or_default();
        eprintln!("openclaw: error: {path} is not a setting{hint}");
        return ExitCode::from(1);
    }
    let c = match run_compiler(sources, json) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(snap) = c.snapshot() else {
        print_diagnostics(c.errors(), true);
        eprintln!("openclaw: error: the config is invalid; fix the errors above (openclaw config check)");
        return ExitCode::from(1);
    };
    let name = path.to_string();
    let secret = snap.secrets.get(&name);
    let value = match secret {
        Some(s) => json!(format!("<secret {}>", s.fingerprint.as_deref().unwrap_or("not read"))),
        None => path.get(&snap.config).cloned().unwrap_or(serde_json::Value::Null),
    };
    let prov = snap.provenance.get(&name);
    if json {
        println!(
            "{}",
            json!({"key": name, "value": value, "set": prov.is_some(), "origin": prov.map(|p| &p.at),
                   "shadowed": prov.map(|p| &p.shadowed), "secret": secret})
        );
        return ExitCode::SUCCESS;
    }
    let shown = if value.is_null() { "(not set)".to_string() } else { value.to_string() };
    match prov {
        Some(p) => {
            println!("{name} = {shown}");
            println!("  set in {} {}:{}:{}", p.at.layer.as_str(), p.at.file.display(), p.at.line, p.at.column);
            for s in &p.shadowed {
                println!("  shadows {} {}:{}:{}", s.layer.as_str(), s.file.display(), s.line, s.column);
            }
        }
        None if value.is_null() => println!("{name} (not set, no default)"),
        None => println!("{name} = {shown}\n  default (not set in any file)"),
    }
    if let Some(s) = secret {
        match &s.source {
            config::secrets::SecretSource::File { path } => println!("  secret read from {}", path.display()),
            config::secrets::SecretSource::Env { var } => println!("  secret from environment variable {var}"),
            config::secrets::SecretSource::Inline { .. } => println!("  secret written inline (prefer a *File key)"),
        }
    }
    ExitCode::SUCCESS
}
