//! Helpers shared by the `tests/nix_*.rs` integration tests: finding the external tools (Nix,
//! deadnix, systemd-analyze, python3), the nixpkgs lib checkout, the golden files, and running
//! the module evaluation.
//!
//! A missing tool prints a loud `SKIPPED:` line and the test returns, unless `CI` is set: then a
//! missing tool fails the test (CI installs them with `scripts/setup-test-peers`). A missing
//! `NIXPKGS_LIB` always skips with a `SKIPPED:` line (each developer points it at their own
//! checkout of github.com/nix-community/nixpkgs.lib; it is never committed).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed rendered outputs of the module evaluation.
pub fn golden_dir() -> PathBuf {
    repo_root().join("tests/golden/nix")
}

/// Reads one golden file.
pub fn golden(name: &str) -> String {
    let path = golden_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()))
}

/// Prints a line on the real stderr, past libtest's output capture, so that a SKIPPED line shows
/// in every `cargo test` run, not only for failing tests.
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // `cargo install` puts deadnix here; the PATH of a test run may not include it.
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(cargo_home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The path of an external tool, or `None` after printing `SKIPPED: <what> (<why>)`.
/// Panics instead when `CI` is set: CI must have every tool.
pub fn tool(name: &str, what: &str) -> Option<PathBuf> {
    match find_on_path(name) {
        Some(p) => Some(p),
        None if in_ci() => panic!(
            "{what}: `{name}` is not installed, and CI must run this check \
             (scripts/setup-test-peers installs it)"
        ),
        None => {
            loud(&format!(
                "SKIPPED: {what} (`{name}` not found; run scripts/setup-test-peers as root)"
            ));
            None
        }
    }
}

/// `$NIXPKGS_LIB/lib`, or `None` after printing a `SKIPPED:` line.
pub fn nixpkgs_lib(what: &str) -> Option<PathBuf> {
    match std::env::var_os("NIXPKGS_LIB").filter(|v| !v.is_empty()) {
        None => {
            loud(&format!(
                "SKIPPED: {what} (NIXPKGS_LIB unset; point it at a checkout of \
                 github.com/nix-community/nixpkgs.lib, see README.md \"NixOS\")"
            ));
            None
        }
        Some(dir) => {
            let lib = PathBuf::from(dir).join("lib");
            assert!(
                lib.join("default.nix").is_file(),
                "NIXPKGS_LIB is set but {} has no default.nix; it must name the checkout \
                 (the directory that contains lib/), as an absolute path",
                lib.display()
            );
            Some(lib)
        }
    }
}

/// Every `.nix` file of the repository (tracked or not), outside `target/` and `.git/`.
pub fn nix_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | "node_modules" | "result") {
                    walk(&path, out);
                }
            } else if name.ends_with(".nix") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root(), &mut files);
    files.sort();
    files
}

/// Runs a command, returning its output; panics if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Text of a process's stdout and stderr, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `nix-instantiate --read-write-mode --eval --strict --json <file> --argstr libPath <lib>
/// [--arg extraConfig <expr>]`, run from the repository root.
pub fn nix_eval(
    nix_instantiate: &Path,
    file: &str,
    lib: &Path,
    extra_config: Option<&str>,
) -> Output {
    let mut cmd = Command::new(nix_instantiate);
    cmd.current_dir(repo_root())
        .args(["--read-write-mode", "--eval", "--strict", "--json", file])
        .arg("--argstr")
        .arg("libPath")
        .arg(lib);
    if let Some(expr) = extra_config {
        cmd.args(["--arg", "extraConfig", expr]);
    }
    run(&mut cmd)
}

/// JSON pretty-printed the way `jq .` (and so nixpkgs' `formats.json.generate`) prints it: two
/// spaces, keys in their given order, a final newline.
pub fn pretty_json(text: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let mut out = serde_json::to_string_pretty(&value).expect("serialize JSON");
    out.push('\n');
    out
}
