//! A blocking client for OpenAI-compatible chat endpoints (`POST {base}/chat/completions`), with
//! retries and exponential backoff. Used for model evaluation and the remote judge.

use serde_json::json;
use std::time::Duration;

/// Errors of a chat call.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The endpoint URL is not usable.
    #[error("endpoint {0:?}: expected an http:// or https:// URL")]
    BadEndpoint(String),
    /// Every attempt failed; the last error is given.
    #[error("{url}: {attempts} attempt(s) failed, last: {last}")]
    Failed {
        /// The URL called.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The reply is not a chat completion.
    #[error("{url}: reply is not an OpenAI chat completion: {message}")]
    BadReply {
        /// The URL called.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// Settings of a chat endpoint.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is appended unless the
    /// URL already ends with it).
    pub endpoint: String,
    /// Model name sent in the request.
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Attempts per request (≥ 1).
    pub attempts: u32,
    /// First backoff delay; doubled after every failed attempt.
    pub backoff: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Sampling temperature.
    pub temperature: f32,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
}

impl ChatConfig {
    /// Defaults: 4 attempts, 500 ms first backoff, 120 s timeout, temperature 0.
    pub fn new(endpoint: &str, model: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            model: model.to_string(),
            api_key: None,
            attempts: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(120),
            temperature: 0.0,
            max_tokens: 1024,
        }
    }

    /// The full URL of the chat-completions resource.
    pub fn url(&self) -> Result<String, ChatError> {
        let e = self.endpoint.trim_end_matches('/');
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(ChatError::BadEndpoint(self.endpoint.clone()));
        }
        Ok(if e.ends_with("/chat/completions") {
            e.to_string()
        } else {
            format!("{e}/chat/completions")
        })
    }
}

/// One message of a conversation.
#[derive(Debug, Clone)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// A reusable chat client.
pub struct ChatClient {
    config: ChatConfig,
    url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url)
            .finish()
    }
}

/// Whether an HTTP status is worth retrying (rate limits and server errors).
fn retryable(status: u16) -> bool {
    status == 408 || status == 409 || status == 429 || status >= 500
}

impl ChatClient {
    /// A client for `config`.
    pub fn new(config: ChatConfig) -> Result<Self, ChatError> {
        let url = config.url()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { config, url, agent })
    }

    /// The configuration.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Sends `messages` and returns the assistant's reply text.
    pub fn complete(&self, messages: &[Message]) -> Result<String, ChatError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "stream": false,
        })
        .to_string();
        let attempts = self.config.attempts.max(1);
        let mut delay = self.config.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let mut req = self
                .agent
                .post(&self.url)
                .header("Content-Type", "application/json");
            if let Some(k) = &self.config.api_key {
                req = req.header("Authorization", &format!("Bearer {k}"));
            }
            match req.send(body.as_bytes()) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp
                        .body_mut()
                        .with_config()
                        .limit(16 << 20)
                        .read_to_string()
                        .unwrap_or_default();
                    if (200..300).contains(&status) {
                        return parse_reply(&text).map_err(|message| ChatError::BadReply {
                            url: self.url.clone(),
                            message,
                        });
                    }
                    last = format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    );
                    if !retryable(status) {
                        return Err(ChatError::Failed {
                            url: self.url.clone(),
                            attempts: attempt,
                            last,
                        });
                    }
                }
                Err(e) => last = e.to_string(),
            }
            if attempt < attempts {
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
            }
        }
        Err(ChatError::Failed {
            url: self.url.clone(),
            attempts,
            last,
        })
    }

    /// Asks one question (a single user message).
    pub fn ask(&self, question: &str) -> Result<String, ChatError> {
        self.complete(&[Message {
            role: "user",
            content: question.to_string(),
        }])
    }
}

/// The text of `choices[0].message.content`.
fn parse_reply(text: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    v.pointer("/choices/0/message/content")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or_else(|| "no choices[0].message.content".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_replies() {
        let c = ChatConfig::new("http://h:1/v1/", "m");
        assert_eq!(
            c.url().ok().as_deref(),
            Some("http://h:1/v1/chat/completions")
        );
        let c = ChatConfig::new("https://h/v1/chat/completions", "m");
        assert_eq!(
            c.url().ok().as_deref(),
            Some("https://h/v1/chat/completions")
        );
        assert!(ChatConfig::new("ftp://h", "m").url().is_err());
        assert_eq!(
            parse_reply(r#"{"choices":[{"message":{"role":"assistant","content":"你好"}}]}"#),
            Ok("你好".to_string())
        );
        assert!(parse_reply("{}").is_err());
        assert!(parse_reply("<html>").is_err());
        assert!(retryable(429) && retryable(503) && !retryable(400) && !retryable(401));
    }
}
