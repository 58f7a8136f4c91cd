//! `api: "openai-completions"`: `POST {baseUrl}/chat/completions` with `stream: true` (OpenAI,
//! vLLM, Ollama, LiteLLM). Body as upstream sends it (reference `agent.md` §2): `{model,
//! messages, stream: true, stream_options: {include_usage: true}}`, the system prompt as the
//! first `system` message, `max_completion_tokens` when the model declares `maxTokens`.
//! Stream: `data: {choices:[{delta:{content}}]}` chunks, a usage chunk, `data: [DONE]`. A
//! server that answers plain JSON instead (`choices[0].message.content`) is accepted too.

use serde::ser::SerializeSeq;
use serde::Serialize;
use serde_json::{json, Value};

use super::sse::SseEvent;
use super::{ChatMessage, ChatRequest, Completion, FailureKind, HttpClient, ProviderSpec, Usage};

/// The request body: serialized straight from the conversation (no copy of the history).
pub fn request_body<'a>(model: &'a str, req: &'a ChatRequest, max_tokens: Option<u32>) -> RequestBody<'a> {
    RequestBody {
        model,
        messages: Messages { system: req.system.as_deref(), history: &req.messages },
        stream: true,
        stream_options: StreamOptions { include_usage: true },
        max_completion_tokens: max_tokens,
    }
}

/// `{model, messages, stream, stream_options, max_completion_tokens?}`, in that order.
#[derive(Debug, Serialize)]
pub struct RequestBody<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The system prompt as the first `system` message, then the conversation.
#[derive(Debug)]
struct Messages<'a> {
    system: Option<&'a str>,
    history: &'a [ChatMessage],
}

impl Serialize for Messages<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct System<'a> {
            role: &'static str,
            content: &'a str,
        }
        let mut seq = s.serialize_seq(Some(self.history.len() + usize::from(self.system.is_some())))?;
        if let Some(content) = self.system {
            seq.serialize_element(&System { role: "system", content })?;
        }
        for m in self.history {
            seq.serialize_element(m)?;
        }
        seq.end()
    }
}

/// The accumulated state of one stream.
#[derive(Debug, Default)]
pub struct StreamState {
    /// Text so far.
    pub text: String,
    /// Usage, when the usage chunk came.
    pub usage: Option<Usage>,
    /// The finish reason, when it came.
    pub finish_reason: Option<String>,
    /// Whether `[DONE]` was seen.
    pub done: bool,
}

impl StreamState {
    /// Applies one event; returns the new text it carried (possibly empty).
    pub fn apply(&mut self, ev: &SseEvent) -> Result<String, FailureKind> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(String::new());
        }
        if data.is_empty() {
            return Ok(String::new());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| FailureKind::Protocol(format!("stream chunk is not JSON: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(stream_error(err));
        }
        let mut delta = String::new();
        if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
            if let Some(t) = choice.pointer("/delta/content").and_then(Value::as_str) {
                delta.push_str(t);
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(r.to_string());
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
                output: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
            });
        }
        self.text.push_str(&delta);
        Ok(delta)
    }
}

/// An error object inside a stream, classified by its `code`/status when it has one.
fn stream_error(err: &Value) -> FailureKind {
    let status = err
        .get("code")
        .and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let body = json!({"error": err}).to_string();
    match status {
        Some(s) => FailureKind::from_status(s, None, &body),
        None => FailureKind::Protocol(format!("error in stream: {}", super::error_detail(&body))),
    }
}

/// A non-streamed Chat Completions response: `{choices: [{message: {content}}], usage}`.
pub fn plain_completion(body: &str) -> Result<Completion, FailureKind> {
    let v: Value = serde_json::from_str(body).map_err(|e| FailureKind::Protocol(format!("response is not JSON: {e}")))?;
    if let Some(err) = v.get("error") {
        return Err(stream_error(err));
    }
    let choice = v.pointer("/choices/0").ok_or_else(|| FailureKind::Protocol("response has no choices".into()))?;
    let text = choice.pointer("/message/content").and_then(Value::as_str).unwrap_or_default().to_string();
    let usage = v.get("usage").filter(|u| u.is_object()).map(|u| Usage {
        input: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
    });
    let finish_reason = choice.get("finish_reason").and_then(Value::as_str).map(String::from);
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
    let url = format!("{}/chat/completions", spec.base_url);
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), "text/event-stream".to_string()),
    ];
    if let Some(k) = &spec.api_key {
        headers.push(("authorization".to_string(), format!("Bearer {k}")));
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
    if !state.done && state.finish_reason.is_none() {
        return Err(FailureKind::Protocol("the stream ended before [DONE]".into()));
    }
    Ok(Completion { text: state.text, usage: state.usage, finish_reason: state.finish_reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_system_first_then_history() {
        let req = ChatRequest {
            system: Some("be brief".into()),
            messages: vec![ChatMessage::user("a"), ChatMessage::assistant("b"), ChatMessage::user("c")],
        };
        let body = serde_json::to_value(request_body("gpt", &req, Some(512))).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"}
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_completion_tokens": 512
            })
        );
    }

    #[test]
    fn stream_chunks_accumulate_text_usage_and_done() {
        let mut s = StreamState::default();
        let ev = |d: &str| SseEvent { event: None, data: d.into() };
        assert_eq!(s.apply(&ev(r#"{"choices":[{"delta":{"role":"assistant","content":"Hel"}}]}"#)).unwrap(), "Hel");
        assert_eq!(s.apply(&ev(r#"{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}"#)).unwrap(), "lo");
        s.apply(&ev(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#)).unwrap();
        s.apply(&ev("[DONE]")).unwrap();
        assert_eq!(s.text, "Hello");
        assert_eq!(s.usage, Some(Usage { input: 7, output: 2 }));
        assert_eq!(s.finish_reason.as_deref(), Some("stop"));
        assert!(s.done);
    }

    #[test]
    fn a_plain_json_answer_is_accepted() {
        let c = plain_completion(r#"{"choices":[{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#).unwrap();
        assert_eq!((c.text.as_str(), c.usage, c.finish_reason.as_deref()), ("Hi", Some(Usage { input: 2, output: 1 }), Some("stop")));
        assert!(matches!(plain_completion("{}"), Err(FailureKind::Protocol(_))));
    }

    #[test]
    fn errors_inside_the_stream_are_typed() {
        let mut s = StreamState::default();
        let ev = |d: &str| SseEvent { event: None, data: d.into() };
        let e = s.apply(&ev(r#"{"error":{"message":"overloaded","code":"503"}}"#)).unwrap_err();
        assert_eq!(e, FailureKind::Server { status: 503, detail: "overloaded".into() });
        assert!(matches!(s.apply(&ev("not json")), Err(FailureKind::Protocol(_))));
    }
}
