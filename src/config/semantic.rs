//! Rules the schema cannot express, checked on the typed config.

use super::diagnostic::Diagnostic;
use super::locate::Locator;
use super::model::gateway::{AuthMode, BindMode};
use super::model::whatsapp::{DmPolicy, WhatsAppConfig, check_account_id, check_auth_dir};
use super::model::OpenClawConfig;
use super::path::KeyPath;

/// Facts from outside the config files that some rules need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// `OPENCLAW_GATEWAY_TOKEN` is set: the gateway has a token even if the config has none.
    pub env_gateway_token: bool,
}

fn p(s: &str) -> KeyPath {
    KeyPath::parse_dotted(s).unwrap_or_default()
}

/// Whether `s` is an E.164 number: `+`, a non-zero digit, 6 to 14 more digits.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    digits.len() >= 7
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Runs every rule.
pub fn check(cfg: &OpenClawConfig, ctx: Context, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    unsupported_rules(cfg, loc, &mut out);
    gateway_rules(cfg, ctx, loc, &mut out);
    hooks_rules(cfg, loc, &mut out);
    if let Some(wa) = &cfg.channels.whatsapp {
        whatsapp_rules(wa, loc, &mut out);
    }
    agent_rules(cfg, loc, &mut out);
    mention_pattern_rules(cfg, loc, &mut out);
    out
}

/// Group mention patterns are regular expressions; one this gateway's engine cannot compile
/// (look-around and back-references, which upstream's JavaScript engine accepts) is ignored at
/// run time, so the compiler says so here (a warning: the config is valid upstream).
fn mention_pattern_rules(cfg: &OpenClawConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let mut lists = Vec::new();
    if let Some(list) = cfg.messages.group_chat.as_ref().and_then(|g| g.mention_patterns.as_ref()) {
        lists.push((p("messages.groupChat.mentionPatterns"), list));
    }
    for (id, e) in &cfg.agents.entries {
        if let Some(list) = e.group_chat.as_ref().and_then(|g| g.mention_patterns.as_ref()) {
            lists.push((p("agents.entries").key(id).key("groupChat").key("mentionPatterns"), list));
        }
    }
    for (path, list) in lists {
        for (i, pattern) in list.iter().enumerate() {
            if let Err(e) = regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build() {
                let ip = path.index(i);
                let last = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                let why = last.strip_prefix("error: ").unwrap_or(&last).to_string();
                out.push(loc.at_value(
                    Diagnostic::warning("ignored-pattern", &ip, format!("mention pattern {pattern:?} is ignored: {why}"))
                        .hint("look-around ((?=…), (?<=…)) and back-references are not supported; \\b word boundaries and (?:…) groups are"),
                    &ip,
                ));
            }
        }
    }
}

/// Settings the schema accepts (they are upstream's) but this gateway does not honour yet: each
/// is an error, never silently ignored (issue 14 item 10). The schema-walk test
/// (`tests/config_schema_walk.rs`) keeps this list and the gateway in step.
fn unsupported_rules(cfg: &OpenClawConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let mut unsupported = |path: &str, why: &str, at_value: bool| {
        let kp = p(path);
        let d = Diagnostic::error(
            "unsupported",
            &kp,
            format!("\"{path}\" is an OpenClaw setting not supported by this gateway yet: {why}"),
        )
        .hint("remove it; this gateway would silently ignore it otherwise");
        out.push(if at_value { loc.at_value(d, &kp) } else { loc.at_key(d, &kp) });
    };
    let a = &cfg.gateway.auth;
    if a.password.is_some() {
        unsupported("gateway.auth.password", "clients authenticate with the gateway token only", false);
    }
    match a.mode {
        Some(AuthMode::Password) => unsupported("gateway.auth.mode", "mode \"password\" (use \"token\")", true),
        Some(AuthMode::TrustedProxy) => unsupported("gateway.auth.mode", "mode \"trusted-proxy\" (use \"token\")", true),
        _ => {}
    }
    if cfg.gateway.bind == BindMode::Tailnet {
        unsupported("gateway.bind", "bind \"tailnet\" (use \"loopback\", \"lan\", \"auto\" or \"custom\")", true);
    }
    if a.rate_limit.lockout_ms.is_some() {
        unsupported("gateway.auth.rateLimit.lockoutMs", "a throttled client waits until its windowMs ends", false);
    }
    if a.rate_limit.exempt_loopback.is_some() {
        unsupported("gateway.auth.rateLimit.exemptLoopback", "loopback clients are throttled like any other", false);
    }
    let h = &cfg.hooks;
    if !h.mappings.is_empty() {
        unsupported("hooks.mappings", "only POST {hooks.path}/agent and {hooks.path}/wake are served", false);
    }
    if h.allow_request_session_key.is_some() {
        unsupported("hooks.allowRequestSessionKey", "use hooks.defaultSessionKey", false);
    }
}

fn gateway_rules(cfg: &OpenClawConfig, ctx: Context, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let g = &cfg.gateway;
    let a = &g.auth;
    let has_token = a.token.is_some() || a.token_file.is_some() || ctx.env_gateway_token;
    // A password is not honoured by this gateway (see `unsupported_rules`), so it does not count.
    let has_secret = has_token;
    if !g.bind.is_loopback() {
        let unauthenticated = a.mode == Some(AuthMode::None) || !has_secret;
        if unauthenticated {
            out.push(loc.at_value(
                Diagnostic::error(
                    "bind-needs-auth",
                    p("gateway.bind"),
                    format!("bind \"{}\" listens beyond loopback but the gateway has no authentication", g.bind.as_str()),
                )
                .hint("set gateway.auth.tokenFile (on NixOS: services.openclaw.tokenFile), or bind \"loopback\" and use an SSH tunnel"),
                &p("gateway.bind"),
            ));
        }
    }
    if (a.token.is_some() || a.token_file.is_some()) && a.password.is_some() && a.mode.is_none() {
        out.push(loc.at_key(
            Diagnostic::error(
                "auth-mode-required",
                p("gateway.auth"),
                "gateway.auth has both a token and a password but no mode",
            )
            .hint("set gateway.auth.mode to \"token\" or \"password\""),
            &p("gateway.auth.password"),
        ));
    }
    if a.mode == Some(AuthMode::Password) && a.password.is_none() {
        out.push(loc.at_value(
            Diagnostic::error("missing-secret", p("gateway.auth.mode"), "auth mode \"password\" needs gateway.auth.password"),
            &p("gateway.auth.mode"),
        ));
    }
    match (g.bind, &g.custom_bind_host) {
        (BindMode::Custom, None) => out.push(loc.at_value(
            Diagnostic::error("missing-key", p("gateway.bind"), "bind \"custom\" needs gateway.customBindHost")
                .hint("set gateway.customBindHost to an IPv4 address of this machine"),
            &p("gateway.bind"),
        )),
        (_, Some(h)) if h.parse::<std::net::Ipv4Addr>().is_err() => out.push(loc.at_value(
            Diagnostic::error("invalid-value", p("gateway.customBindHost"), format!("{h:?} is not an IPv4 address")),
            &p("gateway.customBindHost"),
        )),
        (b, Some(_)) if b != BindMode::Custom => out.push(loc.at_key(
            Diagnostic::warning(
                "ignored",
                p("gateway.customBindHost"),
                format!("gateway.customBindHost is ignored because bind is \"{}\"", b.as_str()),
            )
            .hint("set gateway.bind to \"custom\" to use it"),
            &p("gateway.customBindHost"),
        )),
        _ => {}
    }
    let base = &g.control_ui.base_path;
    if !base.is_empty() && (!base.starts_with('/') || (base.len() > 1 && base.ends_with('/'))) {
        out.push(loc.at_value(
            Diagnostic::error(
                "invalid-value",
                p("gateway.controlUi.basePath"),
                format!("basePath {base:?} must start with \"/\" and not end with one"),
            ),
            &p("gateway.controlUi.basePath"),
        ));
    }
}

/// Normalises `hooks.path` as upstream does: a leading `/` added, trailing ones removed.
pub fn normalize_hooks_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

fn hooks_rules(cfg: &OpenClawConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let h = &cfg.hooks;
    if h.enabled && h.token.is_none() && h.token_file.is_none() {
        out.push(loc.at_value(
            Diagnostic::error("missing-secret", p("hooks.enabled"), "hooks.enabled needs a hooks token")
                .hint("set hooks.tokenFile (on NixOS: services.openclaw.hooksTokenFile); use a token different from the gateway's"),
            &p("hooks.enabled"),
        ));
    }
    if normalize_hooks_path(&h.path) == "/" {
        out.push(loc.at_value(
            Diagnostic::error("invalid-value", p("hooks.path"), "hooks.path may not be \"/\"")
                .hint("use a prefix such as \"/hooks\""),
            &p("hooks.path"),
        ));
    }
    for (i, m) in h.mappings.iter().enumerate() {
        if m.matcher.path.is_none() && m.matcher.source.is_none() {
            let mp = p("hooks.mappings").index(i).key("match");
            out.push(loc.at_key(
                Diagnostic::error("invalid-value", &mp, "a hook mapping must match a path or a source"),
                &mp,
            ));
        }
    }
}

fn check_numbers(list: &[String], path: &KeyPath, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    for (i, n) in list.iter().enumerate() {
        if n != "*" && !is_e164(n) {
            let ep = path.index(i);
            out.push(loc.at_value(
                Diagnostic::error("invalid-e164", &ep, format!("{n:?} is not an E.164 phone number"))
                    .hint("write numbers as + country code and number, digits only, e.g. \"+15551234567\"; \"*\" allows anyone"),
                &ep,
            ));
        }
    }
}

fn whatsapp_rules(wa: &WhatsAppConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let root = p("channels.whatsapp");
    let mut levels: Vec<(KeyPath, Option<&Vec<String>>, Option<&Vec<String>>)> =
        vec![(root.clone(), wa.allow_from.as_ref(), wa.group_allow_from.as_ref())];
    for (id, a) in &wa.accounts {
        levels.push((root.key("accounts").key(id), a.allow_from.as_ref(), a.group_allow_from.as_ref()));
    }
    // Account ids name directories: the one rule `channels login` and the gateway apply too.
    for (id, a) in &wa.accounts {
        let ap = root.key("accounts").key(id);
        if let Err(e) = check_account_id(id) {
            out.push(loc.at_key(
                Diagnostic::error("invalid-account-id", &ap, e).hint("use letters, digits, - and _ (e.g. \"work\")"),
                &ap,
            ));
        }
        if let Some(d) = &a.auth_dir
            && let Err(e) = check_auth_dir(d)
        {
            let dp = ap.key("authDir");
            out.push(loc.at_value(
                Diagnostic::error("invalid-auth-dir", &dp, e)
                    .hint("use a directory of its own: relative to the state dir (e.g. \"wa/work\") or an absolute path you own"),
                &dp,
            ));
        }
    }
    if let Some(d) = &wa.default_account
        && let Err(e) = check_account_id(d)
    {
        let dp = root.key("defaultAccount");
        out.push(loc.at_value(Diagnostic::error("invalid-account-id", &dp, e), &dp));
    }
    for (path, allow, group_allow) in &levels {
        if let Some(l) = allow {
            check_numbers(l, &path.key("allowFrom"), loc, out);
        }
        if let Some(l) = group_allow {
            check_numbers(l, &path.key("groupAllowFrom"), loc, out);
        }
    }
    // Policies are checked on each account's effective settings, reported where dmPolicy is set.
    for id in wa.account_ids() {
        let acc = wa.account(&id);
        let own = wa.accounts.get(&id);
        let policy_path = if own.and_then(|a| a.dm_policy).is_some() {
            root.key("accounts").key(&id).key("dmPolicy")
        } else {
            root.key("dmPolicy")
        };
        let who = if wa.accounts.is_empty() { "channels.whatsapp".to_string() } else { format!("account \"{id}\"") };
        match acc.dm_policy {
            DmPolicy::Open if !acc.allow_from.iter().any(|s| s == "*") => out.push(loc.at_value(
                Diagnostic::error(
                    "open-needs-wildcard",
                    &policy_path,
                    format!("dmPolicy \"open\" on {who} needs \"*\" in allowFrom"),
                )
                .hint("add \"*\" to allowFrom to really let anyone in, or use dmPolicy \"allowlist\""),
                &policy_path,
            )),
            DmPolicy::Allowlist if acc.allow_from.is_empty() => out.push(loc.at_value(
                Diagnostic::error(
                    "allowlist-empty",
                    &policy_path,
                    format!("dmPolicy \"allowlist\" on {who} needs a non-empty allowFrom"),
                )
                .hint("list the E.164 numbers allowed to message the assistant, e.g. allowFrom: [\"+15551234567\"]"),
                &policy_path,
            )),
            _ => {}
        }
    }
    if let Some(d) = &wa.default_account {
        if !wa.accounts.is_empty() && !wa.accounts.contains_key(d) {
            let dp = root.key("defaultAccount");
            let ids: Vec<&str> = wa.accounts.keys().map(String::as_str).collect();
            out.push(loc.at_value(
                Diagnostic::error("unknown-account", &dp, format!("defaultAccount {d:?} is not in accounts"))
                    .hint(format!("accounts: {}", ids.join(", "))),
                &dp,
            ));
        }
    }
}

fn agent_rules(cfg: &OpenClawConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let mut refs = Vec::new();
    if let Some(m) = &cfg.agents.defaults.model {
        refs.push((p("agents.defaults.model"), m));
    }
    for (id, e) in &cfg.agents.entries {
        if let Some(m) = &e.model {
            refs.push((p("agents.entries").key(id).key("model"), m));
        }
    }
    for (path, m) in refs {
        for name in m.names() {
            let ok = name.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            if !ok {
                out.push(loc.at_value(
                    Diagnostic::error("invalid-value", &path, format!("model {name:?} is not \"provider/model\""))
                        .hint("e.g. \"openai/gpt-4o\" or \"ollama/llama3\""),
                    &path,
                ));
            }
        }
    }
    let defaults: Vec<&String> =
        cfg.agents.entries.iter().filter(|(_, e)| e.default == Some(true)).map(|(id, _)| id).collect();
    if defaults.len() > 1 {
        let dp = p("agents.entries").key(defaults[1]).key("default");
        out.push(loc.at_value(
            Diagnostic::error(
                "invalid-value",
                &dp,
                format!("more than one default agent: {}", defaults.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            ),
            &dp,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+15551234567"));
        assert!(is_e164("+4915112345678"));
        assert!(!is_e164("15551234567"));
        assert!(!is_e164("+1 555 123"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+123"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn issue12_unsupported_mention_patterns_are_warned_about() {
        let cfg: OpenClawConfig = serde_json::from_value(serde_json::json!({
            "messages": {"groupChat": {"mentionPatterns": ["\\bbot\\b", "(?<=@)bot"]}},
            "agents": {"entries": {"main": {"groupChat": {"mentionPatterns": ["(x"]}}}}
        }))
        .unwrap();
        let prov = crate::config::merge::Provenance::default();
        let loc = Locator { provenance: &prov, sources: &[] };
        let mut out = Vec::new();
        mention_pattern_rules(&cfg, &loc, &mut out);
        let paths: Vec<String> = out.iter().map(|d| d.path.to_string()).collect();
        assert_eq!(paths, ["messages.groupChat.mentionPatterns[1]", "agents.entries.main.groupChat.mentionPatterns[0]"], "{out:?}");
        assert!(out.iter().all(|d| d.code == "ignored-pattern" && d.message.contains("is ignored")), "{out:?}");
    }

    #[test]
    fn hooks_path_normalization() {
        assert_eq!(normalize_hooks_path("hooks/"), "/hooks");
        assert_eq!(normalize_hooks_path("/"), "/");
        assert_eq!(normalize_hooks_path("//"), "/");
    }
}
