//! Gathering the model-provider facts: the same listing request `openclaw models status` makes
//! ([`crate::agent::providers::status::probe`]), bounded per provider, plus where each key
//! comes from (so a fix can name the setting without printing the key). Read-only: one `GET`
//! of the provider's model listing, nothing written.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::agent::providers::status::{self, ListOutcome, ProviderStatus};
use crate::agent::providers::{HttpClient, ProviderSet, Timeouts};
use crate::config::env::ProcessEnv;
use crate::config::secrets::SecretSource;
use crate::config::snapshot::Snapshot;
use crate::config::sources::SourceRequest;
use crate::doctor::facts::GatherOptions;

/// Where a provider's API key comes from (never its value).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum KeySource {
    /// No key configured.
    None,
    /// `models.providers.<id>.apiKeyFile`.
    File {
        /// The key file.
        path: PathBuf,
    },
    /// `models.providers.<id>.apiKey` written in a config file.
    Inline {
        /// The config file.
        file: PathBuf,
        /// 1-based line.
        line: u32,
    },
    /// `"${VAR}"` substituted from the environment.
    Env {
        /// The variable.
        var: String,
    },
}

/// One provider's probe.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderFact {
    /// What the listing request found.
    pub status: ProviderStatus,
    /// Where its key comes from.
    pub key_source: KeySource,
}

/// The model providers as probed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderFacts {
    /// Why nothing was probed (invalid config, a key that cannot be read), if so.
    pub not_checked: Option<String>,
    /// `agents.defaults.model`: primary first, then the fallbacks.
    pub chain: Vec<String>,
    /// Each configured provider, by id.
    pub providers: Vec<ProviderFact>,
    /// The bound on each probe, in ms.
    pub timeout_ms: u64,
}

fn key_source(snapshot: &Snapshot, id: &str) -> KeySource {
    match snapshot.secrets.get(&format!("models.providers.{id}.apiKey")).map(|i| &i.source) {
        None => KeySource::None,
        Some(SecretSource::File { path }) => KeySource::File { path: path.clone() },
        Some(SecretSource::Inline { file, line, .. }) => KeySource::Inline { file: file.clone(), line: *line },
        Some(SecretSource::Env { var }) => KeySource::Env { var: var.clone() },
    }
}

/// Compiles the config and probes every provider, each bounded by `timeout` (connect, idle
/// and the whole request).
pub async fn gather(opts: &GatherOptions, timeout: Duration) -> ProviderFacts {
    let mut out = ProviderFacts { timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), ..Default::default() };
    let request = SourceRequest { config: opts.config.clone(), state_dir: opts.state_dir.clone(), no_state: false };
    let snapshot = match crate::config::compile(&crate::config::Options { request }, &ProcessEnv) {
        Ok(c) => c.snapshot(),
        Err(_) => None,
    };
    let Some(snapshot) = snapshot else {
        out.not_checked = Some("the config is invalid".into());
        return out;
    };
    let set = match ProviderSet::from_snapshot(&snapshot) {
        Ok(s) => s,
        Err(e) => {
            out.not_checked = Some(e.to_string());
            return out;
        }
    };
    out.chain = set.chain.clone();
    let client = match HttpClient::new(Timeouts { connect: timeout, idle: timeout }) {
        Ok(c) => c,
        Err(e) => {
            out.not_checked = Some(e.to_string());
            return out;
        }
    };
    let probes = set.providers.values().map(|spec| {
        let client = &client;
        let chain = &set.chain;
        let key_source = key_source(&snapshot, &spec.id);
        async move {
            let status = match tokio::time::timeout(timeout, status::probe(client, spec, chain)).await {
                Ok(s) => s,
                Err(_) => {
                    let outcome = ListOutcome::Transport(format!("no answer within {} ms", timeout.as_millis()));
                    status::classify(spec, &status::models_to_check(spec, chain), &outcome, None)
                }
            };
            ProviderFact { status, key_source }
        }
    });
    out.providers = futures_util::future::join_all(probes).await;
    out
}
