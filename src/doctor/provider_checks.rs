//! The model-provider checks (pure): per provider `model.provider.<id>` — unreachable, key
//! rejected, another HTTP error, or ok — then `model.default`: is `agents.defaults.model`'s
//! model listed by its provider. `model.provider` alone says why nothing was probed.

use crate::agent::providers::ModelTarget;
use crate::doctor::checks::{Finding, Status};
use crate::doctor::provider_probe::{KeySource, ProviderFact, ProviderFacts};

/// Every model-provider finding.
pub fn provider_checks(p: &ProviderFacts) -> Vec<Finding> {
    if let Some(why) = &p.not_checked {
        return vec![Finding::new("model.provider", Status::Skip, format!("model providers are not checked: {why}"))];
    }
    if p.providers.is_empty() {
        let msg = "no model provider is configured (models.providers): the assistant cannot answer";
        return vec![Finding::new("model.provider", Status::Skip, msg)];
    }
    let mut out: Vec<Finding> = p.providers.iter().map(|x| provider(x, p.timeout_ms)).collect();
    out.push(default_model(p));
    out
}

/// The exact edit that replaces a rejected key, by where the key comes from.
fn key_fix(id: &str, src: &KeySource) -> String {
    let file_key = format!("models.providers.{id}.apiKeyFile");
    match src {
        KeySource::File { path } => {
            format!("write the provider's valid key to {} (named by {file_key}), then `openclaw gateway restart`", path.display())
        }
        KeySource::Inline { file, line } => format!(
            "replace models.providers.{id}.apiKey in {}:{line} with the provider's valid key — better, put it in a file (mode 0600) and set {file_key} instead — then `openclaw gateway restart`",
            file.display()
        ),
        KeySource::Env { var } => format!(
            "set {var} (substituted into models.providers.{id}.apiKey) to the provider's valid key, or set {file_key} to a file holding it; then `openclaw gateway restart`"
        ),
        KeySource::None => format!("the provider wants a key: set {file_key} to a file (mode 0600) holding it, then `openclaw gateway restart`"),
    }
}

fn key_evidence(x: &ProviderFact) -> String {
    let fp = x.status.key_fingerprint.as_deref().unwrap_or("none");
    match &x.key_source {
        KeySource::File { path } => format!("key {fp} from {}", path.display()),
        KeySource::Inline { file, line } => format!("key {fp} written in {}:{line}", file.display()),
        KeySource::Env { var } => format!("key {fp} from ${var}"),
        KeySource::None => "no key configured".into(),
    }
}

fn provider(x: &ProviderFact, timeout_ms: u64) -> Finding {
    let s = &x.status;
    let id = format!("model.provider.{}", s.id);
    let err = s.error.clone().unwrap_or_default();
    if !s.reachable {
        return Finding::new(&id, Status::Fail, format!("model provider {} is unreachable: the assistant cannot answer", s.id))
            .ev(format!("GET {} failed within {timeout_ms} ms: {err}", listing_url(s)))
            .ev(format!("baseUrl: {}", s.base_url))
            .fix(format!(
                "start the provider at {} (or correct models.providers.{}.baseUrl), then `openclaw models status`",
                s.base_url, s.id
            ));
    }
    let status = s.http_status.map(|c| format!("HTTP {c}")).unwrap_or_default();
    if s.key_accepted == Some(false) {
        return Finding::new(&id, Status::Fail, format!("model provider {} rejects the API key ({status})", s.id))
            .ev(format!("GET {}: {err}", listing_url(s)))
            .ev(key_evidence(x))
            .fix(key_fix(&s.id, &x.key_source));
    }
    if s.key_accepted != Some(true) {
        return Finding::new(&id, Status::Fail, format!("model provider {} answers with an error ({status})", s.id))
            .ev(format!("GET {}: {err}", listing_url(s)))
            .fix(format!("check models.providers.{}.baseUrl and .api, then `openclaw models status`", s.id));
    }
    let mut f = Finding::new(&id, Status::Ok, format!("model provider {} is reachable and accepts the key", s.id))
        .ev(format!("baseUrl: {}", s.base_url))
        .ev(key_evidence(x));
    if let Some(ms) = s.latency_ms {
        f = f.ev(format!("listing in {ms} ms"));
    }
    f
}

fn listing_url(s: &crate::agent::providers::status::ProviderStatus) -> String {
    if s.api == "anthropic-messages" { format!("{}/v1/models", s.base_url) } else { format!("{}/models", s.base_url) }
}

fn default_model(p: &ProviderFacts) -> Finding {
    let id = "model.default";
    let Some(primary) = p.chain.first() else {
        return Finding::new(id, Status::Warn, "agents.defaults.model is not set: the assistant has no model to use")
            .fix("set agents.defaults.model to \"<provider>/<model>\" (`openclaw models status` lists them)");
    };
    let Some(t) = ModelTarget::parse(primary) else {
        return Finding::new(id, Status::Fail, format!("agents.defaults.model {primary:?} is not \"<provider>/<model>\""))
            .fix("set agents.defaults.model to \"<provider>/<model>\"");
    };
    let Some(x) = p.providers.iter().find(|x| x.status.id == t.provider) else {
        let ids: Vec<&str> = p.providers.iter().map(|x| x.status.id.as_str()).collect();
        return Finding::new(id, Status::Fail, format!("agents.defaults.model {primary} names provider {}, which is not configured", t.provider))
            .ev(format!("configured providers: {}", ids.join(", ")))
            .fix(format!("add models.providers.{}, or set agents.defaults.model to one of the configured providers' models", t.provider));
    };
    let s = &x.status;
    if s.key_accepted != Some(true) {
        return Finding::new(id, Status::Skip, format!("not checked: provider {} did not list its models", t.provider));
    }
    if s.available.contains(&t.model) {
        return Finding::new(id, Status::Ok, format!("the default model {primary} is listed by its provider"));
    }
    let listed = if s.available.is_empty() { "none".to_string() } else { s.available.join(", ") };
    Finding::new(id, Status::Fail, format!("the default model {primary} is not listed by provider {}: every reply will fail", t.provider))
        .ev(format!("{} lists: {listed}", t.provider))
        .fix(format!(
            "set agents.defaults.model to one of {} (e.g. \"{}/{}\"), or serve model {} on the provider",
            listed,
            t.provider,
            s.available.first().map(String::as_str).unwrap_or("<model>"),
            t.model
        ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::agent::providers::status::{classify, ListOutcome};
    use crate::agent::providers::ProviderSpec;
    use crate::config::model::models::ProviderApi;

    fn fact(outcome: ListOutcome, key_source: KeySource) -> ProviderFact {
        let spec = ProviderSpec {
            id: "local".into(),
            api: ProviderApi::OpenaiCompletions,
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: Some("sk-secret-value".into()),
            headers: BTreeMap::new(),
            models: vec![],
        };
        ProviderFact { status: classify(&spec, &["m1".into()], &outcome, None), key_source }
    }

    fn facts(x: ProviderFact) -> ProviderFacts {
        ProviderFacts { chain: vec!["local/m1".into()], providers: vec![x], timeout_ms: 3000, not_checked: None }
    }

    #[test]
    fn none_configured_is_a_skip_that_says_so() {
        let out = provider_checks(&ProviderFacts::default());
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].id.as_str(), out[0].status), ("model.provider", Status::Skip));
        assert!(out[0].message.contains("no model provider is configured"));
    }

    #[test]
    fn unreachable_names_base_url_and_error() {
        let out = provider_checks(&facts(fact(ListOutcome::Transport("connection refused".into()), KeySource::None)));
        let f = &out[0];
        assert_eq!((f.id.as_str(), f.status), ("model.provider.local", Status::Fail));
        assert!(f.evidence[0].contains("http://127.0.0.1:9/v1/models") && f.evidence[0].contains("connection refused"), "{f:?}");
        assert!(f.fix.as_deref().unwrap().contains("models.providers.local.baseUrl"));
        assert_eq!(out[1].status, Status::Skip);
    }

    #[test]
    fn rejected_key_names_the_key_file_never_the_key() {
        let src = KeySource::File { path: PathBuf::from("/run/keys/local.key") };
        let out = provider_checks(&facts(fact(ListOutcome::Http { status: 401, body: "{\"error\":\"bad\"}".into() }, src)));
        let f = &out[0];
        assert_eq!(f.status, Status::Fail);
        assert!(f.message.contains("rejects the API key (HTTP 401)"));
        let fix = f.fix.as_deref().unwrap();
        assert!(fix.contains("/run/keys/local.key") && fix.contains("models.providers.local.apiKeyFile"), "{fix}");
        let all = format!("{f:?}");
        assert!(!all.contains("sk-secret-value") && all.contains("sha256:"), "{all}");
        let inline = KeySource::Inline { file: PathBuf::from("/etc/openclaw.json"), line: 7 };
        let out = provider_checks(&facts(fact(ListOutcome::Http { status: 403, body: String::new() }, inline)));
        assert!(out[0].fix.as_deref().unwrap().contains("/etc/openclaw.json:7") && out[0].fix.as_deref().unwrap().contains("apiKeyFile"));
    }

    #[test]
    fn default_model_not_listed_names_the_listed_ones() {
        let body = r#"{"data":[{"id":"m2"},{"id":"m3"}]}"#.to_string();
        let out = provider_checks(&facts(fact(ListOutcome::Http { status: 200, body }, KeySource::None)));
        assert_eq!(out[0].status, Status::Ok);
        let d = &out[1];
        assert_eq!((d.id.as_str(), d.status), ("model.default", Status::Fail));
        let fix = d.fix.as_deref().unwrap();
        assert!(fix.contains("m2, m3") && fix.contains("serve model m1") && fix.contains("agents.defaults.model"), "{fix}");
        let body = r#"{"data":[{"id":"m1"}]}"#.to_string();
        let out = provider_checks(&facts(fact(ListOutcome::Http { status: 200, body }, KeySource::None)));
        assert_eq!((out[0].status, out[1].status), (Status::Ok, Status::Ok));
    }
}
