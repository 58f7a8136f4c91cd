//! `api: "anthropic-messages"`: `POST {baseUrl}/v1/messages` with `stream: true`, headers
//! `x-api-key` and `anthropic-version: 2023-06-01`. Body `{model, max_tokens, system?,
//! messages, stream: true}` (`max_tokens` is required by the API: the model's `maxTokens`, else
//! 8192 as upstream). Stream events: `message_start` (input usage), `content_block_delta` with
//! `text_delta`, `message_delta` (stop reason, output usage), `message_stop`, `ping`, `error`.

use serde::Serialize;
use serde_json::Value;

use super::sse::SseEvent;
use super::{ChatMessage, ChatRequest, Completion, FailureKind, HttpClient, ProviderSpec, Usage};

/// The API version header value.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the model declares none (upstream's default completion budget).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// The request body: serialized straight from the conversation (no copy of the history).
pub fn request_body<'a>(model: &'a str, req: &'a ChatRequest, max_tokens: Option<u32>) -> RequestBody<'a> {
    RequestBody {
        model,
        max_tokens: max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        messages: &req.messages,
        stream: true,
        system: req.system.as_deref(),
    }
}

/// `{model, max_tokens, messages, stream, system?}`, in that order.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: &'a [ChatMessage],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
}

/// The accumulated state of one stream.
#[derive(Debug, Default)]
pub struct StreamState {
    /// Text so far.
    pub text: String,
    /// Usage so far.
    pub usage: Option<Usage>,
    /// `stop_reason`, when it came.
    pub finish_reason: Option<String>,
    /// Whether `message_stop` was seen.
    pub done: bool,
}

impl StreamState {
    /// Applies one event; returns the new text it carried (possibly empty).
    pub fn apply(&mut self, ev: &SseEvent) -> Result<String, FailureKind> {
        if ev.data.trim().is_empty() {
            return Ok(String::new());
        }
        let v: Value =
            serde_json::from_str(&ev.data).map_err(|e| FailureKind::Protocol(format!("stream event is not JSON: {e}")))?;
        let kind = ev.event.clone().or_else(|| v.get("type").and_then(Value::as_str).map(String::from)).unwrap_or_default();
        match kind.as_str() {
            "message_start" => {
                let input = v.pointer("/message/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
                self.usage.get_or_insert_with(Usage::default).input = input;
            }
            "content_block_delta" => {
                if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                    self.text.push_str(t);
                    return Ok(t.to_string());
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish_reason = Some(r.to_string());
                }
                if let Some(o) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.get_or_insert_with(Usage::default).output = o;
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(stream_error(&v)),
            _ => {}
        }
        Ok(String::new())
    }
}

/// An `error` event, classified by its `error.type`.
fn stream_error(v: &Value) -> FailureKind {
    let kind = v.pointer("/error/type").and_then(Value::as_str).unwrap_or("");
    let detail = super::error_detail(&v.to_string());
    match kind {
        "authentication_error" | "permission_error" => FailureKind::Unauthorized { status: 401, detail },
        "rate_limit_error" => FailureKind::RateLimited { retry_after: None, detail },
        "overloaded_error" => FailureKind::Server { status: 529, detail },
        "api_error" => FailureKind::Server { status: 500, detail },
        _ => FailureKind::Protocol(format!("error in stream: {detail}")),
    }
}

/// A non-streamed Messages response: `{content: [{type: "text", text}], stop_reason, usage}`.
pub fn plain_completion(body: &str) -> Result<Completion, FailureKind> {
    let v: Value = serde_json::from_str(body).map_err(|e| FailureKind::Protocol(format!("response is not JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(stream_error(&v));
    }
    let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| FailureKind::Protocol("response has no content".into()))?;
    let text: String = blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect();
    let usage = v.get("usage").map(|u| Usage {
        input: u.get("input_tokens").and_then(Value::as_u64).unwrap_or(0),
        output: u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
    });
    let finish_reason = v.get("stop_reason").and_then(Value::as_str).map(String::from);
    Ok(Completion { text, usage, finish_reason })
}

/// One streamed call.
pub async fn complete(
    client: &HttpClient,
    spec: &ProviderSpec,
    model: &str,
    req: &ChatRequest,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<Completion, FailureKind> {
    let url = format!("{}/v1/messages", spec.base_url);
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), "text/event-stream".to_string()),
        ("anthropic-version".to_string(), API_VERSION.to_string()),
    ];
    if let Some(k) = &spec.api_key {
        headers.push(("x-api-key".to_string(), k.clone()));
    }
    let body = request_body(model, req, spec.max_tokens(model));
    let resp = super::post_json(client, &url, super::headers_with(spec, headers), &body).await?;
    if super::is_plain_json(&resp) {
        let c = plain_completion(&resp.text(super::PLAIN_BODY_LIMIT).await?)?;
        if !c.text.is_empty() {
            on_delta(&c.text);
        }
        return Ok(c);
    }
    let mut state = StreamState::default();
    super::read_events(resp, |ev| {
        let delta = state.apply(&ev)?;
        if !delta.is_empty() {
            on_delta(&delta);
        }
        Ok(state.done)
    })
    .await?;
    if !state.done {
        return Err(FailureKind::Protocol("the stream ended before message_stop".into()));
    }
    Ok(Completion { text: state.text, usage: state.usage, finish_reason: state.finish_reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_puts_the_system_prompt_apart() {
        let req = ChatRequest { system: Some("sys".into()), messages: vec![ChatMessage::user("hi")] };
        assert_eq!(
            serde_json::to_value(request_body("claude", &req, None)).unwrap(),
            json!({"model": "claude", "max_tokens": 8192, "system": "sys",
                   "messages": [{"role": "user", "content": "hi"}], "stream": true})
        );
    }

    #[test]
    fn a_plain_json_answer_is_accepted() {
        let c = plain_completion(r#"{"type":"message","content":[{"type":"text","text":"Hi"},{"type":"text","text":"!"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#).unwrap();
        assert_eq!((c.text.as_str(), c.usage, c.finish_reason.as_deref()), ("Hi!", Some(Usage { input: 3, output: 1 }), Some("end_turn")));
        assert!(matches!(plain_completion("{}"), Err(FailureKind::Protocol(_))));
    }

    #[test]
    fn events_accumulate() {
        let mut s = StreamState::default();
        let ev = |e: &str, d: &str| SseEvent { event: Some(e.into()), data: d.into() };
        s.apply(&ev("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":9}}}"#)).unwrap();
        s.apply(&ev("ping", r#"{"type":"ping"}"#)).unwrap();
        assert_eq!(s.apply(&ev("content_block_delta", r#"{"delta":{"type":"text_delta","text":"Hi"}}"#)).unwrap(), "Hi");
        s.apply(&ev("message_delta", r#"{"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#)).unwrap();
        s.apply(&ev("message_stop", r#"{"type":"message_stop"}"#)).unwrap();
        assert_eq!((s.text.as_str(), s.usage, s.done), ("Hi", Some(Usage { input: 9, output: 3 }), true));
        let e = s.apply(&ev("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#));
        assert_eq!(e, Err(FailureKind::Server { status: 529, detail: "busy".into() }));
    }
}
