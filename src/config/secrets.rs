//! Secrets in the config: `token` / `tokenFile` pairs, fingerprints, and re-reading a secret
//! from its source at gateway startup. Secret values never leave this module except to the
//! caller that asked for one; everything printable uses [`fingerprint`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::diagnostic::Diagnostic;
use super::locate::Locator;
use super::path::KeyPath;

/// The printable fingerprint of a secret: `sha256:` followed by the first 8 hex digits of its
/// SHA-256. This is what logs, snapshots, errors and `/health` show instead of the secret.
pub fn fingerprint(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("sha256:{}", &hex::encode(digest)[..8])
}

/// Permission bits a file or directory holding a secret must not have: any access for group or
/// others. **The one secret-file rule**, used by `config check`, the gateway's startup checks
/// and the WhatsApp credential store alike:
///
/// - a secret file the config names (`tokenFile`, `passwordFile`, `apiKeyFile`, ...) with any
///   of these bits is **refused** (it is the user's file: we do not change it);
/// - a secret file or directory the gateway writes itself (the generated token file, a
///   WhatsApp account's credentials and their directory) with any of these bits is
///   **repaired** ([`make_private`]: 0600 / 0700) with a warning, and refused if that fails.
pub const SECRET_FORBIDDEN_BITS: u32 = 0o077;

/// Whether `mode` gives group or others any access (see [`SECRET_FORBIDDEN_BITS`]).
pub fn too_open(mode: u32) -> bool {
    mode & SECRET_FORBIDDEN_BITS != 0
}

/// Repairs a secret file (to 0600) or directory (to 0700) the gateway owns when [`too_open`].
/// Returns the old mode when it changed something (the caller warns), `None` when it was fine
/// or does not exist.
pub fn make_private(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() || !too_open(mode) {
        return Ok(None);
    }
    let private = if meta.is_dir() { 0o700 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
    Ok(Some(mode))
}

/// Whether `url` carries user-info (`scheme://user[:password]@host...`).
pub fn url_has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// A secret setting: its value key and, if it has one, its `*File` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The inline value key, e.g. `gateway.auth.token`. Also the secret's name.
    pub value: KeyPath,
    /// The file key, e.g. `gateway.auth.tokenFile`.
    pub file: Option<KeyPath>,
}

/// The secret settings present in a config value.
pub fn specs(value: &serde_json::Value) -> Vec<SecretSpec> {
    let k = |s: &str| KeyPath::parse_dotted(s).unwrap_or_default();
    let mut out = vec![
        SecretSpec { value: k("gateway.auth.token"), file: Some(k("gateway.auth.tokenFile")) },
        SecretSpec { value: k("gateway.auth.password"), file: None },
        SecretSpec { value: k("gateway.remote.token"), file: None },
        SecretSpec { value: k("hooks.token"), file: Some(k("hooks.tokenFile")) },
    ];
    if let Some(providers) = value.pointer("/models/providers").and_then(|v| v.as_object()) {
        for (id, p) in providers {
            let base = k("models.providers").key(id);
            out.push(SecretSpec { value: base.key("apiKey"), file: Some(base.key("apiKeyFile")) });
            // Header values carry credentials (`Authorization`, `X-Api-Key`, ...): all secret.
            if let Some(headers) = p.get("headers").and_then(|h| h.as_object()) {
                for name in headers.keys() {
                    out.push(SecretSpec { value: base.key("headers").key(name), file: None });
                }
            }
            // A base URL with user-info (`https://user:pass@host/`) is secret as a whole.
            if p.get("baseUrl").and_then(|u| u.as_str()).is_some_and(url_has_userinfo) {
                out.push(SecretSpec { value: base.key("baseUrl"), file: None });
            }
        }
    }
    out
}

/// Where a secret comes from, as recorded in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum SecretSource {
    /// Written in a config file.
    Inline {
        /// The file.
        file: PathBuf,
        /// 1-based line of the value.
        line: u32,
        /// 1-based column of the value.
        column: u32,
    },
    /// Read from a file named by a `*File` key.
    File {
        /// The file.
        path: PathBuf,
    },
    /// Substituted from an environment variable (`"${VAR}"`).
    Env {
        /// The variable.
        var: String,
    },
}

/// A secret as the snapshot records it: its source and fingerprint, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// Where it comes from.
    #[serde(flatten)]
    pub source: SecretSource,
    /// `sha256:` + 8 hex of the value; absent when the value was not read (`--no-state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Why a secret file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    /// Relative paths are ambiguous for a service.
    #[error("{path} is not an absolute path")]
    NotAbsolute {
        /// The path.
        path: PathBuf,
    },
    /// Files under `/nix/store` are world-readable.
    #[error("{path} is in the Nix store, which is world-readable")]
    InNixStore {
        /// The path.
        path: PathBuf,
    },
    /// Could not read it.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The I/O error text.
        reason: String,
    },
    /// Group or others have access to it.
    #[error("{path} is open to group or others (mode {mode:04o}): a secret file may not be readable by group or others, nor writable or executable by them")]
    TooOpen {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Nothing in it.
    #[error("{path} is empty")]
    Empty {
        /// The path.
        path: PathBuf,
    },
}

impl SecretFileError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            SecretFileError::NotAbsolute { .. } => "use an absolute path".into(),
            SecretFileError::InNixStore { .. } => {
                "deliver the secret outside the store: systemd LoadCredential (services.openclaw.tokenFile)".into()
            }
            SecretFileError::Unreadable { .. } => "check the path and that this user may read it".into(),
            SecretFileError::TooOpen { path, .. } => {
                format!("chmod 600 {}, or deliver it with systemd LoadCredential", path.display())
            }
            SecretFileError::Empty { .. } => "write the secret into the file".into(),
        }
    }
}

/// Checks a secret file's path without reading it.
pub fn check_secret_path(path: &Path) -> Result<(), SecretFileError> {
    if !path.is_absolute() {
        return Err(SecretFileError::NotAbsolute { path: path.to_path_buf() });
    }
    if path.starts_with("/nix/store") {
        return Err(SecretFileError::InNixStore { path: path.to_path_buf() });
    }
    Ok(())
}

/// Reads a secret file: absolute, outside the Nix store, not group/world readable, non-empty.
/// Trailing line breaks are removed.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    check_secret_path(path)?;
    let meta = std::fs::metadata(path)
        .map_err(|e| SecretFileError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let mode = meta.permissions().mode() & 0o777;
    if too_open(mode) {
        return Err(SecretFileError::TooOpen { path: path.to_path_buf(), mode });
    }
    read_secret_file_unchecked(path)
}

/// Reads a secret file like [`read_secret_file`] but without the permission check, for callers
/// that check permissions themselves (the gateway's startup checks, with their own exit codes).
pub fn read_secret_file_unchecked(path: &Path) -> Result<String, SecretFileError> {
    check_secret_path(path)?;
    let unreadable = |e: std::io::Error| SecretFileError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let value = text.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(SecretFileError::Empty { path: path.to_path_buf() });
    }
    Ok(value)
}

/// The secrets of a merged config, resolved: what the snapshot records, plus the values for the
/// compile-time checks that compare secrets (never printed).
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Name (the value key's path) → info.
    pub infos: Vec<(KeyPath, SecretInfo)>,
    /// Name → value, for comparisons only.
    values: Vec<(KeyPath, String)>,
}

impl Resolved {
    fn value(&self, name: &KeyPath) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Resolves every secret in `value`: checks `x`/`xFile` pairs, reads files when `read_files`,
/// and records sources and fingerprints. `env_vars` lists values that came from `${VAR}`.
pub fn resolve(
    value: &serde_json::Value,
    env_vars: &[(KeyPath, Vec<String>)],
    read_files: bool,
    loc: &Locator<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Resolved {
    let mut out = Resolved::default();
    for spec in specs(value) {
        let inline = spec.value.get(value).and_then(|v| v.as_str());
        let file = spec.file.as_ref().and_then(|f| f.get(value).and_then(|v| v.as_str()).map(|s| (f, s)));
        match (inline, file) {
            (Some(_), Some((fkey, _))) => {
                let name = spec.value.last_key().unwrap_or("token");
                diags.push(loc.at_key(
                    Diagnostic::error(
                        "secret-conflict",
                        fkey,
                        format!("both {} and {} are set", spec.value, fkey),
                    )
                    .hint(format!("keep only {fkey} (a file stays out of the config); remove {name}")),
                    fkey,
                ));
            }
            (Some(v), None) => {
                let source = match env_vars.iter().find(|(k, _)| k == &spec.value) {
                    Some((_, vars)) if vars.len() == 1 => SecretSource::Env { var: vars[0].clone() },
                    _ => {
                        let (file, pos) = loc
                            .value_location(&spec.value)
                            .map(|(f, p)| (f.to_path_buf(), p))
                            .unwrap_or_default();
                        SecretSource::Inline { file, line: pos.line, column: pos.col }
                    }
                };
                out.infos.push((spec.value.clone(), SecretInfo { source, fingerprint: Some(fingerprint(v.as_bytes())) }));
                out.values.push((spec.value.clone(), v.to_string()));
            }
            (None, Some((fkey, path))) => {
                let path = PathBuf::from(path);
                let result = if read_files { read_secret_file(&path).map(Some) } else { check_secret_path(&path).map(|_| None) };
                match result {
                    Ok(v) => {
                        let fp = v.as_deref().map(|v| fingerprint(v.as_bytes()));
                        out.infos.push((spec.value.clone(), SecretInfo { source: SecretSource::File { path }, fingerprint: fp }));
                        if let Some(v) = v {
                            out.values.push((spec.value.clone(), v));
                        }
                    }
                    Err(e) => diags.push(loc.at_value(
                        Diagnostic::error("secret-file", fkey, e.to_string()).hint(e.hint()),
                        fkey,
                    )),
                }
            }
            (None, None) => {}
        }
    }
    let gw = KeyPath::parse_dotted("gateway.auth.token").unwrap_or_default();
    let hk = KeyPath::parse_dotted("hooks.token").unwrap_or_default();
    if let (Some(a), Some(b)) = (out.value(&gw), out.value(&hk)) {
        if a == b {
            let at = if value.pointer("/hooks/tokenFile").is_some() {
                KeyPath::parse_dotted("hooks.tokenFile").unwrap_or_default()
            } else {
                hk.clone()
            };
            diags.push(loc.at_key(
                Diagnostic::warning("hooks-token-reuse", &hk, "the hooks token is the same as the gateway token")
                    .hint("use a separate hooks token: whoever can call a webhook should not control the gateway"),
                &at,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_prefix_of_sha256() {
        // sha256("abc") = ba7816bf...
        assert_eq!(fingerprint(b"abc"), "sha256:ba7816bf");
    }

    #[test]
    fn secret_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "tok\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_secret_file(&f), Err(SecretFileError::TooOpen { mode: 0o644, .. })));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&f).unwrap(), "tok");
        assert!(matches!(check_secret_path(Path::new("/nix/store/x-token")), Err(SecretFileError::InNixStore { .. })));
        assert!(matches!(check_secret_path(Path::new("token")), Err(SecretFileError::NotAbsolute { .. })));
    }
}
