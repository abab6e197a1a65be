//! Requests: a blocking reqwest client, JSON posts and reads with a bearer token, and raw
//! HTTP/1.1 over a `TcpStream` (for bytes a well-behaved client refuses to send) with the
//! parsing of what comes back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A blocking client with a timeout.
pub fn blocking_client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client")
}

/// A response to a blocking request, read fully.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub replayed: bool,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// `POST url` with a bearer token, an idempotency key and a JSON body (blocking).
pub fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> reqwest::Result<Reply> {
    let r = client
        .post(url)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()?;
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
    let text = r.text()?;
    Ok(Reply {
        status,
        content_type,
        retry_after,
        replayed,
        text,
    })
}

/// `GET url` with a bearer token (blocking): the status and the JSON body.
pub fn get_json(client: &reqwest::blocking::Client, url: &str, token: &str) -> (u16, Value) {
    let r = client
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (status, value)
}

/// A response as read off the socket.
#[derive(Debug, Default)]
pub struct Raw {
    /// 0 if no status line arrived.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first 400 characters of the body.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(400)
            .collect()
    }
}

/// The body of a `Transfer-Encoding: chunked` answer, de-chunked.
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        body = &body[line_end + 2..];
        if size == 0 || body.len() < size {
            break;
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
    out
}

/// Status, headers and (de-chunked) body of the bytes a server sent.
pub fn parse_response(bytes: &[u8]) -> Raw {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Raw::default();
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut raw = Raw {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    };
    if raw
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        raw.body = dechunk(&raw.body);
    }
    raw
}

/// Writes `request` (from a second thread, so a server that answers before reading a huge body
/// cannot deadlock us) and reads the answer until the server closes the connection.
pub fn exchange(port: u16, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let bytes = request.to_vec();
    let sender = std::thread::spawn(move || {
        for chunk in bytes.chunks(64 * 1024) {
            if writer.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    let _ = sender.join();
    parse_response(&received)
}

/// `GET url` with a bearer token (blocking), asserting 200: the JSON body.
pub fn get_ok(client: &reqwest::blocking::Client, url: &str, token: &str) -> Value {
    let (status, value) = get_json(client, url, token);
    assert_eq!(status, 200, "GET {url}: {value}");
    value
}
