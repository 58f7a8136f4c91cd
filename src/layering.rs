//! The arrows of DESIGN.md's layout, held by a test: each folder may use only the modules below
//! it (`use crate::…` lines and paths in code, comments excluded).

/// `crate::…` paths used in code (not comments) under `src/<dir>`.
fn crate_paths(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let path: String = code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !path.is_empty() {
                    out.push((p.display().to_string(), path));
                }
            }
        }
    }
    out
}

/// The arrows of DESIGN.md's layout: each folder may use only the modules below it.
#[test]
fn arrows_point_down_between_layers() {
    let rules: [(&str, &[&str]); 6] = [
        ("util", &["util"]),
        ("store", &["util", "store"]),
        ("messaging", &["util", "store", "messaging"]),
        ("routing", &["util", "config", "routing"]),
        ("agent", &["util", "config", "store", "messaging", "routing", "agent"]),
        ("channels", &["util", "config", "store", "messaging", "channels"]),
    ];
    for (dir, allowed) in rules {
        let paths = crate_paths(dir);
        assert!(!paths.is_empty() || dir == "util", "scan found nothing in {dir}");
        for (file, top) in paths {
            assert!(allowed.contains(&top.as_str()), "{file} uses crate::{top}; {dir} may use only {allowed:?}");
        }
    }
}
