//! Hostile input: hundreds of malformed, oversized and malicious requests, generated and
//! hand-written, across every endpoint. Each answer is a 4xx (never a 5xx, never a dropped
//! connection); every body the application writes is `application/problem+json` with a code
//! from the one error table; nothing is written; the service still answers afterwards.
//! A property test then throws random mixtures of valid and invalid fields at
//! `POST /v1/disbursements`: 201 exactly when the body is valid, otherwise a 4xx that writes
//! nothing.
//!
//! Requests go over a plain `TcpStream` so that bytes a well-behaved client refuses to send
//! (CR/LF and NUL in headers, invalid UTF-8, 100 KB headers) reach the server as written.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

use common::http::{Raw, exchange};
use common::inprocess::{TestApp, spawn_app};
use common::tokens::{ALL_SCOPES, uuid};

/// Tables a write touches: none may change on a refused request.
const WRITTEN_TABLES: [&str; 6] = [
    "events",
    "journal_entries",
    "journal_lines",
    "idempotency_keys",
    "loans",
    "loan_entries",
];

// ---------------------------------------------------------------------------------------------
// Harness: the shared in-process app, on its own multi-thread runtime so the test thread can
// use blocking sockets.

struct Harness {
    app: TestApp,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn spawn() -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let app = rt.block_on(spawn_app());
        Harness { app, rt }
    }

    fn token(&self, tenant: Uuid) -> String {
        self.app.token(tenant, ALL_SCOPES)
    }

    fn counts(&self) -> Vec<(&'static str, i64)> {
        WRITTEN_TABLES
            .iter()
            .map(|t| (*t, self.app.count(t)))
            .collect()
    }

    fn send(&self, request: &[u8]) -> Raw {
        exchange(self.app.port, request)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let handle = self.app.handle.clone();
        self.rt.block_on(handle.stop(false));
    }
}

// ---------------------------------------------------------------------------------------------
// Building requests.

/// One HTTP/1.1 request, assembled byte for byte.
#[derive(Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    chunked: bool,
}

impl Req {
    fn new(method: &str, target: &str, token: &str) -> Req {
        Req {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: vec![(
                "Authorization".into(),
                format!("Bearer {token}").into_bytes(),
            )],
            body: None,
            chunked: false,
        }
    }

    /// A POST with a fresh idempotency key and a JSON body given as raw bytes.
    fn post(target: &str, token: &str, body: impl Into<Vec<u8>>) -> Req {
        let mut req = Req::new("POST", target, token);
        req.headers.push((
            "Idempotency-Key".into(),
            format!("hostile:{}", uuid()).into_bytes(),
        ));
        req.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        req.body = Some(body.into());
        req
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces (or adds) a header with arbitrary bytes as its value.
    fn set(self, name: &str, value: impl Into<Vec<u8>>) -> Req {
        let mut req = self.without(name);
        req.headers.push((name.to_owned(), value.into()));
        req
    }

    /// Adds a raw header line (name and value verbatim, duplicates allowed).
    fn add(mut self, name: &str, value: impl Into<Vec<u8>>) -> Req {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn method(mut self, method: &str) -> Req {
        method.clone_into(&mut self.method);
        self
    }

    fn chunked(mut self) -> Req {
        self.chunked = true;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n");
        match (&self.body, self.chunked) {
            (Some(body), true) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for chunk in body.chunks(32 * 1024) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            (Some(body), false) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            (None, _) => out.extend_from_slice(b"\r\n"),
        }
        out
    }
}

/// What a case must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Is(u16),
    Any4xx,
}

struct Case {
    name: String,
    req: Req,
    expect: Expect,
}

fn case(name: impl Into<String>, req: Req, expect: Expect) -> Case {
    Case {
        name: name.into(),
        req,
        expect,
    }
}

/// A JSON object kept as (key, raw JSON text) pairs so that values serde cannot represent
/// (1e400, lone surrogates, duplicate keys) can be written.
#[derive(Clone)]
struct RawObj(Vec<(String, String)>);

impl RawObj {
    fn from(value: &Value) -> RawObj {
        RawObj(
            value
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        )
    }

    fn with(&self, key: &str, raw: &str) -> RawObj {
        let mut out = self.clone();
        match out.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => raw.clone_into(&mut slot.1),
            None => out.0.push((key.to_owned(), raw.to_owned())),
        }
        out
    }

    fn without(&self, key: &str) -> RawObj {
        RawObj(self.0.iter().filter(|(k, _)| k != key).cloned().collect())
    }

    fn text(&self) -> String {
        let members: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Uuid,
    Money,
    Currency,
    Date,
    Enum,
    Text,
    /// Free text that may be empty (`reason_description`).
    TextMayBeEmpty,
    Metadata,
    Loans,
    Bps,
}

fn q(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Malformed ids: not UUIDs, path tricks, other spellings, hidden characters.
fn bad_uuids() -> Vec<String> {
    let id = uuid().to_string();
    vec![
        q(""),
        q("not-a-uuid"),
        q("..%2F..%2Fetc%2Fpasswd"),
        q("../../../etc/passwd"),
        q("00000000-0000-0000-0000-00000000000g"),
        q(&format!("{{{id}}}")),
        q(&format!("urn:uuid:{id}")),
        q(&id.replace('-', "")),
        q(&format!("{id}\u{0}")),
        q(&format!(" {id}")),
        q(&format!("\u{202e}{id}")),
        q(&id.replacen('0', "\u{ff10}", 1)),
        q(&"a".repeat(10_000)),
        format!("\"{}\\ud800\"", &id[..35]),
    ]
}

/// Money strings that are not plain non-negative integers in range, and bare numbers.
fn bad_money_amounts() -> Vec<String> {
    vec![
        q("-1"),
        q("1e3"),
        q("1.5"),
        q("0x10"),
        q(" 1000"),
        q("1000 "),
        q("007"),
        q(""),
        q("9223372036854775808"),
        q("99999999999999999999"),
        q("\u{ff11}\u{ff12}\u{ff13}"),
        q("1_000"),
        q("1,000"),
        q("+1"),
        q("NaN"),
        q("Infinity"),
        q("10\u{0}"),
        "1000".into(),
        "9223372036854775807".into(),
        "1e400".into(),
        "-0".into(),
        "0".into(),
    ]
}

/// Currency codes that are not supported ISO 4217 codes in upper case.
fn bad_currencies() -> Vec<String> {
    vec![
        q("ZZZ"),
        q("XAU"),
        q("XTS"),
        q("usd"),
        q("US"),
        q("USDD"),
        q(""),
        q("ÜSD"),
        q("U\u{0}D"),
        q("US D"),
        q("€"),
        q("Usd"),
        "840".into(),
    ]
}

/// Dates that are not valid `YYYY-MM-DD` strings.
fn bad_dates() -> Vec<String> {
    vec![
        q("2026-02-30"),
        q("2026-13-01"),
        q("26-11-01"),
        q("2026-11-01T00:00:00Z"),
        q(""),
        q("\u{ff12}026-11-01"),
        q("2026-11-1"),
        q("9999-99-99"),
        q("2026-11-01\n"),
        q("2026/11/01"),
        q("+2026-11-01"),
        "20261101".into(),
    ]
}

/// Enum values outside the allowed set, in other cases or with hidden characters.
fn bad_enum_values() -> Vec<String> {
    vec![
        q("ACH"),
        q(""),
        q("bitcoin"),
        q("ach\u{0}"),
        q("ach "),
        q("\u{430}ch"),
        q("' OR 1=1 --"),
    ]
}

/// Free text that is too long or carries control characters (and, where required, empty).
fn bad_texts(kind: FieldKind) -> Vec<String> {
    let mut out = vec![
        q(&"x".repeat(if kind == FieldKind::Text { 256 } else { 501 })),
        q("a\u{0}b"),
        q("a\r\nb"),
        q("\u{7}"),
        q("tab\there"),
        q("\u{1b}[31mred"),
    ];
    if kind == FieldKind::Text {
        out.push(q(""));
    }
    out
}

/// Metadata that is not an object of well-formed, small, unique keys.
fn bad_metadata() -> Vec<String> {
    vec![
        q("string"),
        r#"{"1bad":1}"#.into(),
        r#"{"":1}"#.into(),
        r#"{"a-b":1}"#.into(),
        r#"{"ключ":1}"#.into(),
        r#"{"a b":1}"#.into(),
        r#"{"_x":1}"#.into(),
        format!(r#"{{"big":{}}}"#, q(&"b".repeat(3000))),
        r#"{"dup":1,"dup":2}"#.into(),
    ]
}

/// Loan lists with malformed items, or one item too many.
fn bad_loan_lists() -> Vec<String> {
    vec![
        q("x"),
        "[1]".into(),
        "[null]".into(),
        "[[]]".into(),
        r#"[{"loan_id":"x"}]"#.into(),
        format!(
            "[{}]",
            vec![
                format!(
                    r#"{{"loan_id":"{}","outstanding_principal_minor":"1","interest_minor":"1"}}"#,
                    uuid()
                );
                10_001
            ]
            .join(",")
        ),
    ]
}

/// Basis points out of range or not a plain integer.
fn bad_bps() -> Vec<String> {
    vec![
        "-1".into(),
        "100001".into(),
        q("5"),
        "1.5".into(),
        "1e3".into(),
        "18446744073709551616".into(),
        "true".into(),
    ]
}

/// Bad values (raw JSON text) for a field kind, each with the status it must get.
fn bad_values(kind: FieldKind, required: bool) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = Vec::new();
    let mut add = |values: &[String]| out.extend(values.iter().map(|v| (v.clone(), 400)));
    if kind != FieldKind::Bps {
        // Wrong JSON types (an empty object is a valid `metadata`).
        add(&["123", "true", "[]", "1.5", "-1", "1e3"].map(str::to_owned));
        if kind != FieldKind::Metadata {
            add(&["{}".to_owned()]);
        }
    }
    if required {
        add(&["null".to_owned()]);
    }
    match kind {
        FieldKind::Uuid => add(&bad_uuids()),
        FieldKind::Money => {
            add(&bad_money_amounts());
            out.push((q("0"), 422));
        }
        FieldKind::Currency => add(&bad_currencies()),
        FieldKind::Date => add(&bad_dates()),
        FieldKind::Enum => add(&bad_enum_values()),
        FieldKind::Text | FieldKind::TextMayBeEmpty => add(&bad_texts(kind)),
        FieldKind::Metadata => add(&bad_metadata()),
        FieldKind::Loans => add(&bad_loan_lists()),
        FieldKind::Bps => add(&bad_bps()),
    }
    out
}

/// The five write routes: path, a valid body, and the kind of each field.
struct WriteRoute {
    path: &'static str,
    valid: Value,
    fields: Vec<(&'static str, FieldKind, bool)>,
}

fn write_routes(loan: Uuid, borrower: Uuid, entry: &str, principal: &str) -> Vec<WriteRoute> {
    use FieldKind as K;
    vec![
        WriteRoute {
            path: "/v1/disbursements",
            valid: json!({
                "loan_id": uuid(), "borrower_id": uuid(), "amount_minor": "1000",
                "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
                "destination_ref": "acct-1", "metadata": { "channel": "api" },
            }),
            fields: vec![
                ("loan_id", K::Uuid, true),
                ("borrower_id", K::Uuid, true),
                ("amount_minor", K::Money, true),
                ("currency", K::Currency, true),
                ("effective_at", K::Date, true),
                ("method", K::Enum, true),
                ("destination_ref", K::Text, false),
                ("metadata", K::Metadata, false),
            ],
        },
        WriteRoute {
            path: "/v1/payments",
            valid: json!({
                "loan_id": loan, "borrower_id": borrower, "amount_minor": "100",
                "currency": "USD", "effective_at": "2026-11-05", "source_method": "ach",
                "external_ref": format!("ext-{}", uuid()), "metadata": { "channel": "api" },
            }),
            fields: vec![
                ("loan_id", K::Uuid, true),
                ("borrower_id", K::Uuid, true),
                ("amount_minor", K::Money, true),
                ("currency", K::Currency, true),
                ("effective_at", K::Date, true),
                ("source_method", K::Enum, true),
                ("external_ref", K::Text, false),
                ("metadata", K::Metadata, false),
            ],
        },
        WriteRoute {
            path: "/v1/fees",
            valid: json!({
                "loan_id": loan, "fee_type": "late", "amount_minor": "100",
                "currency": "USD", "effective_at": "2026-11-05", "metadata": { "channel": "api" },
            }),
            fields: vec![
                ("loan_id", K::Uuid, true),
                ("fee_type", K::Enum, true),
                ("amount_minor", K::Money, true),
                ("currency", K::Currency, true),
                ("effective_at", K::Date, true),
                ("metadata", K::Metadata, false),
            ],
        },
        WriteRoute {
            path: "/v1/accruals/batch",
            valid: json!({
                "program_id": uuid(), "accrual_date": "2026-11-05",
                "day_count_convention": "ACT_365",
                "loans": [{
                    "loan_id": loan, "outstanding_principal_minor": principal,
                    "interest_minor": "5",
                }],
            }),
            fields: vec![
                ("program_id", K::Uuid, true),
                ("accrual_date", K::Date, true),
                ("day_count_convention", K::Enum, true),
                ("loans", K::Loans, true),
            ],
        },
        WriteRoute {
            path: "/v1/reversals",
            valid: json!({
                "reverses_entry_id": entry, "reason_code": "other",
                "reason_description": "hostile corpus", "effective_at": "2026-11-05",
                "metadata": { "channel": "api" },
            }),
            fields: vec![
                ("reverses_entry_id", K::Uuid, true),
                ("reason_code", K::Enum, true),
                ("reason_description", K::TextMayBeEmpty, false),
                ("effective_at", K::Date, false),
                ("metadata", K::Metadata, false),
            ],
        },
    ]
}

/// Field-by-field bad values, missing required fields and unknown fields, per write route.
fn field_cases(route: &WriteRoute, token: &str) -> Vec<Case> {
    let base = RawObj::from(&route.valid);
    let mut cases = Vec::new();
    for &(field, kind, required) in &route.fields {
        for (raw, status) in bad_values(kind, required) {
            let body = base.with(field, &raw).text();
            let shown: String = raw.chars().take(40).collect();
            cases.push(case(
                format!("POST {} {field}={shown}", route.path),
                Req::post(route.path, token, body),
                Expect::Is(status),
            ));
        }
        if required {
            cases.push(case(
                format!("POST {} without {field}", route.path),
                Req::post(route.path, token, base.without(field).text()),
                Expect::Is(400),
            ));
        }
    }
    if route.path == "/v1/accruals/batch" {
        let item = RawObj::from(&route.valid["loans"][0]);
        let item_fields = [
            ("loan_id", FieldKind::Uuid, true),
            ("outstanding_principal_minor", FieldKind::Money, true),
            ("interest_minor", FieldKind::Money, true),
            ("annual_rate_bps", FieldKind::Bps, false),
        ];
        for (field, kind, required) in item_fields {
            for (raw, status) in bad_values(kind, required) {
                let loans = format!("[{}]", item.with(field, &raw).text());
                let shown: String = raw.chars().take(40).collect();
                cases.push(case(
                    format!("POST accruals loans[0].{field}={shown}"),
                    Req::post(route.path, token, base.with("loans", &loans).text()),
                    Expect::Is(status),
                ));
            }
        }
        let extra = format!("[{}]", item.with("hacker", "1").text());
        cases.push(case(
            "POST accruals loans[0] with an unknown field",
            Req::post(route.path, token, base.with("loans", &extra).text()),
            Expect::Is(400),
        ));
        let twice = format!("[{0},{0}]", item.text());
        cases.push(case(
            "POST accruals with one loan twice",
            Req::post(route.path, token, base.with("loans", &twice).text()),
            Expect::Is(400),
        ));
    }
    for (extra, raw) in [
        ("unknown_field", "1"),
        ("__proto__", r#"{"admin":true}"#),
        ("tenant_id", &format!("\"{}\"", uuid())),
        ("journal_entry_id", &format!("\"{}\"", uuid())),
        ("posted_at", "\"2020-01-01T00:00:00Z\""),
    ] {
        cases.push(case(
            format!("POST {} with extra field {extra}", route.path),
            Req::post(route.path, token, base.with(extra, raw).text()),
            Expect::Is(400),
        ));
    }
    cases
}

/// Bodies that are not one well-formed JSON object in UTF-8.
fn malformed_json_body_cases(route: &WriteRoute, token: &str, valid: &str) -> Vec<Case> {
    let path = route.path;
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    let mut duplicate = valid.to_owned();
    duplicate.insert_str(1, &format!("\"{}\":\"{}\",", route.fields[0].0, uuid()));
    let mut invalid_utf8 = valid.to_owned().into_bytes();
    invalid_utf8.splice(2..2, [0xff, 0xfe]);
    let mut overlong = valid.to_owned().into_bytes();
    overlong.splice(2..2, [0xc0, 0xaf]);
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(valid.as_bytes());
    let mut nul = valid.to_owned().into_bytes();
    nul.insert(1, 0);
    vec![
        case("empty body", post(b""), Expect::Is(400)),
        case("whitespace body", post(b"   \n"), Expect::Is(400)),
        case("body null", post(b"null"), Expect::Is(400)),
        case("body array", post(b"[]"), Expect::Is(400)),
        case(
            "body array of the object",
            post(format!("[{valid}]").as_bytes()),
            Expect::Is(400),
        ),
        case("body string", post(b"\"hello\""), Expect::Is(400)),
        case("body number", post(b"42"), Expect::Is(400)),
        case("body true", post(b"true"), Expect::Is(400)),
        case("body empty object", post(b"{}"), Expect::Is(400)),
        case(
            "duplicate JSON keys",
            post(duplicate.as_bytes()),
            Expect::Is(400),
        ),
        case(
            "trailing garbage",
            post(format!("{valid} x").as_bytes()),
            Expect::Is(400),
        ),
        case(
            "two JSON documents",
            post(format!("{valid}{valid}").as_bytes()),
            Expect::Is(400),
        ),
        case(
            "truncated JSON",
            post(&valid.as_bytes()[..valid.len() / 2]),
            Expect::Is(400),
        ),
        case(
            "trailing comma",
            post(valid.replacen('}', ",}", 1).as_bytes()),
            Expect::Is(400),
        ),
        case(
            "single quotes",
            post(valid.replace('"', "'").as_bytes()),
            Expect::Is(400),
        ),
        case(
            "JSON with a comment",
            post(format!("/* c */{valid}").as_bytes()),
            Expect::Is(400),
        ),
        case("byte order mark", post(&bom), Expect::Is(400)),
        case("invalid UTF-8", post(&invalid_utf8), Expect::Is(400)),
        case("overlong UTF-8", post(&overlong), Expect::Is(400)),
        case("raw NUL byte", post(&nul), Expect::Is(400)),
        case(
            "not JSON at all",
            post(b"loan_id=1&amount=2"),
            Expect::Is(400),
        ),
    ]
}

/// Bodies nested too deep, or larger than the limit (sent, chunked or only announced).
fn deeply_nested_or_oversized_body_cases(path: &str, token: &str, valid: &str) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    let ten_mb = {
        let mut b = b"{\"pad\":\"".to_vec();
        b.resize(10 * 1024 * 1024, b'x');
        b.extend_from_slice(b"\"}");
        b
    };
    let deep_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let deep_metadata = valid.replacen(
        '{',
        &format!(
            "{{\"metadata\":{}1{},",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        ),
        1,
    );
    vec![
        case(
            "arrays nested 10,000 deep",
            post(deep_arrays.as_bytes()),
            Expect::Is(400),
        ),
        case(
            "objects nested 10,000 deep",
            post(deep_objects.as_bytes()),
            Expect::Is(400),
        ),
        case(
            "metadata nested 5,000 deep",
            post(deep_metadata.as_bytes()),
            Expect::Is(400),
        ),
        case("10 MB body", post(&ten_mb), Expect::Is(413)),
        case(
            "10 MB chunked body",
            post(&ten_mb).chunked(),
            Expect::Is(413),
        ),
        case(
            "Content-Length far above the limit, body never sent",
            Req {
                body: None,
                ..Req::post(path, token, Vec::new())
            }
            .set("Content-Length", b"1073741824".to_vec()),
            Expect::Is(413),
        ),
    ]
}

/// A valid body under a missing or wrong Content-Type.
fn wrong_media_type_cases(path: &str, token: &str, valid: &str) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    vec![
        case(
            "no Content-Type",
            post(valid.as_bytes()).without("Content-Type"),
            Expect::Is(415),
        ),
        case(
            "Content-Type text/plain",
            post(valid.as_bytes()).set("Content-Type", b"text/plain".to_vec()),
            Expect::Is(415),
        ),
        case(
            "Content-Type form",
            post(valid.as_bytes()).set(
                "Content-Type",
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            Expect::Is(415),
        ),
        case(
            "Content-Type multipart",
            post(valid.as_bytes()).set("Content-Type", b"multipart/form-data; boundary=x".to_vec()),
            Expect::Is(415),
        ),
        case(
            "Content-Type application/jsonx",
            post(valid.as_bytes()).set("Content-Type", b"application/jsonx".to_vec()),
            Expect::Is(415),
        ),
        case(
            "Content-Type empty",
            post(valid.as_bytes()).set("Content-Type", b"".to_vec()),
            Expect::Is(415),
        ),
    ]
}

/// Missing keys and credentials, bad bearer tokens, and oversized headers.
fn missing_or_bad_credential_and_oversized_header_cases(
    path: &str,
    token: &str,
    valid: &str,
) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    vec![
        case(
            "no Idempotency-Key",
            post(valid.as_bytes()).without("Idempotency-Key"),
            Expect::Is(400),
        ),
        case(
            "no Authorization",
            post(valid.as_bytes()).without("Authorization"),
            Expect::Is(401),
        ),
        case(
            "garbage bearer token",
            post(valid.as_bytes()).set("Authorization", b"Bearer x.y.z".to_vec()),
            Expect::Is(401),
        ),
        case(
            "basic credentials",
            post(valid.as_bytes()).set("Authorization", b"Basic YWRtaW46YWRtaW4=".to_vec()),
            Expect::Is(401),
        ),
        case(
            "SQL in the bearer token",
            post(valid.as_bytes()).set("Authorization", b"Bearer ' OR '1'='1".to_vec()),
            Expect::Is(401),
        ),
        case(
            "100 KB bearer token",
            post(valid.as_bytes()).set(
                "Authorization",
                format!("Bearer {}", "a".repeat(100_000)).into_bytes(),
            ),
            Expect::Any4xx,
        ),
        case(
            "100 KB Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", "k".repeat(100_000).into_bytes()),
            Expect::Any4xx,
        ),
        case(
            "200 KB of headers",
            (0..100).fold(post(valid.as_bytes()), |r, i| {
                r.add(&format!("X-Pad-{i}"), "p".repeat(2_000).into_bytes())
            }),
            Expect::Any4xx,
        ),
    ]
}

/// Header injection and smuggling, duplicated headers, content encodings and odd key bytes.
fn header_injection_duplicate_and_encoding_cases(
    path: &str,
    token: &str,
    valid: &str,
) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    vec![
        case(
            "CR LF injection in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"bad\r\nSet-Cookie: evil=1".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "bare LF injection in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"bad\nSet-Cookie: evil=1".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "bare CR in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"hostile:\rSet-Cookie: evil=1".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "NUL in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"hostile:12345\x00678".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "CR LF smuggling a Transfer-Encoding through Idempotency-Key",
            post(valid.as_bytes()).set(
                "Idempotency-Key",
                format!("hostile:{}\r\nTransfer-Encoding: chunked", uuid()).into_bytes(),
            ),
            Expect::Any4xx,
        ),
        case(
            "Content-Length and Transfer-Encoding together",
            post(valid.as_bytes()).add("Transfer-Encoding", b"chunked".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "two Authorization headers",
            post(valid.as_bytes()).add("Authorization", format!("Bearer {token}").into_bytes()),
            Expect::Is(400),
        ),
        case(
            "two Idempotency-Key headers",
            post(valid.as_bytes()).add("Idempotency-Key", b"hostile:second-key".to_vec()),
            Expect::Is(400),
        ),
        case(
            "two Content-Type headers",
            post(valid.as_bytes()).add("Content-Type", b"application/json".to_vec()),
            Expect::Is(400),
        ),
        case(
            "Content-Encoding gzip on a plain body",
            post(valid.as_bytes()).set("Content-Encoding", b"gzip".to_vec()),
            Expect::Is(415),
        ),
        case(
            "Content-Encoding br on a plain body",
            post(valid.as_bytes()).set("Content-Encoding", b"br".to_vec()),
            Expect::Is(415),
        ),
        case(
            "two different Content-Lengths",
            post(valid.as_bytes()).add("Content-Length", b"3".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "obs-fold continuation line in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"hostile:\r\n folded-key".to_vec()),
            Expect::Any4xx,
        ),
        case(
            "non-ASCII bytes in Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", b"hostile:\xff\xfe\xfd\xfc".to_vec()),
            Expect::Is(400),
        ),
        case(
            "UTF-8 Idempotency-Key",
            post(valid.as_bytes()).set("Idempotency-Key", "hostile:ключ-ключ".as_bytes().to_vec()),
            Expect::Is(400),
        ),
        case(
            "NUL in the request target",
            Req::post(&format!("{path}\0"), token, valid.as_bytes().to_vec()),
            Expect::Any4xx,
        ),
    ]
}

/// Idempotency keys of the wrong shape.
fn malformed_idempotency_key_cases(path: &str, token: &str, valid: &str) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    let mut cases = Vec::new();
    for bad_key in [
        "short".to_owned(),
        "has space 123".to_owned(),
        "-starts-with-dash".to_owned(),
        "k".repeat(256),
        "semi;colon;key".to_owned(),
        "slash/../../etc/passwd".to_owned(),
        "quote\"key\"key".to_owned(),
        String::new(),
    ] {
        cases.push(case(
            format!(
                "Idempotency-Key {:?}",
                bad_key.chars().take(30).collect::<String>()
            ),
            post(valid.as_bytes()).set("Idempotency-Key", bad_key.into_bytes()),
            Expect::Is(400),
        ));
    }
    cases
}

/// Methods other than POST on a write route.
fn wrong_method_cases(path: &str, token: &str, valid: &str) -> Vec<Case> {
    let post = |body: &[u8]| Req::post(path, token, body.to_vec());
    let mut cases = Vec::new();
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
        cases.push(case(
            format!("{method} {path}"),
            post(valid.as_bytes()).method(method),
            Expect::Is(405),
        ));
    }
    cases.push(case(
        format!("FOO {path}"),
        post(valid.as_bytes()).method("FOO"),
        Expect::Any4xx,
    ));
    cases
}

/// Whole-request attacks on a write route: wrong body shapes and encodings, sizes, media types,
/// idempotency keys, credentials and methods.
fn request_cases(route: &WriteRoute, token: &str) -> Vec<Case> {
    let path = route.path;
    let valid = RawObj::from(&route.valid).text();
    let mut cases = malformed_json_body_cases(route, token, &valid);
    cases.extend(deeply_nested_or_oversized_body_cases(path, token, &valid));
    cases.extend(wrong_media_type_cases(path, token, &valid));
    cases.extend(missing_or_bad_credential_and_oversized_header_cases(
        path, token, &valid,
    ));
    cases.extend(header_injection_duplicate_and_encoding_cases(
        path, token, &valid,
    ));
    cases.extend(malformed_idempotency_key_cases(path, token, &valid));
    cases.extend(wrong_method_cases(path, token, &valid));
    for case in &mut cases {
        case.name = format!("POST {path}: {}", case.name);
    }
    cases
}

/// Reads whose path id is not a UUID: traversal, injection, encodings, length.
fn malformed_id_read_cases(token: &str, loan: Uuid) -> Vec<Case> {
    let get = |target: &str| Req::new("GET", target, token);
    let mut cases = Vec::new();
    let bad_ids = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%00",
        "%ff%fe",
        "not-a-uuid",
        "..",
        "%2e%2e",
        "%20",
        "1%20OR%201%3D1",
        "%27%20OR%20%271%27%3D%271",
        "%7B%7D",
        "00000000-0000-0000-0000-00000000000g",
    ];
    let long_id = "a".repeat(10_000);
    let null_suffixed = format!("{loan}%00");
    let ids: Vec<&str> = bad_ids
        .iter()
        .copied()
        .chain([long_id.as_str(), null_suffixed.as_str()])
        .collect();
    for id in &ids {
        for template in [
            "/v1/loans/{}/balance",
            "/v1/loans/{}/journal-entries",
            "/v1/journal-entries/{}",
        ] {
            let target = template.replace("{}", id);
            let shown: String = target.chars().take(70).collect();
            cases.push(case(format!("GET {shown}"), get(&target), Expect::Is(400)));
        }
    }
    cases
}

/// Reads of well-formed ids that name nothing (or the wrong kind of thing).
fn unknown_id_read_cases(token: &str, loan: Uuid) -> Vec<Case> {
    let get = |target: &str| Req::new("GET", target, token);
    let mut cases = Vec::new();
    let unknown = uuid();
    for target in [
        format!("/v1/loans/{unknown}/balance"),
        format!("/v1/loans/{unknown}/journal-entries"),
        format!("/v1/journal-entries/{unknown}"),
        format!("/v1/journal-entries/{loan}"),
        "/v1/accounts/9999/balance?currency=USD".to_owned(),
    ] {
        cases.push(case(format!("GET {target}"), get(&target), Expect::Is(404)));
    }
    cases
}

/// Reads of paths outside the API: traversal, collections, other versions.
fn hostile_path_read_cases(token: &str) -> Vec<Case> {
    let get = |target: &str| Req::new("GET", target, token);
    let mut cases = Vec::new();
    for target in [
        "/../../etc/passwd",
        "/v1/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/v1/loans/../../etc/passwd/balance",
        "/v1/loans",
        "/v1/accounts",
        "/v2/disbursements",
        "/v1/disbursements/x",
        "/v1/journal-entries",
        "/V1/reconciliation/status",
        "/.env",
        "/v1/health/../../etc/passwd",
    ] {
        cases.push(case(format!("GET {target}"), get(target), Expect::Any4xx));
    }
    cases
}

/// Reads with bad query strings or account codes.
fn bad_query_read_cases(token: &str, loan: Uuid, entry: &str) -> Vec<Case> {
    let get = |target: &str| Req::new("GET", target, token);
    let mut cases = Vec::new();
    let loan_q = |q: &str| format!("/v1/loans/{loan}/journal-entries?{q}");
    let queries = [
        loan_q("page_size=0"),
        loan_q("page_size=501"),
        loan_q("page_size=-1"),
        loan_q("page_size=1e2"),
        loan_q("page_size=abc"),
        loan_q("page_size="),
        loan_q("page_size=99999999999999999999"),
        loan_q("page_size=+5"),
        loan_q("page_size=5&page_size=6"),
        loan_q("page_token=garbage"),
        loan_q("page_token="),
        loan_q("page_token=..%2F..%2Fetc%2Fpasswd"),
        loan_q(&format!("page_token={}", "A".repeat(5_000))),
        loan_q("from_date=2026-02-30"),
        loan_q("to_date=yesterday"),
        loan_q("event_type=DROP%20TABLE"),
        loan_q("event_type=disbursement%00"),
        loan_q("unknown=1"),
        loan_q("%zz=1"),
        format!("/v1/loans/{loan}/balance?as_of_date=2026-13-01"),
        format!("/v1/loans/{loan}/balance?as_of_date=%00"),
        format!("/v1/loans/{loan}/balance?as_of=2026-11-01"),
        format!("/v1/loans/{loan}/balance?as_of_date=2026-11-01&as_of_date=2026-11-02"),
        format!("/v1/journal-entries/{entry}?x=1"),
        "/v1/accounts/1000/balance".to_owned(),
        "/v1/accounts/1000/balance?currency=usd".to_owned(),
        "/v1/accounts/1000/balance?currency=USD&layer=settled".to_owned(),
        "/v1/accounts/1000/balance?currency=USD&layer=%00".to_owned(),
        "/v1/accounts/1000/balance?currency=USD&as_of_date=20261101".to_owned(),
        "/v1/accounts/1000/balance?currency=USD&currency=EUR".to_owned(),
        "/v1/accounts/1000/balance?currency=USD&admin=true".to_owned(),
        "/v1/accounts/..%2F..%2Fetc/balance?currency=USD".to_owned(),
        "/v1/accounts/10000/balance?currency=USD".to_owned(),
        "/v1/accounts/abcd/balance?currency=USD".to_owned(),
        "/v1/accounts/1e10/balance?currency=USD".to_owned(),
        "/v1/accounts/%00/balance?currency=USD".to_owned(),
        "/v1/accounts/%EF%BC%91000/balance?currency=USD".to_owned(),
        "/v1/reconciliation/status?as_of_date=tomorrow".to_owned(),
        "/v1/reconciliation/status?tenant_id=00000000-0000-0000-0000-000000000000".to_owned(),
    ];
    for target in queries {
        let shown: String = target.chars().take(90).collect();
        cases.push(case(format!("GET {shown}"), get(&target), Expect::Is(400)));
    }
    cases
}

/// Read routes under a write method, or without a token.
fn wrong_method_and_missing_token_read_cases(token: &str, loan: Uuid, entry: &str) -> Vec<Case> {
    let get = |target: &str| Req::new("GET", target, token);
    let mut cases = Vec::new();
    for target in [
        format!("/v1/loans/{loan}/balance"),
        format!("/v1/loans/{loan}/journal-entries"),
        format!("/v1/journal-entries/{entry}"),
        "/v1/accounts/1000/balance?currency=USD".to_owned(),
        "/v1/reconciliation/status".to_owned(),
        "/v1/health/live".to_owned(),
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            cases.push(case(
                format!("{method} {target}"),
                Req::post(&target, token, b"{}".to_vec()).method(method),
                Expect::Is(405),
            ));
        }
        // The health route answers without a token by design.
        if !target.contains("/health/") {
            cases.push(case(
                format!("GET {target} without a token"),
                get(&target).without("Authorization"),
                Expect::Is(401),
            ));
        }
    }
    cases
}

/// Hostile reads: ids, query strings, account codes and methods.
fn read_cases(token: &str, loan: Uuid, entry: &str) -> Vec<Case> {
    let mut cases = malformed_id_read_cases(token, loan);
    cases.extend(unknown_id_read_cases(token, loan));
    cases.extend(hostile_path_read_cases(token));
    cases.extend(bad_query_read_cases(token, loan, entry));
    cases.extend(wrong_method_and_missing_token_read_cases(
        token, loan, entry,
    ));
    cases
}

/// Error codes the one error table may answer with, per status (SPEC §10, plus 405).
fn codes_for(status: u16) -> &'static [&'static str] {
    match status {
        400 => &[
            "validation_failed",
            "malformed_json",
            "idempotency_key_missing",
            "idempotency_key_invalid",
            "duplicate_header",
            "invalid_page_token",
        ],
        401 => &["unauthenticated"],
        403 => &["insufficient_scope"],
        404 => &["not_found"],
        405 => &["method_not_allowed"],
        409 => &[
            "idempotency_in_progress",
            "already_reversed",
            "duplicate_external_ref",
        ],
        413 => &["payload_too_large"],
        415 => &["unsupported_media_type"],
        422 => &[
            "idempotency_mismatch",
            "borrower_mismatch",
            "currency_mismatch",
            "loan_not_found",
            "amount_must_be_positive",
            "principal_mismatch",
            "interest_mismatch",
            "already_accrued",
            "mixed_currency_batch",
            "cannot_reverse_reversal",
            "reversal_blocked_by_later_activity",
        ],
        429 => &["rate_limited"],
        _ => &[],
    }
}

/// Why an answer is not acceptable for a hostile request, if it is not.
fn judge(c: &Case, raw: &Raw) -> Option<String> {
    if !(400..500).contains(&raw.status) {
        return Some(format!("status {} (want 4xx): {}", raw.status, raw.text()));
    }
    if let Expect::Is(want) = c.expect
        && raw.status != want
    {
        return Some(format!(
            "status {} (want {want}): {}",
            raw.status,
            raw.text()
        ));
    }
    if raw
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("set-cookie") || n.eq_ignore_ascii_case("x-injected"))
    {
        return Some(format!("an injected header came back: {:?}", raw.headers));
    }
    if raw.body.is_empty() {
        return None;
    }
    if raw.header("content-type") != Some("application/problem+json") {
        return Some(format!(
            "body with Content-Type {:?}, not application/problem+json: {}",
            raw.header("content-type"),
            raw.text()
        ));
    }
    let Ok(problem) = serde_json::from_slice::<Value>(&raw.body) else {
        return Some(format!("problem body is not JSON: {}", raw.text()));
    };
    if problem["status"] != raw.status {
        return Some(format!(
            "problem status differs from HTTP status: {problem}"
        ));
    }
    let code = problem["code"].as_str().unwrap_or_default();
    // 431 has no row in SPEC §10; any stable code is acceptable there.
    if raw.status != 431 && !codes_for(raw.status).contains(&code) {
        return Some(format!(
            "code {code:?} is not a {} code: {problem}",
            raw.status
        ));
    }
    for field in ["type", "title", "detail"] {
        if problem[field].as_str().is_none_or(str::is_empty) {
            return Some(format!("problem without {field}: {problem}"));
        }
    }
    None
}

/// POSTs JSON and returns status and parsed body (set-up only).
fn post_json(h: &Harness, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let raw = h.send(&Req::post(path, token, body.to_string()).bytes());
    let value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    (raw.status, value)
}

fn get_json(h: &Harness, token: &str, path: &str) -> (u16, Value) {
    let raw = h.send(&Req::new("GET", path, token).bytes());
    let value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    (raw.status, value)
}

/// A loan with a disbursement; returns (loan, borrower, disbursement entry id).
fn open_loan(h: &Harness, token: &str) -> (Uuid, Uuid, String) {
    let (loan, borrower) = (uuid(), uuid());
    let (status, receipt) = post_json(
        h,
        token,
        "/v1/disbursements",
        &json!({
            "loan_id": loan, "borrower_id": borrower, "amount_minor": "100000",
            "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
        }),
    );
    assert_eq!(status, 201, "{receipt}");
    let entry = receipt["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    (loan, borrower, entry)
}

#[test]
fn the_corpus_base_bodies_are_valid_so_each_mutation_is_what_gets_refused() {
    let h = Harness::spawn();
    let token = h.token(uuid());
    for i in 0..write_routes(uuid(), uuid(), "", "").len() {
        // A fresh loan per route: nothing posted earlier changes what is valid.
        let (loan, borrower, entry) = open_loan(&h, &token);
        let route = write_routes(loan, borrower, &entry, "100000").swap_remove(i);
        let (status, body) = post_json(&h, &token, route.path, &route.valid);
        assert_eq!(status, 201, "{}: {body}", route.path);
    }
}

#[test]
fn hundreds_of_hostile_requests_get_4xx_problems_and_write_nothing() {
    let h = Harness::spawn();
    let tenant = uuid();
    let token = h.token(tenant);
    let (loan, borrower, entry) = open_loan(&h, &token);
    let routes = write_routes(loan, borrower, &entry, "100000");
    let mut cases: Vec<Case> = Vec::new();
    for route in &routes {
        cases.extend(field_cases(route, &token));
        cases.extend(request_cases(route, &token));
    }
    cases.extend(read_cases(&token, loan, &entry));
    assert!(
        cases.len() >= 300,
        "the corpus has {} requests",
        cases.len()
    );
    let before = h.counts();
    let mut failures = Vec::new();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for c in &cases {
        let raw = h.send(&c.req.bytes());
        *by_status.entry(raw.status).or_default() += 1;
        if matches!(c.expect, Expect::Any4xx) {
            eprintln!("  {} -> {}", c.name, raw.status);
        }
        if let Some(why) = judge(c, &raw) {
            failures.push(format!("{}: {why}", c.name));
        }
    }
    eprintln!(
        "{} hostile requests, answers by status: {by_status:?}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests were answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(h.counts(), before, "hostile requests wrote nothing");
    let live = h.send(
        &Req::new("GET", "/v1/health/live", "")
            .without("Authorization")
            .bytes(),
    );
    assert_eq!(live.status, 200, "still alive: {}", live.text());
    let (status, balance) = get_json(&h, &token, &format!("/v1/loans/{loan}/balance"));
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["principal_outstanding_minor"], "100000");
}

#[test]
fn a_100_kb_header_value_is_refused_with_431_and_writes_nothing() {
    let h = Harness::spawn();
    let token = h.token(uuid());
    let before = h.counts();
    let body = json!({
        "loan_id": uuid(), "borrower_id": uuid(), "amount_minor": "1000",
        "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
    })
    .to_string();
    let padded = |name: &str| {
        Req::post("/v1/disbursements", &token, body.clone())
            .set(name, "p".repeat(100_000).into_bytes())
    };
    let mut failures = Vec::new();
    for (name, want) in [
        ("Authorization", Expect::Any4xx),
        ("Idempotency-Key", Expect::Any4xx),
        ("X-Padding", Expect::Is(431)),
        ("User-Agent", Expect::Is(431)),
        ("Traceparent", Expect::Is(431)),
    ] {
        let c = case(format!("100 KB {name}"), padded(name), want);
        let raw = h.send(&c.req.bytes());
        if let Some(why) = judge(&c, &raw) {
            failures.push(format!("{}: {why}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(h.counts(), before, "nothing written");
}

// ---------------------------------------------------------------------------------------------
// Property: random mixtures of valid and invalid fields for POST /v1/disbursements.

/// One field of a generated body: its raw JSON (None = omitted) and whether it is valid there.
#[derive(Debug, Clone)]
struct Field {
    raw: Option<String>,
    valid: bool,
}

fn valid(raw: String) -> Field {
    Field {
        raw: Some(raw),
        valid: true,
    }
}

fn invalid(raw: String) -> Field {
    Field {
        raw: Some(raw),
        valid: false,
    }
}

const OMITTED_OK: Field = Field {
    raw: None,
    valid: true,
};
const OMITTED_BAD: Field = Field {
    raw: None,
    valid: false,
};

/// Placeholder replaced by a fresh id per request, so valid bodies never collide on a loan.
const FRESH_ID: &str = "\"<fresh-id>\"";
const FRESH_ID_UPPER: &str = "\"<FRESH-ID>\"";

fn id_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        6 => Just(valid(FRESH_ID.into())),
        2 => Just(valid(FRESH_ID_UPPER.into())),
        1 => Just(OMITTED_BAD),
        1 => prop_oneof![
            Just("null".to_owned()),
            Just("\"\"".to_owned()),
            Just("42".to_owned()),
            "\"[0-9a-g-]{0,40}\"",
            Just(format!("\"{{{}}}\"", Uuid::nil())),
        ]
        .prop_filter("not a UUID", |s| {
            s.trim_matches('"').len() != 36 || s.contains('g') || !s.contains('-')
        })
        .prop_map(invalid),
    ]
}

fn amount_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        6 => (1i64..=i64::MAX).prop_map(|n| valid(format!("\"{n}\""))),
        1 => Just(OMITTED_BAD),
        1 => prop_oneof![
            Just("\"0\"".to_owned()),
            Just("\"9223372036854775808\"".to_owned()),
            Just("\"99999999999999999999\"".to_owned()),
            (1i64..1_000_000).prop_map(|n| n.to_string()),
            (1i64..1_000_000).prop_map(|n| format!("\"-{n}\"")),
            (1i64..1_000_000).prop_map(|n| format!("\"0{n}\"")),
            (1i64..1_000_000).prop_map(|n| format!("\"{n}.5\"")),
            (1i64..1_000).prop_map(|n| format!("\"{n}e3\"")),
            Just("1e400".to_owned()),
            Just("null".to_owned()),
        ]
        .prop_map(invalid),
    ]
}

fn currency_field() -> impl Strategy<Value = Field> {
    // Three capitals are not enough: the code must be an active ISO 4217 currency (SPEC §2).
    let active = [
        "USD", "EUR", "GBP", "JPY", "BHD", "KWD", "CLF", "XOF", "CHF", "ISK",
    ];
    let unknown = [
        "ZZZ", "ABC", "XAU", "XAG", "XTS", "XXX", "XDR", "BGN", "HRK",
    ];
    prop_oneof![
        6 => proptest::sample::select(active.to_vec()).prop_map(|c| valid(format!("\"{c}\""))),
        1 => Just(OMITTED_BAD),
        1 => prop_oneof!["[a-z]{3}", "[A-Z]{1,2}", "[A-Z]{4,6}", Just("U\\u0000D".to_owned())]
            .prop_map(|c| invalid(format!("\"{c}\""))),
        1 => proptest::sample::select(unknown.to_vec()).prop_map(|c| invalid(format!("\"{c}\""))),
    ]
}

fn date_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        6 => (1970i32..2100, 1u8..=12, 1u8..=28)
            .prop_map(|(y, m, d)| valid(format!("\"{y:04}-{m:02}-{d:02}\""))),
        1 => Just(OMITTED_BAD),
        1 => prop_oneof![
            (1970i32..2100).prop_map(|y| format!("\"{y}-02-30\"")),
            (1970i32..2100, 13u8..=99).prop_map(|(y, m)| format!("\"{y}-{m}-01\"")),
            (1970i32..2100, 1u8..=9).prop_map(|(y, m)| format!("\"{y}-{m}-1\"")),
            Just("\"2026-11-01T00:00:00Z\"".to_owned()),
            Just("20261101".to_owned()),
        ]
        .prop_map(invalid),
    ]
}

fn method_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        6 => prop_oneof![
            Just("ach"), Just("wire"), Just("card_push"), Just("internal_transfer")
        ]
        .prop_map(|m| valid(format!("\"{m}\""))),
        1 => Just(OMITTED_BAD),
        1 => prop_oneof![Just("ACH"), Just("cash"), Just(""), Just("wire ")]
            .prop_map(|m| invalid(format!("\"{m}\""))),
    ]
}

fn destination_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => Just(OMITTED_OK),
        1 => Just(valid("null".into())),
        4 => "[a-zA-Z0-9 _.-]{1,255}".prop_map(|s| valid(Value::String(s).to_string())),
        1 => prop_oneof![
            Just(String::new()),
            "[a-z]{256,300}",
            "[a-z]{1,10}\u{0007}[a-z]{0,10}",
        ]
        .prop_map(|s| invalid(Value::String(s).to_string())),
    ]
}

fn metadata_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => Just(OMITTED_OK),
        1 => Just(valid("null".into())),
        4 => proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,15}", "[a-z0-9 ]{0,40}", 0..6)
            .prop_map(|m| valid(serde_json::to_string(&m).expect("json"))),
        1 => prop_oneof![
            Just("\"text\"".to_owned()),
            Just("[1,2]".to_owned()),
            "[0-9_][a-z]{0,5}".prop_map(|k| format!("{{\"{k}\":1}}")),
            Just(format!("{{\"big\":\"{}\"}}", "x".repeat(2100))),
        ]
        .prop_map(invalid),
    ]
}

fn extra_field() -> impl Strategy<Value = Option<(String, String)>> {
    prop_oneof![
        4 => Just(None),
        1 => ("x_[a-z]{1,8}", prop_oneof![Just("1"), Just("null"), Just("\"v\"")])
            .prop_map(|(k, v)| Some((k, v.to_owned()))),
    ]
}

#[derive(Debug, Clone)]
struct Body {
    fields: Vec<(&'static str, Field)>,
    extra: Option<(String, String)>,
}

impl Body {
    fn is_valid(&self) -> bool {
        self.extra.is_none() && self.fields.iter().all(|(_, f)| f.valid)
    }

    fn render(&self) -> String {
        let mut members: Vec<String> = self
            .fields
            .iter()
            .filter_map(|(name, f)| {
                f.raw.as_ref().map(|raw| {
                    let raw = raw.replace(FRESH_ID, &format!("\"{}\"", uuid())).replace(
                        FRESH_ID_UPPER,
                        &format!("\"{}\"", uuid().to_string().to_uppercase()),
                    );
                    format!("\"{name}\":{raw}")
                })
            })
            .collect();
        if let Some((k, v)) = &self.extra {
            members.push(format!("\"{k}\":{v}"));
        }
        format!("{{{}}}", members.join(","))
    }
}

fn body_strategy() -> impl Strategy<Value = Body> {
    (
        (id_field(), id_field(), amount_field(), currency_field()),
        (
            date_field(),
            method_field(),
            destination_field(),
            metadata_field(),
        ),
        extra_field(),
    )
        .prop_map(
            |((loan, borrower, amount, currency), (date, method, dest, meta), extra)| Body {
                fields: vec![
                    ("loan_id", loan),
                    ("borrower_id", borrower),
                    ("amount_minor", amount),
                    ("currency", currency),
                    ("effective_at", date),
                    ("method", method),
                    ("destination_ref", dest),
                    ("metadata", meta),
                ],
                extra,
            },
        )
}

#[test]
fn random_disbursement_bodies_are_created_exactly_when_valid_and_never_crash_the_server() {
    let h = Harness::spawn();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::sync::Mutex::new((0usize, 0usize));
    let result = runner.run(&body_strategy(), |body| {
        // A tenant per case: amounts up to i64::MAX are valid alone, but two of them in one
        // tenant would rightly be refused (422 amount_out_of_range, the currency's totals).
        let token = h.token(uuid());
        let text = body.render();
        let before = h.counts();
        let raw = h.send(&Req::post("/v1/disbursements", &token, text.clone()).bytes());
        let after = h.counts();
        prop_assert!(
            raw.status != 0 && raw.status < 500,
            "status {} for {text}: {}",
            raw.status,
            raw.text()
        );
        if body.is_valid() {
            prop_assert_eq!(
                raw.status,
                201,
                "valid body {} refused: {}",
                text,
                raw.text()
            );
            let grew: Vec<i64> = before.iter().zip(&after).map(|(b, a)| a.1 - b.1).collect();
            prop_assert_eq!(&grew[..2], &[1, 1], "one event and one entry: {:?}", grew);
            tally.lock().expect("tally").0 += 1;
        } else {
            prop_assert!(
                (400..500).contains(&raw.status),
                "invalid body {} answered {}: {}",
                text,
                raw.status,
                raw.text()
            );
            prop_assert_eq!(raw.header("content-type"), Some("application/problem+json"));
            prop_assert_eq!(&after, &before, "a refused body wrote nothing");
            tally.lock().expect("tally").1 += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (created, refused) = *tally.lock().expect("tally");
    eprintln!("proptest: {created} valid bodies created, {refused} invalid bodies refused");
    assert!(
        created > 0 && refused > 0,
        "the generator mixes valid ({created}) and invalid ({refused}) bodies"
    );
}
