//! Local servers that stand in for the admins' ends of channels: a
//! webhook/Telegram/Slack-shaped receiver with scripted answers, and a raw
//! server whose bodies never end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: serde_json::Value,
    pub at: tokio::time::Instant,
}

/// A scripted answer: status, body, `Retry-After` seconds, more headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
    pub headers: Vec<(String, String)>,
    /// Append the request's path to the body (a server that echoes it).
    pub echo_path: bool,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self::with_body(status, "")
    }

    pub fn with_body(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            retry_after: None,
            headers: Vec::new(),
            echo_path: false,
        }
    }

    /// `status` with `body` followed by the request's path.
    pub fn echoing_path(status: u16, body: &str) -> Self {
        Self {
            echo_path: true,
            ..Self::with_body(status, body)
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// An HTTP receiver (webhook, Telegram- or Slack-shaped endpoint) that
/// records every POST on any path and answers from a script (then 200 with
/// `{"ok":true}` forever).
#[derive(Clone, Default)]
pub struct Receiver {
    pub requests: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<Answer>>>,
    /// Until when every request is answered with this status (before the
    /// script); afterwards the receiver accepts at once.
    failing: Arc<Mutex<Option<(tokio::time::Instant, u16)>>>,
}

impl Receiver {
    pub async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .fallback(post(record))
            .with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    /// The next answers' statuses, in order (e.g. [503, 429] then 200s).
    pub fn answer_with(&self, statuses: &[u16]) {
        self.script(statuses.iter().map(|s| Answer::status(*s)).collect());
    }

    /// Answers `status` to everything for `span` from now, then accepts:
    /// a sender that tried again after `span` would get through.
    pub fn fail_for(&self, span: std::time::Duration, status: u16) {
        *self.failing.lock().unwrap() = Some((tokio::time::Instant::now() + span, status));
    }

    /// The next answers, in order.
    pub fn script(&self, answers: Vec<Answer>) {
        *self.script.lock().unwrap() = answers.into_iter().rev().collect();
    }

    pub fn all(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that were answered 2xx and carry `event`.
    pub fn events(&self, event: &str) -> Vec<Received> {
        self.accepted()
            .into_iter()
            .filter(|r| r.json["event"] == event)
            .collect()
    }

    /// Requests that were answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.headers.contains_key("x-test-accepted"))
            .collect()
    }

    pub fn codes(&self) -> Vec<String> {
        self.events("code")
            .iter()
            .map(|r| r.json["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    mut headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let failing = *receiver.failing.lock().unwrap();
    let answer = match failing {
        Some((until, status)) if tokio::time::Instant::now() < until => Answer::status(status),
        _ => receiver
            .script
            .lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| Answer::with_body(200, r#"{"ok":true,"result":{}}"#)),
    };
    if (200..300).contains(&answer.status) {
        // Marks what was accepted, so tests can tell retries apart.
        headers.insert("x-test-accepted", "1".parse().unwrap());
    }
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    receiver.requests.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        json,
        at: tokio::time::Instant::now(),
    });
    let mut body = answer.body.clone();
    if answer.echo_path {
        body.push_str(uri.path());
    }
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), body).into_response();
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    for (name, value) in &answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// How [`start_big_body_server`] answers every request.
#[derive(Debug, Clone, Copy)]
pub enum BigBody {
    /// `Content-Length` of 100 MB, 65 KiB sent, then nothing more.
    Declared,
    /// Chunked, 1 KiB chunks, 100 of them, then nothing more.
    Chunked,
}

/// A raw HTTP/1.1 server that answers every request 200 with a body far
/// larger than any real vendor or channel answer, and never finishes it.
/// Returns its address and when each connection arrived.
pub async fn start_big_body_server(
    kind: BigBody,
) -> (SocketAddr, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            seen.lock().unwrap().push(tokio::time::Instant::now());
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let chunk = vec![b'x'; 1024];
                match kind {
                    BigBody::Declared => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                    content-length: 104857600\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        for _ in 0..65 {
                            let _ = stream.write_all(&chunk).await;
                        }
                    }
                    BigBody::Chunked => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                    transfer-encoding: chunked\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        for _ in 0..100 {
                            let _ = stream.write_all(b"400\r\n").await;
                            let _ = stream.write_all(&chunk).await;
                            let _ = stream.write_all(b"\r\n").await;
                        }
                    }
                }
                // Hold the connection open: the body never ends.
                std::future::pending::<()>().await;
                drop(stream);
            });
        }
    });
    (addr, arrivals)
}

/// Verifies a Standard Webhooks v1 signature from the specification alone:
/// key = base64 after `whsec_`, signed content = "{id}.{timestamp}.{body}",
/// header = space-separated "v1,<base64 HMAC-SHA256>" entries.
pub fn verify_standard_webhook(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}
