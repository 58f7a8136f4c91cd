//! `doctor --fix`: only repairs that are safe unattended and cannot lose data: file modes of
//! the state dir and secret files, a runtime file whose gateway is gone, and legacy WhatsApp
//! credentials (copied, verified, old files moved aside: [`crate::channels::whatsapp::legacy`]).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::doctor::facts::Facts;

/// One repair done (or attempted).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repair {
    /// What was done.
    pub action: String,
    /// The error, when it failed.
    pub error: Option<String>,
}

fn chmod(path: &PathBuf, mode: u32, out: &mut Vec<Repair>) {
    let r = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    out.push(Repair { action: format!("chmod {mode:o} {}", path.display()), error: r.err().map(|e| e.to_string()) });
}

/// Applies the safe repairs the facts call for; returns what was done.
pub fn apply(f: &Facts) -> Vec<Repair> {
    let mut out = Vec::new();
    if let Some(m) = f.state_dir_mode
        && m & 0o077 != 0
    {
        chmod(&f.state_dir, m & 0o700 | 0o700, &mut out);
    }
    for s in &f.secret_files {
        if s.mode & 0o077 != 0 && !s.path.starts_with("/nix/store") {
            chmod(&s.path, 0o600, &mut out);
        }
    }
    for l in f.legacy_creds.iter().filter(|l| l.blocked.is_none()) {
        let layout = crate::store::StateLayout::new(&f.state_dir);
        let action = format!("migrate the legacy WhatsApp credentials of account {} from {} to {}", l.account, l.source.display(), l.target.display());
        match crate::channels::whatsapp::legacy::migrate(&layout, l, f.now_ms) {
            Ok(m) => {
                let kept: Vec<String> = m.kept.iter().map(|p| p.display().to_string()).collect();
                let kept = if kept.is_empty() { String::new() } else { format!("; old files kept in {}", kept.join(", ")) };
                out.push(Repair { action: format!("{action} ({} Signal session(s) imported{kept})", m.sessions), error: None });
            }
            Err(e) => out.push(Repair { action, error: Some(e.to_string()) }),
        }
    }
    let g = &f.gateway;
    if g.runtime_pid.is_some() && !g.runtime_pid_alive {
        let r = std::fs::remove_file(&g.runtime_file);
        out.push(Repair { action: format!("rm {} (pid {} is gone)", g.runtime_file.display(), g.runtime_pid.unwrap_or(0)), error: r.err().map(|e| e.to_string()) });
    }
    out
}
