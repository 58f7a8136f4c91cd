//! The system prompt from the agent workspace, as upstream loads it (`bootstrap-*.mjs`,
//! `system-prompt-*.mjs`): the files [`WORKSPACE_FILES`] that exist in
//! `agents.defaults.workspace` (default `<state>/workspace`), each trimmed at the end and capped
//! at [`MAX_FILE_CHARS`], all together at [`MAX_TOTAL_CHARS`] (UTF-16 units, as upstream
//! counts), under a `# Project Context` heading with one `## <file>` section each.
//!
//! A file over its cap keeps its head (75 %) and tail (25 %) around upstream's marker
//! `[...truncated, read <file> for full content...]`. Missing files are skipped (upstream
//! lists a `[MISSING]` line for them). [`build_system_prompt`] is pure;
//! [`load_workspace_files`] reads the files (blocking: run it off the async workers).

use std::path::Path;

use crate::routing::chunk::utf16_len;

/// The workspace files, in upstream's order.
pub const WORKSPACE_FILES: &[&str] =
    &["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md", "BOOTSTRAP.md", "MEMORY.md"];
/// Cap per file (upstream `DEFAULT_BOOTSTRAP_MAX_CHARS`).
pub const MAX_FILE_CHARS: usize = 20_000;
/// Cap for all files (upstream `DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS`).
pub const MAX_TOTAL_CHARS: usize = 60_000;
/// A file is not started with less budget left than this (upstream
/// `MIN_BOOTSTRAP_FILE_BUDGET_CHARS`).
const MIN_FILE_BUDGET: usize = 64;
/// The first line of every system prompt.
pub const BASE_PROMPT: &str = "You are a personal assistant running inside OpenClaw.";

/// One workspace file's name and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFile {
    /// The file name, e.g. `SOUL.md`.
    pub name: String,
    /// Its text.
    pub content: String,
}

/// Reads the workspace files that exist in `dir`, in order. Unreadable or non-UTF-8 files are
/// skipped with a warning; a missing directory gives no files.
pub fn load_workspace_files(dir: &Path) -> Vec<WorkspaceFile> {
    let mut out = Vec::new();
    for name in WORKSPACE_FILES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(content) => out.push(WorkspaceFile { name: name.to_string(), content }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping unreadable workspace file"),
        }
    }
    out
}

/// The first `n` UTF-16 units of `s`, never splitting a character.
fn head(s: &str, n: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > n {
            return &s[..i];
        }
    }
    s
}

/// The last `n` UTF-16 units of `s`, never splitting a character.
fn tail(s: &str, n: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices().rev() {
        units += c.len_utf16();
        if units > n {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// `content` trimmed at the end and capped at `max` units (head, marker, tail).
pub fn cap_file(name: &str, content: &str, max: usize) -> String {
    let trimmed = content.trim_end();
    let len = utf16_len(trimmed);
    if len <= max {
        return trimmed.to_string();
    }
    let marker_for = |h: usize, t: usize| {
        format!("\n[...truncated, read {name} for full content...]\n…(truncated {name}: kept {h}+{t} chars of {len})…\n")
    };
    let mut budget = max.saturating_sub(utf16_len(&marker_for(0, 0)) + 2);
    loop {
        let (h, t) = (budget * 3 / 4, budget / 4);
        let out = format!("{}\n{}\n{}", head(trimmed, h), marker_for(h, t).trim_matches('\n'), tail(trimmed, t));
        if utf16_len(&out) <= max || budget == 0 {
            return if utf16_len(&out) <= max { out } else { head(trimmed, max).to_string() };
        }
        budget = budget.saturating_sub(utf16_len(&out) - max);
    }
}

/// The system prompt: [`BASE_PROMPT`], then the project context built from `files`.
pub fn build_system_prompt(files: &[WorkspaceFile]) -> String {
    let mut remaining = MAX_TOTAL_CHARS;
    let mut sections = Vec::new();
    for f in files {
        if remaining < MIN_FILE_BUDGET {
            tracing::warn!(file = %f.name, "workspace files exceed 60000 chars; skipping the rest");
            break;
        }
        let capped = cap_file(&f.name, &f.content, MAX_FILE_CHARS.min(remaining));
        if capped.is_empty() {
            continue;
        }
        if utf16_len(f.content.trim_end()) > MAX_FILE_CHARS.min(remaining) {
            tracing::warn!(file = %f.name, "workspace file truncated in the system prompt");
        }
        remaining -= utf16_len(&capped);
        sections.push((f.name.as_str(), capped));
    }
    let mut lines: Vec<String> = vec![BASE_PROMPT.to_string()];
    if sections.is_empty() {
        return lines.join("\n");
    }
    lines.extend(["".into(), "# Project Context".into(), "".into(), "Loaded project context:".into()]);
    let has = |n: &str| sections.iter().any(|(name, _)| name.eq_ignore_ascii_case(n));
    if has("SOUL.md") {
        lines.push("SOUL.md: persona/tone. Follow it unless higher-priority instructions override.".into());
    }
    if has("MEMORY.md") {
        lines.push("MEMORY.md: durable non-profile facts and decisions; use when relevant unless higher-priority instructions override.".into());
    }
    if has("USER.md") {
        lines.push("USER.md: durable user preferences and profile directives; follow unless higher-priority instructions override.".into());
    }
    lines.push(String::new());
    for (name, content) in sections {
        lines.extend([format!("## {name}"), String::new(), content, String::new()]);
    }
    lines.join("\n").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &str) -> WorkspaceFile {
        WorkspaceFile { name: name.into(), content: content.into() }
    }

    #[test]
    fn prompt_lists_files_in_order_with_their_sections() {
        let p = build_system_prompt(&[file("AGENTS.md", "Be useful.\n\n"), file("SOUL.md", "Calm.")]);
        assert_eq!(
            p,
            "You are a personal assistant running inside OpenClaw.\n\n# Project Context\n\nLoaded project context:\nSOUL.md: persona/tone. Follow it unless higher-priority instructions override.\n\n## AGENTS.md\n\nBe useful.\n\n## SOUL.md\n\nCalm."
        );
        assert_eq!(build_system_prompt(&[]), BASE_PROMPT);
    }

    #[test]
    fn a_long_file_is_capped_with_head_marker_and_tail() {
        let content = format!("{}{}", "h".repeat(30_000), "T".repeat(10_000));
        let capped = cap_file("AGENTS.md", &content, MAX_FILE_CHARS);
        assert!(utf16_len(&capped) <= MAX_FILE_CHARS, "{}", utf16_len(&capped));
        assert!(utf16_len(&capped) > MAX_FILE_CHARS - 200);
        assert!(capped.starts_with("hhhh") && capped.ends_with("TTTT"));
        assert!(capped.contains("[...truncated, read AGENTS.md for full content...]"));
        // Emoji at the cut never split.
        let emoji = "😀".repeat(15_000);
        let capped = cap_file("SOUL.md", &emoji, MAX_FILE_CHARS);
        assert!(utf16_len(&capped) <= MAX_FILE_CHARS);
    }

    #[test]
    fn the_total_is_capped_at_sixty_thousand() {
        let big = "x".repeat(25_000);
        let files: Vec<WorkspaceFile> = WORKSPACE_FILES.iter().map(|n| file(n, &big)).collect();
        let p = build_system_prompt(&files);
        let body: usize = p.split("\n## ").skip(1).map(utf16_len).sum();
        assert!(body <= MAX_TOTAL_CHARS + 200, "{body}");
        assert!(p.contains("## TOOLS.md") && !p.contains("## IDENTITY.md"), "three files of 20k fill the budget");
    }

    #[test]
    fn loads_existing_files_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("SOUL.md"), "soul").unwrap();
        std::fs::write(d.path().join("AGENTS.md"), "agents").unwrap();
        std::fs::write(d.path().join("OTHER.md"), "no").unwrap();
        let files = load_workspace_files(d.path());
        assert_eq!(files, vec![file("AGENTS.md", "agents"), file("SOUL.md", "soul")]);
        assert!(load_workspace_files(&d.path().join("missing")).is_empty());
    }
}
