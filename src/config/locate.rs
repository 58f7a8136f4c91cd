//! Turning a config path into `file:line:col` for diagnostics.

use super::diagnostic::Diagnostic;
use super::merge::Provenance;
use super::path::KeyPath;
use super::sources::Source;

/// Places diagnostics at the position a path was written.
#[derive(Debug, Clone, Copy)]
pub struct Locator<'a> {
    /// Where every merged node came from.
    pub provenance: &'a Provenance,
    /// The source files, indexed by `Origin::source`.
    pub sources: &'a [Source],
}

impl Locator<'_> {
    /// Places `d` at the key of `path` (or of its nearest written ancestor).
    pub fn at_key(&self, d: Diagnostic, path: &KeyPath) -> Diagnostic {
        match self.provenance.nearest(path) {
            Some((_, e)) => self.place(d, e.origin.source, e.origin.pos()),
            None => self.fallback(d),
        }
    }

    /// Places `d` at the value of `path` (or at the key of its nearest written ancestor).
    pub fn at_value(&self, d: Diagnostic, path: &KeyPath) -> Diagnostic {
        match self.provenance.get(path) {
            Some(e) => self.place(d, e.origin.source, e.origin.value_pos),
            None => self.at_key(d, path),
        }
    }

    /// The file and position of the value at exactly `path`, if it was written.
    pub fn value_location(&self, path: &KeyPath) -> Option<(&std::path::Path, super::json5::Pos)> {
        let e = self.provenance.get(path)?;
        Some((self.sources.get(e.origin.source)?.path.as_path(), e.origin.value_pos))
    }

    fn place(&self, d: Diagnostic, source: usize, pos: super::json5::Pos) -> Diagnostic {
        match self.sources.get(source) {
            Some(s) => d.at(&s.path, pos),
            None => d,
        }
    }

    /// Nothing written: the first line of the last source (the diagnostic still has a place).
    fn fallback(&self, d: Diagnostic) -> Diagnostic {
        match self.sources.last() {
            Some(s) => d.at(&s.path, super::json5::Pos { line: 1, col: 1 }),
            None => d,
        }
    }
}
