//! The Control UI: plain HTML, CSS and JavaScript compiled into the binary (works offline, no
//! CDN, no build step). `index.html` loads `assets/app.css` and `assets/app.js`; the script
//! talks to the gateway over the same WebSocket control protocol as the CLI.

/// The page shell.
const INDEX: &str = include_str!("index.html");
/// The stylesheet.
const CSS: &str = include_str!("app.css");
/// The application.
const JS: &str = include_str!("app.js");

/// Total size of the UI assets in bytes (reported in the README).
pub const ASSETS_BYTES: usize = INDEX.len() + CSS.len() + JS.len();

// The UI stays small and readable: a build fails if it grows past 64 KiB.
const _: () = assert!(ASSETS_BYTES < 64 * 1024, "the Control UI assets grew past 64 KiB");

/// The page for a UI mounted at `base` (`""` for `/`): the base path goes into the document
/// so the script finds its assets and the WebSocket. `base` is a normalised config path
/// (`/ui`), escaped anyway.
pub fn index(base: &str) -> String {
    let esc: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        .collect();
    INDEX.replace("{{BASE}}", &esc).replace("{{VERSION}}", crate::gateway::state::VERSION)
}

/// An asset by file name: `(content type, body)`.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.js" => Some(("text/javascript; charset=utf-8", JS)),
        "app.css" => Some(("text/css; charset=utf-8", CSS)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_its_assets_under_the_base_path() {
        let page = index("/ui");
        assert!(page.contains(r#"src="/ui/assets/app.js""#) && page.contains(r#"href="/ui/assets/app.css""#));
        assert!(index("/x\"><script>").contains(r#"data-base="/xscript""#));
        assert!(asset("app.js").is_some() && asset("../etc/passwd").is_none());
    }
}
