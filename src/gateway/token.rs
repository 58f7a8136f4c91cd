//! Token consistency checks, run at startup before the port is bound (and by `openclaw doctor`).
//!
//! Rules: every explicit source agrees; no secret is group/world readable or in `/nix/store`;
//! without an explicit token one is generated once, persisted (0600, atomic) and reused forever;
//! the resolved token matches the snapshot's fingerprint and `gateway.remote.token`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::gateway::settings::{AuthMode, Secret, SecretFile, TokenSource};
use crate::store::{write_atomic, AtomicWriteError, StateLayout};


/// Why the gateway refuses to start. Each variant has its own exit code ([`TokenError::exit_code`]),
/// one sentence, and a hint ([`TokenError::hint`]). Messages carry fingerprints, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Two explicit sources hold different tokens.
    #[error("the gateway token sources disagree: {}", list_sources(.sources))]
    SourcesDisagree {
        /// Each source as `(label, fingerprint)`.
        sources: Vec<(String, String)>,
    },
    /// A secret file gives group or others any access (the one rule of
    /// [`crate::config::secrets::SECRET_FORBIDDEN_BITS`], as in `config check`).
    #[error("{label} is open to group or others ({} has mode {mode:04o}): a secret file may not be readable by group or others, nor writable or executable by them", .path.display())]
    InsecureFile {
        /// Which source.
        label: String,
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A secret lives in the world-readable Nix store.
    #[error("{label} is in the Nix store ({}), which every user can read", .path.display())]
    InNixStore {
        /// Which source.
        label: String,
        /// The resolved path.
        path: PathBuf,
    },
    /// A source is present but empty.
    #[error("{label} is empty")]
    Empty {
        /// Which source.
        label: String,
    },
    /// The resolved token does not match the fingerprint compiled into the snapshot.
    #[error("the gateway token from {source_label} ({actual}) does not match the snapshot ({expected})")]
    SnapshotMismatch {
        /// Where the resolved token came from.
        source_label: String,
        /// Fingerprint in the snapshot.
        expected: String,
        /// Fingerprint of the resolved token.
        actual: String,
    },
    /// `gateway.remote.token` points at this gateway but holds another token.
    #[error("{label} ({actual}) does not match this gateway's token ({expected})")]
    RemoteMismatch {
        /// Label of the remote token source.
        label: String,
        /// Fingerprint of the gateway token.
        expected: String,
        /// Fingerprint of the remote token.
        actual: String,
    },
    /// A non-loopback bind with `auth.mode: none`.
    #[error("refusing to bind the gateway to {bind} without auth")]
    NonLoopbackWithoutAuth {
        /// The bind address.
        bind: String,
    },
    /// `hooks.enabled` without a hooks token.
    #[error("hooks.enabled requires hooks.token")]
    HooksTokenMissing,
    /// The generated token file could not be read or written.
    #[error("cannot use the generated token file {}: {reason}", .path.display())]
    GeneratedFile {
        /// The file.
        path: PathBuf,
        /// What went wrong (never the token).
        reason: String,
    },
}

fn list_sources(sources: &[(String, String)]) -> String {
    sources.iter().map(|(l, f)| format!("{l} = {f}")).collect::<Vec<_>>().join("; ")
}

impl TokenError {
    /// The process exit code for this refusal; distinct per kind.
    pub fn exit_code(&self) -> u8 {
        match self {
            TokenError::SourcesDisagree { .. } => 10,
            TokenError::InsecureFile { .. } => 11,
            TokenError::InNixStore { .. } => 12,
            TokenError::Empty { .. } => 13,
            TokenError::SnapshotMismatch { .. } => 14,
            TokenError::RemoteMismatch { .. } => 15,
            TokenError::NonLoopbackWithoutAuth { .. } => 16,
            TokenError::HooksTokenMissing => 17,
            TokenError::GeneratedFile { .. } => 18,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            TokenError::SourcesDisagree { .. } => {
                "keep exactly one token source (prefer gateway.auth.tokenFile), or make them equal"
            }
            TokenError::InsecureFile { .. } | TokenError::InNixStore { .. } => {
                "put the token in a file only the gateway can read (chmod 600) and point gateway.auth.tokenFile at it; under systemd use LoadCredential= and tokenFile=$CREDENTIALS_DIRECTORY/<name>"
            }
            TokenError::Empty { .. } => "set a non-empty token or remove the setting to use the generated one",
            TokenError::SnapshotMismatch { .. } => {
                "recompile the snapshot (openclaw config compile) after changing the token, or restore the token it was compiled with"
            }
            TokenError::RemoteMismatch { .. } => "set gateway.remote.token to this gateway's token, or remove it",
            TokenError::NonLoopbackWithoutAuth { .. } => {
                "use gateway.bind \"loopback\" and an SSH tunnel, or set gateway.auth.mode \"token\""
            }
            TokenError::HooksTokenMissing => "set hooks.tokenFile (or hooks.token), or set hooks.enabled false",
            TokenError::GeneratedFile { .. } => {
                "check the state directory's ownership and permissions; a truncated or damaged generated token file must be restored from a backup, or deleted so that a new token is generated (clients that saved the old one must then update)"
            }
        }
    }
}

/// The outcome of the checks: the token the gateway uses and where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedToken {
    /// The token (redacted in `Debug`); `None` only with `auth.mode: none`.
    pub token: Option<Secret>,
    /// A label for its source (`generated token file <path>` for a generated one).
    pub source_label: String,
    /// True when the token was generated during this call.
    pub generated_now: bool,
    /// Warnings to log (e.g. an ignored stale generated token file).
    pub warnings: Vec<String>,
}

/// Reads a secret file for a [`TokenSource`]: trims trailing newlines, records its mode.
pub fn read_secret_file(path: &Path) -> io::Result<(Secret, SecretFile)> {
    let text = fs::read_to_string(path)?;
    let file = secret_file_info(path)?;
    Ok((Secret::new(text.trim_end_matches(['\n', '\r']).to_string()), file))
}

/// Mode and canonical path of a file holding a secret.
pub fn secret_file_info(path: &Path) -> io::Result<SecretFile> {
    let meta = fs::metadata(path)?;
    let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(SecretFile { path: path.to_path_buf(), mode: meta.permissions().mode() & 0o7777, canonical })
}

/// Refuses a source whose file gives group or others any access or in the Nix store, or whose value is empty.
pub fn check_source(src: &TokenSource) -> Result<(), TokenError> {
    if let Some(f) = &src.file {
        if f.canonical.starts_with("/nix/store") || f.path.starts_with("/nix/store") {
            return Err(TokenError::InNixStore { label: src.label.clone(), path: f.canonical.clone() });
        }
        if crate::config::secrets::too_open(f.mode) {
            return Err(TokenError::InsecureFile { label: src.label.clone(), path: f.path.clone(), mode: f.mode });
        }
    }
    if src.value.expose().is_empty() {
        return Err(TokenError::Empty { label: src.label.clone() });
    }
    Ok(())
}

/// Checks a list of explicit sources: each safe, all equal. Returns the agreed source, if any.
pub fn agree(sources: &[TokenSource]) -> Result<Option<&TokenSource>, TokenError> {
    for s in sources {
        check_source(s)?;
    }
    let Some(first) = sources.first() else { return Ok(None) };
    if sources.iter().any(|s| !tokens_equal(s.value.expose(), first.value.expose())) {
        return Err(TokenError::SourcesDisagree {
            sources: sources.iter().map(|s| (s.label.clone(), s.value.fingerprint())).collect(),
        });
    }
    Ok(Some(first))
}

/// Constant-time token comparison: compares SHA-256 digests so length does not leak either.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let da = Sha256::digest(a.as_bytes());
    let db = Sha256::digest(b.as_bytes());
    da.as_slice().ct_eq(db.as_slice()).into()
}

/// Generates a strong token: 32 random bytes, base64url without padding (43 characters).
pub fn generate_token() -> Secret {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Length of a token made by [`generate_token`].
pub const GENERATED_TOKEN_LEN: usize = 43;

/// Whether `text` is a complete generated token: exactly [`GENERATED_TOKEN_LEN`] base64url
/// characters. A truncated (or otherwise damaged) file fails this and is refused, never used.
pub fn is_generated_token(text: &str) -> bool {
    text.len() == GENERATED_TOKEN_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Loads the generated token from the state dir, if present, refusing an insecure file and one
/// that does not hold a complete generated token (truncated by a crash or a full disk, edited).
pub fn load_generated(layout: &StateLayout) -> Result<Option<Secret>, TokenError> {
    let path = layout.gateway_token_file();
    // Our own file and the credentials directory holding it: repaired when too open (the one
    // secret-file rule), never used as they are.
    for p in [layout.credentials_dir(), path.clone()] {
        match crate::config::secrets::make_private(&p) {
            Ok(Some(old)) => tracing::warn!(
                path = %p.display(),
                "{} had mode {old:04o} (group or others had access); made private. If other users could read the token, delete {} and restart to rotate it",
                p.display(),
                path.display()
            ),
            Ok(None) => {}
            Err(e) => return Err(TokenError::GeneratedFile { path, reason: format!("cannot make {} private: {e}", p.display()) }),
        }
    }
    read_generated_checked(path)
}

/// Reads the generated token without changing any file: for clients such as the CLI and
/// `doctor`, which report a too-open file instead of repairing it (the gateway repairs it at
/// startup, `doctor --fix` on request). A damaged file is refused like in [`load_generated`]; a
/// too-open one is still read, since only its owner could have made it so.
pub fn read_generated(layout: &StateLayout) -> Result<Option<Secret>, TokenError> {
    let path = layout.gateway_token_file();
    match read_secret_file(&path) {
        Ok((secret, _)) if is_generated_token(secret.expose()) => Ok(Some(secret)),
        Ok((secret, _)) => Err(TokenError::GeneratedFile { path, reason: damaged_reason(&secret) }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TokenError::GeneratedFile { path, reason: e.to_string() }),
    }
}

fn damaged_reason(secret: &Secret) -> String {
    format!(
        "it holds {} characters, not a complete generated token ({GENERATED_TOKEN_LEN} base64url characters): truncated or damaged",
        secret.expose().chars().count()
    )
}

/// The checks of [`load_generated`] after its repair: complete token, safe file.
fn read_generated_checked(path: std::path::PathBuf) -> Result<Option<Secret>, TokenError> {
    match read_secret_file(&path) {
        Ok((secret, file)) => {
            if !is_generated_token(secret.expose()) {
                return Err(TokenError::GeneratedFile { path, reason: damaged_reason(&secret) });
            }
            let src = TokenSource {
                kind: crate::gateway::settings::TokenSourceKind::ConfigTokenFile,
                label: format!("generated token file {}", path.display()),
                value: secret.clone(),
                file: Some(file),
            };
            check_source(&src)?;
            Ok(Some(secret))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TokenError::GeneratedFile { path, reason: e.to_string() }),
    }
}

/// Runs every check and returns the token to use. `generate` makes a new token when neither an
/// explicit source nor the generated file has one (injectable for tests).
pub fn resolve(
    auth_mode: AuthMode,
    bind_is_loopback: bool,
    bind_label: &str,
    sources: &[TokenSource],
    expected_fingerprint: Option<&str>,
    remote: Option<&TokenSource>,
    layout: &StateLayout,
    generate: impl FnOnce() -> Secret,
) -> Result<ResolvedToken, TokenError> {
    let explicit = agree(sources)?;
    if auth_mode == AuthMode::None {
        if !bind_is_loopback {
            return Err(TokenError::NonLoopbackWithoutAuth { bind: bind_label.to_string() });
        }
        return Ok(ResolvedToken { token: None, source_label: "auth.mode none".into(), generated_now: false, warnings: vec![] });
    }
    let mut warnings = Vec::new();
    let (token, label, generated_now) = match explicit {
        Some(src) => {
            if let Ok(Some(old)) = load_generated(layout)
                && !tokens_equal(old.expose(), src.value.expose()) {
                    warnings.push(format!(
                        "ignoring the generated token file {} ({}) because {} is set ({}); clients that saved the old token must update",
                        layout.gateway_token_file().display(),
                        old.fingerprint(),
                        src.label,
                        src.value.fingerprint()
                    ));
                }
            (src.value.clone(), src.label.clone(), false)
        }
        None => match load_generated(layout)? {
            Some(t) => (t, format!("generated token file {}", layout.gateway_token_file().display()), false),
            None => {
                let t = generate();
                let path = layout.gateway_token_file();
                write_atomic(&path, format!("{}\n", t.expose()).as_bytes(), 0o600).map_err(|e| match e {
                    AtomicWriteError::NotAFilePath { path } => TokenError::GeneratedFile { path, reason: "not a file path".into() },
                    AtomicWriteError::Io { path, step, source } => {
                        TokenError::GeneratedFile { path, reason: format!("{step}: {source}") }
                    }
                })?;
                (t, format!("generated token file {}", path.display()), true)
            }
        },
    };
    if let Some(expected) = expected_fingerprint {
        let actual = token.fingerprint();
        if actual != expected {
            return Err(TokenError::SnapshotMismatch { source_label: label, expected: expected.to_string(), actual });
        }
    }
    if let Some(r) = remote {
        check_source(r)?;
        if !tokens_equal(r.value.expose(), token.expose()) {
            return Err(TokenError::RemoteMismatch {
                label: r.label.clone(),
                expected: token.fingerprint(),
                actual: r.value.fingerprint(),
            });
        }
    }
    Ok(ResolvedToken { token: Some(token), source_label: label, generated_now, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::settings::TokenSourceKind;

    const GEN_1: &str = "gen1gen1gen1gen1gen1gen1gen1gen1gen1gen1gen";

    fn src(label: &str, v: &str) -> TokenSource {
        TokenSource { kind: TokenSourceKind::Env, label: label.into(), value: Secret::new(v), file: None }
    }

    fn file_src(label: &str, v: &str, path: &str, mode: u32) -> TokenSource {
        TokenSource {
            kind: TokenSourceKind::ConfigTokenFile,
            label: label.into(),
            value: Secret::new(v),
            file: Some(SecretFile { path: path.into(), mode, canonical: path.into() }),
        }
    }

    fn run(sources: &[TokenSource], layout: &StateLayout) -> Result<ResolvedToken, TokenError> {
        resolve(AuthMode::Token, true, "loopback", sources, None, None, layout, || Secret::new(GEN_1))
    }

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let a = run(&[], &layout).unwrap();
        assert!(a.generated_now);
        assert_eq!(a.token.as_ref().unwrap().expose(), GEN_1);
        let mode = fs::metadata(layout.gateway_token_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = resolve(AuthMode::Token, true, "loopback", &[], None, None, &layout, || Secret::new("gen-2")).unwrap();
        assert!(!b.generated_now);
        assert_eq!(b.token.unwrap().expose(), GEN_1, "a restart must never change the token");
    }

    #[test]
    fn disagreeing_sources_list_fingerprints_not_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&[src("OPENCLAW_GATEWAY_TOKEN", "aaa-secret"), src("--token", "bbb-secret")], &StateLayout::new(dir.path()))
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TokenError::SourcesDisagree { .. }));
        assert!(msg.contains("OPENCLAW_GATEWAY_TOKEN = sha256:") && msg.contains("--token = sha256:"), "{msg}");
        assert!(!msg.contains("aaa-secret") && !msg.contains("bbb-secret"), "{msg}");
        assert_eq!(err.exit_code(), 10);
    }

    #[test]
    fn agreeing_sources_win_over_generated_with_warning() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        run(&[], &layout).unwrap();
        let r = run(&[src("env", "x"), src("flag", "x")], &layout).unwrap();
        assert_eq!(r.token.unwrap().expose(), "x");
        assert_eq!(r.warnings.len(), 1);
        assert!(!r.warnings[0].contains(GEN_1));
    }

    #[test]
    fn world_readable_and_nix_store_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let e = run(&[file_src("gateway.auth.tokenFile", "t", "/run/t", 0o644)], &layout).unwrap_err();
        assert!(matches!(e, TokenError::InsecureFile { mode: 0o644, .. }), "{e}");
        assert!(e.hint().contains("LoadCredential"));
        let e = run(&[file_src("gateway.auth.tokenFile", "t", "/nix/store/abc-token", 0o444)], &layout).unwrap_err();
        assert!(matches!(e, TokenError::InNixStore { .. }));
        assert!(run(&[file_src("gateway.auth.tokenFile", "t", "/run/t", 0o600)], &layout).is_ok());
        assert!(run(&[file_src("gateway.auth.tokenFile", "t", "/run/t", 0o640)], &layout).is_err());
    }

    #[test]
    fn issue14_item15_insecure_generated_file_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        run(&[], &layout).unwrap();
        for open in [0o644, 0o620, 0o602, 0o660] {
            fs::set_permissions(layout.gateway_token_file(), fs::Permissions::from_mode(open)).unwrap();
            fs::set_permissions(layout.credentials_dir(), fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(run(&[], &layout).unwrap().token.unwrap().expose(), GEN_1);
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&layout.gateway_token_file()), 0o600, "{open:o} repaired");
            assert_eq!(mode(&layout.credentials_dir()), 0o700, "the credentials directory repaired");
        }
    }

    #[test]
    fn issue14_item15_token_files_with_write_bits_refused_at_startup_as_in_config_check() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        for mode in [0o620, 0o602, 0o610, 0o601, 0o640, 0o604] {
            let e = run(&[file_src("gateway.auth.tokenFile", "t", "/run/t", mode)], &layout).unwrap_err();
            assert!(matches!(e, TokenError::InsecureFile { .. }), "{mode:o}: {e}");
            assert!(crate::config::secrets::too_open(mode), "config check refuses {mode:o} too");
        }
        assert!(run(&[file_src("gateway.auth.tokenFile", "t", "/run/t", 0o400)], &layout).is_ok());
    }

    #[test]
    fn issue14_item21_truncated_generated_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        run(&[], &layout).unwrap();
        let path = layout.gateway_token_file();
        // Cut short as by a crash or a full disk (a partial write of an earlier, non-atomic
        // writer, or a copy): it must never become the gateway's token.
        for cut in ["gen1gen1g", "gen1gen1gen1gen1gen1gen1gen1gen1gen1gen1ge\n", "", "\n"] {
            fs::write(&path, cut).unwrap();
            let e = run(&[], &layout).unwrap_err();
            assert!(matches!(e, TokenError::GeneratedFile { .. }), "{cut:?}: {e}");
            assert_eq!(e.exit_code(), 18);
            let msg = e.to_string();
            assert!(msg.contains("truncated"), "{msg}");
            assert!(cut.trim().is_empty() || !msg.contains(cut.trim()), "never prints the token: {msg}");
            assert!(e.hint().contains("deleted so that a new token is generated"));
            assert_eq!(fs::read_to_string(&path).unwrap(), cut, "the damaged file is left for the user");
        }
        // Also behind an explicit source (then it is only reported, as before: not used).
        fs::write(&path, "short\n").unwrap();
        assert!(run(&[src("env", "x")], &layout).is_ok());
        // A complete token (with or without its newline) is fine.
        fs::write(&path, GEN_1).unwrap();
        assert_eq!(run(&[], &layout).unwrap().token.unwrap().expose(), GEN_1);
    }

    #[test]
    fn snapshot_and_remote_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let s = [src("env", "tok")];
        let good = Secret::new("tok").fingerprint();
        assert!(resolve(AuthMode::Token, true, "l", &s, Some(&good), None, &layout, || unreachable!()).is_ok());
        let e = resolve(AuthMode::Token, true, "l", &s, Some("sha256:00000000"), None, &layout, || unreachable!()).unwrap_err();
        assert_eq!(e.exit_code(), 14);
        let remote = src("gateway.remote.token", "other");
        let e = resolve(AuthMode::Token, true, "l", &s, None, Some(&remote), &layout, || unreachable!()).unwrap_err();
        assert!(matches!(e, TokenError::RemoteMismatch { .. }));
    }

    #[test]
    fn no_auth_only_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let e = resolve(AuthMode::None, false, "0.0.0.0", &[], None, None, &layout, || unreachable!()).unwrap_err();
        assert_eq!(e.exit_code(), 16);
        assert!(resolve(AuthMode::None, true, "127.0.0.1", &[], None, None, &layout, || unreachable!()).unwrap().token.is_none());
    }

    #[test]
    fn empty_refused_and_compare_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(run(&[src("env", "")], &StateLayout::new(dir.path())).unwrap_err(), TokenError::Empty { .. }));
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abcd"));
        assert_eq!(generate_token().expose().len(), 43);
    }
}
