//! Finding and reading the two config layers.
//!
//! - System layer: `--config FILE`, else `$OPENCLAW_CONFIG_PATH`, else
//!   `/etc/openclaw/openclaw.json` if it exists. Never written by the program.
//! - State layer: `<state dir>/openclaw.json`, state dir from `--state-dir`, else
//!   `$OPENCLAW_STATE_DIR`, else `~/.openclaw`. Skipped with `--no-state`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::env::EnvSource;

/// The default system config path written by the NixOS module.
pub const DEFAULT_SYSTEM_CONFIG: &str = "/etc/openclaw/openclaw.json";
/// Environment variable naming the system config file.
pub const CONFIG_PATH_ENV: &str = "OPENCLAW_CONFIG_PATH";

/// Which layer a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The declarative, read-only file (NixOS: `/etc/openclaw/openclaw.json`).
    System,
    /// The mutable file in the state directory.
    State,
}

impl Layer {
    /// `system` or `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::System => "system",
            Layer::State => "state",
        }
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct SourceRequest {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--state-dir DIR`.
    pub state_dir: Option<PathBuf>,
    /// `--no-state`: ignore the state layer (the NixOS build-time check has no state).
    pub no_state: bool,
}

/// The resolved inputs of a compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The system file, and whether it was named explicitly (then it must exist).
    pub system: Option<(PathBuf, bool)>,
    /// The state directory (absent with `--no-state`).
    pub state_dir: Option<PathBuf>,
}

fn expand_home(p: &str, env: &dyn EnvSource) -> PathBuf {
    match (p.strip_prefix("~/"), env.var("HOME")) {
        (Some(rest), Some(home)) if !home.is_empty() => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The state dir from the flag, else `$OPENCLAW_STATE_DIR`, else `$OPENCLAW_HOME/.openclaw`,
/// else `$HOME/.openclaw` (the store's one rule, with `env` injected).
pub fn state_dir(flag: Option<&Path>, env: &dyn EnvSource) -> PathBuf {
    crate::store::layout::resolve_state_dir_with(flag, |k| env.var(k))
}

/// Resolves the layers without reading them.
pub fn resolve(req: &SourceRequest, env: &dyn EnvSource) -> Inputs {
    let system = if let Some(p) = &req.config {
        Some((p.clone(), true))
    } else if let Some(v) = env.var(CONFIG_PATH_ENV).filter(|v| !v.is_empty()) {
        Some((expand_home(&v, env), true))
    } else if Path::new(DEFAULT_SYSTEM_CONFIG).exists() {
        Some((PathBuf::from(DEFAULT_SYSTEM_CONFIG), false))
    } else {
        None
    };
    let state_dir = if req.no_state { None } else { Some(state_dir(req.state_dir.as_deref(), env)) };
    Inputs { system, state_dir }
}

/// A config file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its layer.
    pub layer: Layer,
    /// Its path as given.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// `sha256` of its bytes, hex.
    pub sha256: String,
}

/// A config file that exists but cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file named by `--config` or `$OPENCLAW_CONFIG_PATH` does not exist.
    #[error("{path}: config file not found (named by {by})")]
    NotFound {
        /// The path.
        path: PathBuf,
        /// `--config` or the variable.
        by: &'static str,
    },
    /// Reading failed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not UTF-8.
    #[error("{path}: not a text file (invalid UTF-8 at byte {offset})")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
        /// Where the bad byte is.
        offset: usize,
    },
}

fn read(path: &Path, layer: Layer) -> Result<Option<Source>, InputError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(InputError::Io { path: path.to_path_buf(), source }),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let text = String::from_utf8(bytes)
        .map_err(|e| InputError::NotUtf8 { path: path.to_path_buf(), offset: e.utf8_error().valid_up_to() })?;
    Ok(Some(Source { layer, path: path.to_path_buf(), text, sha256 }))
}

/// Reads the layers that exist: the system file first, then the state file.
pub fn read_inputs(inputs: &Inputs, config_flag_given: bool) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    let mut system_canon = None;
    if let Some((path, explicit)) = &inputs.system {
        match read(path, Layer::System)? {
            Some(s) => {
                system_canon = std::fs::canonicalize(path).ok();
                out.push(s);
            }
            None if *explicit => {
                let by = if config_flag_given { "--config" } else { CONFIG_PATH_ENV };
                return Err(InputError::NotFound { path: path.clone(), by });
            }
            None => {}
        }
    }
    if let Some(dir) = &inputs.state_dir {
        let path = crate::store::StateLayout::new(dir).config_file();
        let same_as_system =
            system_canon.is_some() && std::fs::canonicalize(&path).ok().as_ref() == system_canon.as_ref();
        if same_as_system {
            // Single-file setup: $OPENCLAW_CONFIG_PATH points at the state file. It is the state
            // layer, as upstream has it.
            if let Some(s) = out.pop() {
                out.push(Source { layer: Layer::State, ..s });
            }
        } else if let Some(s) = read(&path, Layer::State)? {
            out.push(s);
        }
    }
    Ok(out)
}
