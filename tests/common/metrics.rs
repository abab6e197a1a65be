//! `/metrics` readers: the value of an unlabelled integer series in Prometheus text, scraped
//! from a running binary or an in-process app.

use super::server::Server;

/// The value of the unlabelled integer series `name` in Prometheus text; panics naming it when
/// it is missing or not an integer.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("metric {name} missing from /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("metric {name} is not an integer ({e})"))
}

impl Server {
    /// `GET /metrics` of the running binary.
    pub fn metrics(&self, client: &reqwest::blocking::Client) -> String {
        client
            .get(self.url("/metrics"))
            .send()
            .and_then(reqwest::blocking::Response::text)
            .expect("metrics")
    }

    /// The unlabelled integer series `name` of `GET /metrics`.
    pub fn metric(&self, client: &reqwest::blocking::Client, name: &str) -> u64 {
        metric(&self.metrics(client), name)
    }
}
