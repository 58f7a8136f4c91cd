//! The compiler pipeline: read → parse → substitute → merge → validate → snapshot.
//! Returns every diagnostic of the run; never panics on user input.

use std::collections::BTreeMap;

use super::diagnostic::{Diagnostic, Severity};
use super::env::{self, EnvSource};
use super::json5::{self, Node, NodeValue, ParseErrorKind};
use super::locate::Locator;
use super::merge::{self, LayerInput, Provenance};
use super::model::OpenClawConfig;
use super::path::KeyPath;
use super::secrets::{self, SecretInfo, SecretSource};
use super::snapshot::{CompilerInfo, Location, ProvenanceInfo, Snapshot, SourceInfo, FORMAT};
use super::sources::{self, InputError, Inputs, Layer, Source, SourceRequest};
use super::{semantic, validate};

/// What to compile and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which files.
    pub request: SourceRequest,
}

/// A compiled, valid configuration.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The typed config (secret values still present: for this process only).
    pub config: OpenClawConfig,
    /// The merged value as written (no defaults).
    pub merged: serde_json::Value,
    /// Where every written value came from.
    pub provenance: Provenance,
    /// Secrets: sources and fingerprints.
    pub secrets: Vec<(KeyPath, SecretInfo)>,
}

/// The result of one compilation.
#[derive(Debug, Clone)]
pub struct Compilation {
    /// The resolved inputs.
    pub inputs: Inputs,
    /// The files read, system first.
    pub sources: Vec<Source>,
    /// Every diagnostic, errors first, each group in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Present when there are no errors.
    pub output: Option<Compiled>,
}

impl Compilation {
    /// No errors.
    pub fn is_valid(&self) -> bool {
        self.output.is_some()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// The snapshot of a valid compilation.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let out = self.output.as_ref()?;
        let mut config = serde_json::to_value(&out.config).ok()?;
        for (path, _) in &out.secrets {
            remove(&mut config, path);
        }
        // The snapshot outlives the working directory: it records absolute paths.
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let loc = |o: &merge::Origin| {
            let s = &self.sources[o.source];
            let p = o.pos();
            Location { layer: s.layer, file: abs(&s.path), line: p.line, column: p.col }
        };
        let provenance = out
            .provenance
            .iter()
            .filter(|(k, _)| !k.is_root())
            .map(|(k, e)| {
                (k.to_string(), ProvenanceInfo { at: loc(&e.origin), shadowed: e.shadowed.iter().map(loc).collect() })
            })
            .collect::<BTreeMap<_, _>>();
        Some(Snapshot {
            format: FORMAT.to_string(),
            compiler: CompilerInfo { name: "openclaw".into(), version: env!("CARGO_PKG_VERSION").into() },
            state_dir: self.inputs.state_dir.clone(),
            sources: self
                .sources
                .iter()
                .map(|s| SourceInfo { layer: s.layer, path: abs(&s.path), sha256: s.sha256.clone() })
                .collect(),
            config,
            provenance,
            secrets: out
                .secrets
                .iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    if let SecretSource::Inline { file, .. } = &mut v.source {
                        *file = abs(file);
                    }
                    (k.to_string(), v)
                })
                .collect(),
            warnings: self.warnings().cloned().collect(),
        })
    }
}

fn remove(v: &mut serde_json::Value, path: &KeyPath) {
    let (Some(last), parent) = (path.last_key(), path.parent()) else { return };
    let mut cur = v;
    for seg in &parent.0 {
        cur = match (seg, cur) {
            (super::path::Seg::Key(k), serde_json::Value::Object(m)) => match m.get_mut(k) {
                Some(c) => c,
                None => return,
            },
            _ => return,
        };
    }
    if let serde_json::Value::Object(m) = cur {
        m.remove(last);
    }
}

/// Resolves, reads and compiles. `Err` only when an input cannot be read (exit code 2).
pub fn compile(opts: &Options, env: &dyn EnvSource) -> Result<Compilation, InputError> {
    let inputs = sources::resolve(&opts.request, env);
    let srcs = sources::read_inputs(&inputs, opts.request.config.is_some())?;
    let read_secret_files = !opts.request.no_state;
    Ok(compile_sources(inputs, srcs, env, read_secret_files))
}

/// Compiles already-read sources (system first). Pure except for reading secret files when
/// `read_secret_files`.
pub fn compile_sources(inputs: Inputs, srcs: Vec<Source>, env: &dyn EnvSource, read_secret_files: bool) -> Compilation {
    let mut diags = Vec::new();
    let mut trees: Vec<(usize, Node)> = Vec::new();
    let mut syntax_failed = false;

    // 1. Parse every layer; report all problems of all layers.
    for (i, s) in srcs.iter().enumerate() {
        let parsed = json5::parse(&s.text);
        for e in &parsed.errors {
            let d = match &e.kind {
                ParseErrorKind::Syntax(m) => {
                    syntax_failed = true;
                    Diagnostic::error("syntax", &e.path, format!("invalid JSON5: {m}"))
                }
                ParseErrorKind::DuplicateKey { key, first } => {
                    Diagnostic::error("duplicate-key", &e.path, format!("duplicate key {key:?} (first defined at {first})"))
                        .hint("JSON5 readers keep only one of them silently; delete one")
                }
                ParseErrorKind::NonFinite(t) => Diagnostic::error(
                    "non-finite",
                    &e.path,
                    format!("non-finite number {t} is not allowed"),
                ),
            };
            diags.push(d.at(&s.path, e.pos));
        }
        if let Some(node) = parsed.node {
            if !matches!(node.value, NodeValue::Object(_)) {
                diags.push(
                    Diagnostic::error(
                        "invalid-type",
                        KeyPath::root(),
                        format!("the config must be an object, found {}", node.type_name()),
                    )
                    .at(&s.path, node.pos),
                );
                syntax_failed = true;
            } else {
                trees.push((i, node));
            }
        }
    }
    if syntax_failed {
        return finish(inputs, srcs, diags, None);
    }

    // 2. ${VAR} substitution, per layer.
    let mut substituted = Vec::new();
    for (i, node) in trees.iter_mut() {
        let report = env::substitute(node, env);
        for p in report.problems {
            let what = if p.empty { "is empty" } else { "is not set" };
            diags.push(
                Diagnostic::error(
                    "env-unset",
                    &p.path,
                    format!("environment variable {} {what} (referenced by {})", p.var, p.path),
                )
                .hint(format!("set {} for this process, or write $${{{}}} for a literal", p.var, p.var))
                .at(&srcs[*i].path, p.pos),
            );
        }
        substituted.extend(report.substituted);
    }

    // 3. Channels come from the system layer only when there is one.
    let system_idx = trees.iter().position(|(i, _)| srcs[*i].layer == Layer::System);
    let state_idx = trees.iter().position(|(i, _)| srcs[*i].layer == Layer::State);
    if let (Some(si), Some(ti)) = (system_idx, state_idx) {
        let system_channels: Vec<String> = object_keys(&trees[si].1, "channels");
        let state_src = trees[ti].0;
        if let NodeValue::Object(members) = &mut trees[ti].1.value {
            if let Some(pos) = members.iter().position(|m| m.key == "channels") {
                let ch = members.remove(pos);
                if let NodeValue::Object(chans) = &ch.value.value {
                    for c in chans {
                        let path = KeyPath::root().key("channels").key(&c.key);
                        let d = if system_channels.contains(&c.key) {
                            Diagnostic::warning(
                                "channel-in-state",
                                &path,
                                format!("channels.{} in the state file is ignored: channels are declared in the system config", c.key),
                            )
                            .hint(format!("move these settings to channels.{} in the system config (NixOS: services.openclaw.settings.channels.{})", c.key, c.key))
                        } else {
                            Diagnostic::warning(
                                "channel-not-declared",
                                &path,
                                format!("channel \"{}\" is defined only in the state file and will not start", c.key),
                            )
                            .hint(format!(
                                "channels are declared in the system config: add channels.{} to {} (NixOS: services.openclaw.settings.channels.{})",
                                c.key,
                                srcs[trees[si].0].path.display(),
                                c.key
                            ))
                        };
                        diags.push(d.at(&srcs[state_src].path, c.key_pos));
                    }
                }
            }
        }
    }

    // 4. Merge.
    let layer = |idx: Option<usize>| idx.map(|k| LayerInput { source: trees[k].0, node: &trees[k].1 });
    let merged = merge::merge(layer(system_idx), layer(state_idx));
    let loc = Locator { provenance: &merged.provenance, sources: &srcs };
    let secret_keys: Vec<KeyPath> =
        secrets::specs(&merged.value).into_iter().flat_map(|s| std::iter::once(s.value).chain(s.file)).collect();
    for s in &merged.shadowings {
        let w = &srcs[s.winner.source];
        let p = s.winner.pos();
        if secret_keys.contains(&s.path) {
            // Two layers naming different secrets is the "token mismatch after a restart" trap.
            let fp = |v: &serde_json::Value| match v.as_str() {
                Some(t) if s.path.last_key().is_some_and(|k| !k.ends_with("File")) => secrets::fingerprint(t.as_bytes()),
                _ => v.to_string(),
            };
            diags.push(
                Diagnostic::error(
                    "secret-conflict",
                    &s.path,
                    format!(
                        "{} differs between the state file ({}) and the system file ({}:{}:{}, {})",
                        s.path,
                        fp(&s.loser_value),
                        w.path.display(),
                        p.line,
                        p.col,
                        fp(&s.winner_value)
                    ),
                )
                .hint("keep one source of each secret: remove it from the state file")
                .at(&srcs[s.loser.source].path, s.loser.pos()),
            );
            continue;
        }
        diags.push(
            Diagnostic::warning(
                "shadowed",
                &s.path,
                format!("{} in the state file is overridden by the system file ({}:{}:{})", s.path, w.path.display(), p.line, p.col),
            )
            .hint("remove it from the state file, or change it in the system config")
            .at(&srcs[s.loser.source].path, s.loser.pos()),
        );
    }

    // 5. Schema, then typed decoding and the semantic rules.
    // When the schema finds errors, the semantic rules still run on the config without the
    // offending keys, so one run reports everything it can.
    let fast = validate::fast_valid(&merged.value);
    let mut schema_errors = if fast.is_some() { Vec::new() } else { validate::check(&merged.value, &loc) };
    // A non-finite number was already reported and replaced by null: no second error for it.
    let non_finite: Vec<(Option<std::path::PathBuf>, Option<u32>, Option<u32>)> =
        diags.iter().filter(|d| d.code == "non-finite").map(|d| (d.file.clone(), d.line, d.column)).collect();
    schema_errors.retain(|d| !non_finite.contains(&(d.file.clone(), d.line, d.column)));
    diags.extend(schema_errors);
    let earlier_errors = diags.iter().any(Diagnostic::is_error);
    let checked = if earlier_errors {
        let mut pruned = merged.value.clone();
        for d in diags.iter().filter(|d| d.is_error()) {
            if let Some(p) = KeyPath::parse_dotted(&d.path) {
                prune(&mut pruned, p);
            }
        }
        std::borrow::Cow::Owned(pruned)
    } else {
        std::borrow::Cow::Borrowed(&merged.value)
    };
    let decoded = match fast {
        Some(config) if !earlier_errors => Ok(config),
        _ => serde_json::from_value::<OpenClawConfig>(checked.clone().into_owned()),
    };
    let mut output = None;
    {
        match decoded {
            Ok(config) => {
                let ctx = semantic::Context { env_gateway_token: env.var("OPENCLAW_GATEWAY_TOKEN").is_some_and(|v| !v.is_empty()) };
                diags.extend(semantic::check(&config, ctx, &loc));
                diags.extend(super::effect::warnings(&checked, &loc));
                let resolved = secrets::resolve(&checked, &substituted, read_secret_files, &loc, &mut diags);
                output = Some(Compiled {
                    config,
                    merged: merged.value,
                    provenance: merged.provenance,
                    secrets: resolved.infos,
                });
            }
            // With errors already reported the pruned config may still not decode: nothing more
            // to check then. Without them, schema and types disagree: a bug.
            Err(_) if earlier_errors => {}
            Err(e) => diags.push(loc.at_key(
                Diagnostic::error("internal", KeyPath::root(), format!("the config passed the schema but does not decode: {e}"))
                    .hint("this is a bug in openclaw; please report it with the config"),
                &KeyPath::root(),
            )),
        }
    }
    finish(inputs, srcs, diags, output)
}

/// Removes the object member at `path`; a path into an array removes the whole array member.
fn prune(v: &mut serde_json::Value, mut path: KeyPath) {
    while matches!(path.0.last(), Some(super::path::Seg::Index(_))) {
        path.0.pop();
    }
    if !path.is_root() {
        remove(v, &path);
    }
}

fn object_keys(node: &Node, key: &str) -> Vec<String> {
    match &node.value {
        NodeValue::Object(m) => match m.iter().find(|m| m.key == key).map(|m| &m.value.value) {
            Some(NodeValue::Object(inner)) => inner.iter().map(|m| m.key.clone()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn finish(inputs: Inputs, srcs: Vec<Source>, mut diags: Vec<Diagnostic>, output: Option<Compiled>) -> Compilation {
    let order = |d: &Diagnostic| {
        let src = d.file.as_ref().and_then(|f| srcs.iter().position(|s| &s.path == f)).unwrap_or(usize::MAX);
        (d.severity, src, d.line.unwrap_or(0), d.column.unwrap_or(0))
    };
    diags.sort_by_key(order);
    diags.dedup();
    let valid = !diags.iter().any(|d| d.severity == Severity::Error);
    Compilation { inputs, sources: srcs, diagnostics: diags, output: if valid { output } else { None } }
}
