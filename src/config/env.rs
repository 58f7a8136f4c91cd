//! `${VAR}` substitution in string values, as upstream does it, except that an unset or empty
//! variable is an error naming the key and the variable (upstream leaves the literal in place and
//! only warns). `$${VAR}` yields a literal `${VAR}`. Names match `[A-Z_][A-Z0-9_]*`; anything else
//! after `${` is left as it is.

use std::collections::HashMap;

use super::json5::{Node, NodeValue, Pos};
use super::path::KeyPath;

/// Where environment variables come from (injectable for tests).
pub trait EnvSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A substitution that could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The key whose value references the variable.
    pub path: KeyPath,
    /// Position of the string value.
    pub pos: Pos,
    /// The variable.
    pub var: String,
    /// `true` when set but empty, `false` when unset.
    pub empty: bool,
}

/// What substitution did to one tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvReport {
    /// Variables that were missing.
    pub problems: Vec<EnvProblem>,
    /// Values that came (at least partly) from variables, with the variable names.
    pub substituted: Vec<(KeyPath, Vec<String>)>,
}

/// Substitutes variables in every string value of `node` (keys are left alone).
pub fn substitute(node: &mut Node, env: &dyn EnvSource) -> EnvReport {
    let mut report = EnvReport::default();
    walk(node, &KeyPath::root(), env, &mut report);
    report
}

fn walk(node: &mut Node, path: &KeyPath, env: &dyn EnvSource, report: &mut EnvReport) {
    let pos = node.pos;
    match &mut node.value {
        NodeValue::String(s) => {
            if s.contains('$') {
                let (out, used, missing) = expand(s, env);
                for (var, empty) in missing {
                    report.problems.push(EnvProblem { path: path.clone(), pos, var, empty });
                }
                if !used.is_empty() {
                    report.substituted.push((path.clone(), used));
                }
                *s = out;
            }
        }
        NodeValue::Array(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                walk(n, &path.index(i), env, report);
            }
        }
        NodeValue::Object(members) => {
            for m in members.iter_mut() {
                walk(&mut m.value, &path.key(&m.key), env, report);
            }
        }
        _ => {}
    }
}

fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_uppercase() || f == '_')
        && c.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Expands one string: (result, variables used, variables missing with `empty` flag).
fn expand(s: &str, env: &dyn EnvSource) -> (String, Vec<String>, Vec<(String, bool)>) {
    let mut out = String::with_capacity(s.len());
    let mut used = Vec::new();
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        // `$${NAME}` is an escaped literal `${NAME}`.
        if let Some(lit) = after.strip_prefix("$${") {
            if let Some(end) = lit.find('}') {
                if valid_name(&lit[..end]) {
                    out.push_str("${");
                    out.push_str(&lit[..=end]);
                    rest = &lit[end + 1..];
                    continue;
                }
            }
        }
        if let Some(body) = after.strip_prefix("${") {
            if let Some(end) = body.find('}') {
                let name = &body[..end];
                if valid_name(name) {
                    match env.var(name) {
                        Some(v) if !v.is_empty() => {
                            out.push_str(&v);
                            used.push(name.to_string());
                        }
                        found => {
                            missing.push((name.to_string(), found.is_some()));
                            out.push_str(&after[..end + 3]);
                        }
                    }
                    rest = &body[end + 1..];
                    continue;
                }
            }
        }
        out.push('$');
        rest = &after[1..];
    }
    out.push_str(rest);
    (out, used, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("TOKEN", "s3cret"), ("EMPTY", "")].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn expands_escapes_and_reports() {
        let e = env();
        assert_eq!(expand("a${TOKEN}b", &e).0, "as3cretb");
        assert_eq!(expand("$${TOKEN}", &e).0, "${TOKEN}");
        assert_eq!(expand("${lower} $5 $", &e).0, "${lower} $5 $");
        let (_, used, missing) = expand("${TOKEN}${NOPE}${EMPTY}", &e);
        assert_eq!(used, vec!["TOKEN"]);
        assert_eq!(missing, vec![("NOPE".to_string(), false), ("EMPTY".to_string(), true)]);
    }

    #[test]
    fn substitutes_values_not_keys() {
        let mut n = super::super::json5::parse("{'${TOKEN}': '${TOKEN}', a: ['${MISSING}']}").node.unwrap();
        let r = substitute(&mut n, &env());
        assert_eq!(n.to_value(), serde_json::json!({"${TOKEN}": "s3cret", "a": ["${MISSING}"]}));
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].path.to_string(), "a[0]");
        assert_eq!(r.problems[0].var, "MISSING");
    }
}
