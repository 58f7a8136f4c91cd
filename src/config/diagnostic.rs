//! Diagnostics: what the compiler found, where, and what to do about it.
//!
//! The first line is gcc-style and grep-friendly:
//! `file:line:col: error: message [json.path]`, then an optional `  hint: ...` line.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::json5::Pos;

/// Error or warning. Warnings never make a config invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is invalid.
    Error,
    /// Worth knowing; the config is still valid.
    Warning,
}

/// One finding of the compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable kebab-case identifier of the rule, for scripts (`unknown-key`, `duplicate-key`...).
    pub code: String,
    /// The file the finding is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The config path, e.g. `channels.whatsapp.allowFrom[1]` (`<root>` for the whole file).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(code: &str, path: impl fmt::Display, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, path, message)
    }

    /// A new warning.
    pub fn warning(code: &str, path: impl fmt::Display, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, path, message)
    }

    fn new(severity: Severity, code: &str, path: impl fmt::Display, message: impl Into<String>) -> Self {
        Self {
            severity,
            code: code.to_string(),
            file: None,
            line: None,
            column: None,
            path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    /// Sets the location.
    pub fn at(mut self, file: impl Into<PathBuf>, pos: Pos) -> Self {
        self.file = Some(file.into());
        self.line = Some(pos.line);
        self.column = Some(pos.col);
        self
    }

    /// Sets the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(l), Some(c)) => write!(f, "{}:{l}:{c}: ", file.display())?,
            (Some(file), _, _) => write!(f, "{}: ", file.display())?,
            _ => f.write_str("openclaw: ")?,
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {} [{}]", self.message, self.path)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}
