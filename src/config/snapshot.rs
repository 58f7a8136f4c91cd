//! The compiled, validated, immutable snapshot the gateway runs from.
//!
//! It holds the effective config (defaults filled in, secret values removed), where each set
//! value came from, the source files with their sha256, the compiler version, and each secret's
//! source and fingerprint. It is written atomically with mode 0600.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diagnostic::Diagnostic;
use super::model::OpenClawConfig;
use super::secrets::{self, SecretInfo, SecretSource};
use super::sources::Layer;

/// The snapshot format identifier.
pub const FORMAT: &str = "openclaw-snapshot/1";

/// A source file of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Its layer.
    pub layer: Layer,
    /// Its path.
    pub path: PathBuf,
    /// `sha256` of its bytes, hex.
    pub sha256: String,
}

/// Where one location in a file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The layer of the file.
    pub layer: Layer,
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// Where a set value came from, and what it shadowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceInfo {
    /// Where the value was written.
    #[serde(flatten)]
    pub at: Location,
    /// Lower-layer values it replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadowed: Vec<Location>,
}

/// The compiler that made a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompilerInfo {
    /// Always `openclaw`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// A compiled configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// [`FORMAT`].
    pub format: String,
    /// Who compiled it.
    pub compiler: CompilerInfo,
    /// The state directory it was compiled for (absent with `--no-state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// The files it was compiled from.
    pub sources: Vec<SourceInfo>,
    /// The effective configuration: defaults filled in, secret values removed.
    pub config: serde_json::Value,
    /// Origin of every value set in a file, by config path.
    pub provenance: BTreeMap<String, ProvenanceInfo>,
    /// Each secret's source and fingerprint, by the path of its value key.
    pub secrets: BTreeMap<String, SecretInfo>,
    /// Warnings of the compilation.
    #[serde(default)]
    pub warnings: Vec<Diagnostic>,
}

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading failed.
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a snapshot.
    #[error("{path} is not an openclaw snapshot: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] crate::store::AtomicWriteError),
}

/// Why a secret could not be re-read from its source.
#[derive(Debug, thiserror::Error)]
pub enum SecretResolveError {
    /// The snapshot has no such secret.
    #[error("no secret {0} in the snapshot")]
    Missing(String),
    /// The source cannot be read.
    #[error("{name}: {reason}")]
    Unavailable {
        /// The secret.
        name: String,
        /// Why.
        reason: String,
    },
    /// The source now holds a different value than at compile time.
    #[error("{name}: the value at its source ({now}) differs from the compiled snapshot ({compiled}); recompile the snapshot")]
    Changed {
        /// The secret.
        name: String,
        /// Fingerprint now.
        now: String,
        /// Fingerprint in the snapshot.
        compiled: String,
    },
}

impl Snapshot {
    /// The typed configuration.
    pub fn typed(&self) -> Result<OpenClawConfig, serde_json::Error> {
        serde_json::from_value(self.config.clone())
    }

    /// Serialises as pretty JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the snapshot atomically with mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), SnapshotError> {
        crate::store::write_atomic(path, self.to_json().as_bytes(), 0o600)?;
        Ok(())
    }

    /// Reads and checks a snapshot file.
    pub fn load(path: &Path) -> Result<Self, SnapshotError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SnapshotError::Io { path: path.to_path_buf(), source })?;
        let invalid = |reason: String| SnapshotError::Invalid { path: path.to_path_buf(), reason };
        let snap: Snapshot = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if snap.format != FORMAT {
            return Err(invalid(format!("format {:?}, expected {FORMAT:?}", snap.format)));
        }
        snap.typed().map_err(|e| invalid(format!("config does not decode: {e}")))?;
        Ok(snap)
    }

    /// Re-reads secret `name` (e.g. `gateway.auth.token`) from its source and checks it against
    /// the compiled fingerprint. Only the config module reads config files, so this lives here.
    pub fn resolve_secret(&self, name: &str) -> Result<String, SecretResolveError> {
        let info = self.secrets.get(name).ok_or_else(|| SecretResolveError::Missing(name.to_string()))?;
        if let SecretSource::File { path } = &info.source {
            secrets::read_secret_file(path)
                .map_err(|e| SecretResolveError::Unavailable { name: name.to_string(), reason: e.to_string() })?;
        }
        let value = self.read_secret(name)?;
        if let Some(compiled) = &info.fingerprint {
            let now = secrets::fingerprint(value.as_bytes());
            if &now != compiled {
                return Err(SecretResolveError::Changed { name: name.to_string(), now, compiled: compiled.clone() });
            }
        }
        Ok(value)
    }

    /// The extra HTTP headers of provider `id` with their real values, re-read from their
    /// sources (the snapshot holds only fingerprints) and checked against the compiled ones.
    pub fn provider_headers(&self, id: &str) -> Result<BTreeMap<String, String>, SecretResolveError> {
        let base = super::path::KeyPath::root().key("models").key("providers").key(id).key("headers");
        let mut out = BTreeMap::new();
        for name in self.secrets.keys() {
            let Some(path) = super::path::KeyPath::parse_dotted(name) else { continue };
            if path.parent() == base
                && let Some(header) = path.last_key()
            {
                out.insert(header.to_string(), self.resolve_secret(name)?);
            }
        }
        Ok(out)
    }

    /// The base URL of provider `id`: from the config, or, when it carries user-info (then it
    /// is a secret and the snapshot holds only its fingerprint), re-read from its source.
    pub fn provider_base_url(&self, id: &str) -> Result<Option<String>, SecretResolveError> {
        let path = super::path::KeyPath::root().key("models").key("providers").key(id).key("baseUrl");
        let name = path.to_string();
        if self.secrets.contains_key(&name) {
            return self.resolve_secret(&name).map(Some);
        }
        Ok(path.get(&self.config).and_then(|v| v.as_str()).map(String::from))
    }

    /// Re-reads secret `name` from its source without comparing it with the compiled
    /// fingerprint and without checking a secret file's permissions: the gateway's token checks
    /// do both, with their own exit codes. [`Snapshot::resolve_secret`] does both here.
    pub fn read_secret(&self, name: &str) -> Result<String, SecretResolveError> {
        let info = self.secrets.get(name).ok_or_else(|| SecretResolveError::Missing(name.to_string()))?;
        let unavailable = |reason: String| SecretResolveError::Unavailable { name: name.to_string(), reason };
        let value = match &info.source {
            SecretSource::File { path } => {
                secrets::read_secret_file_unchecked(path).map_err(|e| unavailable(e.to_string()))?
            }
            SecretSource::Env { var } => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| unavailable(format!("environment variable {var} is not set")))?,
            SecretSource::Inline { file, .. } => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| unavailable(format!("cannot read {}: {e}", file.display())))?;
                let parsed = super::json5::parse(&text);
                let path = super::path::KeyPath::parse_dotted(name).unwrap_or_default();
                parsed
                    .node
                    .map(|n| n.to_value())
                    .and_then(|v| path.get(&v).and_then(|s| s.as_str()).map(String::from))
                    .ok_or_else(|| unavailable(format!("{} no longer sets it", file.display())))?
            }
        };
        Ok(value)
    }
}
