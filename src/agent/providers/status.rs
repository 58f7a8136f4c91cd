//! Provider health for `openclaw models status`: for each provider, is it reachable, is the key
//! accepted, and are its models listed (`GET {baseUrl}/models` for `openai-completions`,
//! `GET {baseUrl}/v1/models` for `anthropic-messages`). [`classify`] is pure; [`probe`] does
//! the request.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::config::model::models::ProviderApi;

use super::{error_detail, HttpClient, ModelTarget, ProviderSet, ProviderSpec};

/// Largest models listing read.
const LIST_LIMIT: usize = 4 * 1024 * 1024;

/// One model's presence in the provider's listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelListed {
    /// The model id.
    pub id: String,
    /// Listed by the provider (`None` when the listing could not be read).
    pub listed: Option<bool>,
}

/// The status of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The provider id.
    pub id: String,
    /// Its `api`.
    pub api: String,
    /// Its base URL.
    pub base_url: String,
    /// The key's fingerprint (`sha256:` + 8 hex), if it has a key.
    pub key_fingerprint: Option<String>,
    /// A connection was made and the server answered.
    pub reachable: bool,
    /// The key was accepted (`None`: not known, e.g. unreachable or an unexpected status).
    pub key_accepted: Option<bool>,
    /// The HTTP status of the listing.
    pub http_status: Option<u16>,
    /// Time to the response, in ms.
    pub latency_ms: Option<u64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The declared models and those the agent's model chain uses with this provider.
    pub models: Vec<ModelListed>,
    /// Every model id the provider listed (empty when the listing could not be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub available: Vec<String>,
}

impl ProviderStatus {
    /// Reachable, key accepted and every model listed.
    pub fn ok(&self) -> bool {
        self.reachable && self.key_accepted == Some(true) && self.models.iter().all(|m| m.listed == Some(true))
    }
}

/// The outcome of the listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOutcome {
    /// No HTTP response.
    Transport(String),
    /// A response.
    Http {
        /// The status.
        status: u16,
        /// The body (possibly cut).
        body: String,
    },
}

/// The model ids of a listing (`{data: [{id}]}` for both APIs; `{models: [{name}]}` too).
pub fn listed_ids(body: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let items = v.get("data").or_else(|| v.get("models"))?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|m| m.get("id").or_else(|| m.get("name")).and_then(Value::as_str).map(String::from))
            .collect(),
    )
}

/// The status from the listing's outcome (pure).
pub fn classify(spec: &ProviderSpec, models: &[String], outcome: &ListOutcome, latency: Option<Duration>) -> ProviderStatus {
    let mut st = ProviderStatus {
        id: spec.id.clone(),
        api: serde_json::to_value(spec.api).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        base_url: spec.base_url.clone(),
        key_fingerprint: spec.api_key.as_ref().map(|k| crate::config::secrets::fingerprint(k.as_bytes())),
        reachable: false,
        key_accepted: None,
        http_status: None,
        latency_ms: latency.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        error: None,
        models: models.iter().map(|m| ModelListed { id: m.clone(), listed: None }).collect(),
        available: Vec::new(),
    };
    match outcome {
        ListOutcome::Transport(e) => st.error = Some(e.clone()),
        ListOutcome::Http { status, body } => {
            st.reachable = true;
            st.http_status = Some(*status);
            match status {
                200..=299 => {
                    st.key_accepted = Some(true);
                    match listed_ids(body) {
                        Some(ids) => {
                            for m in &mut st.models {
                                m.listed = Some(ids.iter().any(|i| i == &m.id));
                            }
                            st.available = ids;
                        }
                        None => st.error = Some("the model listing is not {data:[{id}]} JSON".into()),
                    }
                }
                401 | 403 => {
                    st.key_accepted = Some(false);
                    st.error = Some(format!("key rejected (HTTP {status}): {}", error_detail(body)));
                }
                _ => st.error = Some(format!("HTTP {status}: {}", error_detail(body))),
            }
        }
    }
    st
}

/// The models to check for `spec`: its declared ones, then those of `chain` on this provider.
pub fn models_to_check(spec: &ProviderSpec, chain: &[String]) -> Vec<String> {
    let mut out: Vec<String> = spec.models.iter().map(|m| m.id.clone()).collect();
    for t in chain.iter().filter_map(|n| ModelTarget::parse(n)) {
        if t.provider == spec.id && !out.contains(&t.model) {
            out.push(t.model);
        }
    }
    out
}

/// Lists `spec`'s models and classifies the answer.
pub async fn probe(client: &HttpClient, spec: &ProviderSpec, chain: &[String]) -> ProviderStatus {
    let models = models_to_check(spec, chain);
    let (url, mut headers) = match spec.api {
        ProviderApi::AnthropicMessages => {
            let mut h = vec![("anthropic-version".to_string(), super::anthropic::API_VERSION.to_string())];
            if let Some(k) = &spec.api_key {
                h.push(("x-api-key".into(), k.clone()));
            }
            (format!("{}/v1/models", spec.base_url), h)
        }
        _ => {
            let h = spec.api_key.iter().map(|k| ("authorization".to_string(), format!("Bearer {k}"))).collect();
            (format!("{}/models", spec.base_url), h)
        }
    };
    headers = super::headers_with(spec, headers);
    let started = Instant::now();
    let outcome = match client.send(::http::Method::GET, &url, &headers, None).await {
        Err(e) => ListOutcome::Transport(e.to_string()),
        Ok(resp) => {
            let status = resp.status.as_u16();
            let body = resp.text(LIST_LIMIT).await.unwrap_or_default();
            ListOutcome::Http { status, body }
        }
    };
    let latency = matches!(outcome, ListOutcome::Http { .. }).then(|| started.elapsed());
    classify(spec, &models, &outcome, latency)
}

/// Probes every provider of `set`, in parallel.
pub async fn probe_all(client: &HttpClient, set: &ProviderSet) -> Vec<ProviderStatus> {
    futures_util::future::join_all(set.providers.values().map(|spec| probe(client, spec, &set.chain))).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::model::models::ProviderModel;

    fn spec() -> ProviderSpec {
        ProviderSpec {
            id: "p".into(),
            api: ProviderApi::OpenaiCompletions,
            base_url: "http://h/v1".into(),
            api_key: Some("k".into()),
            headers: BTreeMap::new(),
            models: vec![ProviderModel { id: "a".into(), ..Default::default() }],
        }
    }

    #[test]
    fn listing_marks_models() {
        let models = models_to_check(&spec(), &["p/b".into(), "q/c".into(), "p/a".into()]);
        assert_eq!(models, ["a", "b"]);
        let st = classify(
            &spec(),
            &models,
            &ListOutcome::Http { status: 200, body: r#"{"data":[{"id":"a"},{"id":"z"}]}"#.into() },
            Some(Duration::from_millis(5)),
        );
        assert!(st.reachable && st.key_accepted == Some(true));
        assert_eq!(st.models, vec![
            ModelListed { id: "a".into(), listed: Some(true) },
            ModelListed { id: "b".into(), listed: Some(false) }
        ]);
        assert!(!st.ok());
        assert_eq!(st.available, ["a", "z"]);
        assert_eq!(st.key_fingerprint, Some(crate::config::secrets::fingerprint(b"k")));
    }

    #[test]
    fn unauthorized_and_unreachable() {
        let st = classify(&spec(), &[], &ListOutcome::Http { status: 401, body: "{\"error\":{\"message\":\"bad key\"}}".into() }, None);
        assert_eq!((st.reachable, st.key_accepted), (true, Some(false)));
        assert_eq!(st.error.as_deref(), Some("key rejected (HTTP 401): bad key"));
        let st = classify(&spec(), &[], &ListOutcome::Transport("cannot connect: refused".into()), None);
        assert_eq!((st.reachable, st.key_accepted), (false, None));
        assert!(!st.ok());
    }
}
