//! `GET /openapi.json` and `/docs`: the document is `OpenAPI` 3.1, names every route of the route
//! table with its method and scope, documents `Idempotency-Key` and every answer of each POST,
//! types money as strings; and the contract test: every endpoint is called for real and each
//! answer (status, content type, body, headers) is validated against the schema the document
//! gives for that operation, status and content type (JSON Schema draft 2020-12, formats on).
//! The requests sent are validated against the documented request bodies too.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ALL_SCOPES, Answer, Caller, LOAN_BALANCE_KEYS, TestApp, disbursement_body, key, spawn_app,
    spawn_app_with, uuid,
};

// Path templates of the route table.
const DISBURSEMENTS: &str = "/v1/disbursements";
const PAYMENTS: &str = "/v1/payments";
const FEES: &str = "/v1/fees";
const ACCRUALS: &str = "/v1/accruals/batch";
const REVERSALS: &str = "/v1/reversals";
const SETTLEMENTS: &str = "/v1/disbursement-settlements";
const RETURNS: &str = "/v1/payment-returns";
const WAIVERS: &str = "/v1/fee-waivers";
const CHARGE_OFFS: &str = "/v1/charge-offs";
const ADJUSTMENTS: &str = "/v1/adjustments";
const PERIOD_CLOSES: &str = "/v1/period-closes";
const TRIAL_BALANCE: &str = "/v1/trial-balance";
const EXPORT: &str = "/v1/exports/journal";
const LOAN_BALANCE: &str = "/v1/loans/{loan_id}/balance";
const LOAN_ENTRIES: &str = "/v1/loans/{loan_id}/journal-entries";
const ACCOUNT_BALANCE: &str = "/v1/accounts/{account_code}/balance";
const ENTRY: &str = "/v1/journal-entries/{journal_entry_id}";
const RECONCILIATION: &str = "/v1/reconciliation/status";
const LIVE: &str = "/v1/health/live";
const READY: &str = "/v1/health/ready";
const METRICS: &str = "/metrics";
const DOCUMENT: &str = "/openapi.json";

/// The route table (src/http/mod.rs `routes()` plus `/metrics` and the document itself, and the
/// journal export, documented ahead of its route): method, path template, scope.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("post", DISBURSEMENTS, Some("hpts:disbursements:write")),
    ("post", PAYMENTS, Some("hpts:payments:write")),
    ("post", FEES, Some("hpts:fees:write")),
    ("post", ACCRUALS, Some("hpts:accruals:write")),
    ("post", REVERSALS, Some("hpts:reversals:write")),
    ("post", SETTLEMENTS, Some("hpts:disbursements:write")),
    ("post", RETURNS, Some("hpts:payments:write")),
    ("post", WAIVERS, Some("hpts:fees:write")),
    ("post", CHARGE_OFFS, Some("hpts:chargeoffs:write")),
    ("post", ADJUSTMENTS, Some("hpts:adjustments:write")),
    ("post", PERIOD_CLOSES, Some("hpts:periods:write")),
    ("get", LOAN_BALANCE, Some("hpts:balances:read")),
    ("get", LOAN_ENTRIES, Some("hpts:ledger:read")),
    ("get", ACCOUNT_BALANCE, Some("hpts:balances:read")),
    ("get", ENTRY, Some("hpts:ledger:read")),
    ("get", RECONCILIATION, Some("hpts:reconciliation:read")),
    ("get", PERIOD_CLOSES, Some("hpts:ledger:read")),
    ("get", TRIAL_BALANCE, Some("hpts:balances:read")),
    ("get", EXPORT, Some("hpts:ledger:read")),
    ("get", LIVE, None),
    ("get", READY, None),
    ("get", METRICS, None),
    ("get", DOCUMENT, None),
];

/// Documented response headers that every such response must carry (`Retry-After` is
/// conditional on some statuses, so it is only checked when present).
const ALWAYS_SENT: &[&str] = &[
    "traceparent",
    "Idempotent-Replayed",
    "Allow",
    "WWW-Authenticate",
];

/// SPEC §7: every event type, the reserved ones included.
const EVENT_TYPES: &[&str] = &[
    "disbursement",
    "payment_received",
    "fee_assessed",
    "accrual",
    "reversal",
    "disbursement_settled",
    "payment_returned",
    "fee_waived",
    "chargeoff",
    "recovery",
    "manual_adjustment",
    "payment_allocated",
    "refinance",
    "restructure",
];

const MONEY: &str = "^(0|[1-9][0-9]{0,18})$";
const IDEMPOTENCY_KEY: &str = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{7,254}$";

/// Every error code of SPEC §10, plus `method_not_allowed`, `request_timeout` and
/// `headers_too_large` (compared as a set: the document lists them in the error table's order).
const PROBLEM_CODES: &[&str] = &[
    "validation_failed",
    "malformed_json",
    "idempotency_key_missing",
    "idempotency_key_invalid",
    "duplicate_header",
    "invalid_page_token",
    "unauthenticated",
    "insufficient_scope",
    "not_found",
    "method_not_allowed",
    "idempotency_in_progress",
    "already_reversed",
    "duplicate_external_ref",
    "already_settled",
    "already_returned",
    "already_charged_off",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "headers_too_large",
    "idempotency_mismatch",
    "borrower_mismatch",
    "currency_mismatch",
    "loan_not_found",
    "amount_must_be_positive",
    "amount_out_of_range",
    "effective_before_loan",
    "effective_before_original",
    "principal_mismatch",
    "interest_mismatch",
    "already_accrued",
    "mixed_currency_batch",
    "cannot_reverse_reversal",
    "reversal_blocked_by_later_activity",
    "event_reversed",
    "event_returned",
    "waiver_exceeds_outstanding",
    "nothing_to_charge_off",
    "loan_charged_off",
    "entry_unbalanced",
    "account_not_found",
    "account_not_adjustable",
    "rate_limited",
    "replication_unavailable",
    "not_ready",
    "overloaded",
    "internal",
    "period_closed",
    "close_date_not_past",
    "period_already_closed",
];

// ---------------------------------------------------------------------------------------------
// The document and its JSON Schema validation
// ---------------------------------------------------------------------------------------------

/// The served document plus what validation needs.
struct Contract {
    doc: Value,
    /// `components.schemas` with every `#/components/schemas/X` rewritten to `#/$defs/X`.
    defs: Value,
}

/// Rewrites `OpenAPI` component references into `$defs` references.
fn to_defs(v: &Value) -> Value {
    let text = serde_json::to_string(v).expect("json");
    serde_json::from_str(&text.replace("#/components/schemas/", "#/$defs/")).expect("json")
}

impl Contract {
    async fn load(app: &TestApp) -> Contract {
        let a = Answer::from(app.get_raw(DOCUMENT, None).await).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.header("content-type"), Some("application/json"));
        let doc = a.json();
        let defs = to_defs(&doc["components"]["schemas"]);
        Contract { doc, defs }
    }

    /// Follows a local `$ref` (`#/components/...`) if `v` is one.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => v,
        }
    }

    /// The schema a property stands for: a `$ref` followed, and of a nullable `oneOf` (an
    /// optional field typed by a component) the branch that is not `null`.
    fn flat<'a>(&'a self, v: &'a Value) -> &'a Value {
        let v = self.resolve(v);
        match v.get("oneOf").and_then(Value::as_array) {
            Some(items) => items
                .iter()
                .find(|i| i["type"] != "null")
                .map_or(v, |i| self.flat(i)),
            None => v,
        }
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// The documented response of an operation for a status (references followed).
    fn response(&self, method: &str, template: &str, status: u16) -> Option<&Value> {
        self.operation(method, template)["responses"]
            .get(status.to_string())
            .map(|r| self.resolve(r))
    }

    /// Validation errors of `instance` against an `OpenAPI` schema object.
    fn schema_errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": self.defs,
            "allOf": [to_defs(schema)],
        });
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the documented schema does not compile: {e}\n{schema}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at `{}`", e, e.instance_path()))
            .collect()
    }

    /// Every way `answer` departs from the document for `method template`: undocumented status
    /// or content type, a body that does not validate, a missing or invalid documented header.
    fn violations(&self, method: &str, template: &str, answer: &Answer) -> Vec<String> {
        let label = format!("{} {template} → {}", method.to_uppercase(), answer.status);
        let Some(response) = self.response(method, template, answer.status) else {
            return vec![format!("{label}: status not documented ({})", answer.text)];
        };
        let mut out = Vec::new();
        let content_type = answer
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        match response["content"].get(&content_type) {
            None => out.push(format!(
                "{label}: content type {content_type:?} not documented"
            )),
            Some(media) => {
                let body: Value = if content_type.ends_with("json") {
                    serde_json::from_str(&answer.text).unwrap_or_else(|e| {
                        panic!("{label}: body is not JSON ({e}): {}", answer.text)
                    })
                } else {
                    Value::String(answer.text.clone())
                };
                out.extend(
                    self.schema_errors(&media["schema"], &body)
                        .into_iter()
                        .map(|e| format!("{label}: body: {e}\n    body: {}", answer.text)),
                );
            }
        }
        if let Some(headers) = response["headers"].as_object() {
            for (name, header) in headers {
                let header = self.resolve(header);
                match answer.header(name) {
                    None if ALWAYS_SENT.contains(&name.as_str()) => {
                        out.push(format!("{label}: header {name} missing"));
                    }
                    None => {}
                    Some(raw) => {
                        let schema = &header["schema"];
                        let value = if schema["type"] == "integer" {
                            raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n))
                        } else {
                            json!(raw)
                        };
                        out.extend(
                            self.schema_errors(schema, &value)
                                .into_iter()
                                .map(|e| format!("{label}: header {name}: {e}")),
                        );
                    }
                }
            }
        }
        out
    }

    /// Validation errors of a request body against the operation's documented request body.
    fn request_errors(&self, method: &str, template: &str, body: &Value) -> Vec<String> {
        let schema = &self.operation(method, template)["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} documents no JSON body"
        );
        self.schema_errors(schema, body)
    }

    /// A component schema by name.
    fn schema(&self, name: &str) -> &Value {
        let s = &self.doc["components"]["schemas"][name];
        assert!(s.is_object(), "schema {name} is not documented");
        s
    }
}

/// Collects contract violations over a scenario and reports them all at once.
struct Audit<'a> {
    contract: &'a Contract,
    violations: Vec<String>,
}

impl<'a> Audit<'a> {
    fn new(contract: &'a Contract) -> Self {
        Audit {
            contract,
            violations: Vec::new(),
        }
    }

    /// Asserts the status (the scenario depends on it) and records any contract violation.
    fn answer(&mut self, method: &str, template: &str, answer: &Answer, status: u16) {
        assert_eq!(
            answer.status,
            status,
            "{} {template}: {}",
            method.to_uppercase(),
            answer.text
        );
        self.violations
            .extend(self.contract.violations(method, template, answer));
    }

    /// As [`Audit::answer`], for an error: also asserts the problem `code`.
    fn problem(&mut self, method: &str, template: &str, answer: &Answer, status: u16, code: &str) {
        self.answer(method, template, answer, status);
        assert_eq!(answer.code(), code, "{}", answer.text);
    }

    /// Records a request body the document would refuse.
    fn request(&mut self, template: &str, body: &Value) {
        self.violations.extend(
            self.contract
                .request_errors("post", template, body)
                .into_iter()
                .map(|e| format!("request to POST {template}: {e}\n    body: {body}")),
        );
    }

    fn finish(self) {
        assert!(
            self.violations.is_empty(),
            "{} contract violation(s):\n{}",
            self.violations.len(),
            self.violations.join("\n")
        );
    }
}

/// Every schema object reachable inside `v` (depth first), with its JSON path.
fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            out.push((path.to_owned(), v));
            for (k, child) in map {
                walk(child, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Whether a schema admits the JSON type `ty` (`type` may be a string or an array).
fn admits(schema: &Value, ty: &str) -> bool {
    match &schema["type"] {
        Value::String(t) => t == ty,
        Value::Array(ts) => ts.iter().any(|t| t == ty),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The document itself
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_document_is_openapi_3_1_and_describes_every_route_with_its_scope() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    assert_eq!(c.doc["openapi"], "3.1.0");
    assert_eq!(c.doc["info"]["title"], "HPTS lending ledger API");
    assert_eq!(c.doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let bearer = &c.doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in c.doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected, "documented operations ≠ route table");

    for (method, path, scope) in ROUTES {
        let op = c.operation(method, path);
        let description = op["description"].as_str().unwrap_or_default();
        match scope {
            Some(scope) => {
                assert_eq!(
                    op["security"],
                    json!([{ "bearer": [scope] }]),
                    "{method} {path}"
                );
                assert!(
                    description.contains(scope),
                    "{method} {path}: the description does not name {scope}: {description}"
                );
                for status in [401, 403, 429, 500] {
                    assert!(
                        c.response(method, path, status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            None => assert!(
                op.get("security").is_none(),
                "{method} {path} needs no token"
            ),
        }
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        assert!(
            c.response(method, path, 200).is_some() || c.response(method, path, 201).is_some(),
            "{method} {path} documents no success"
        );
        // Path parameters are documented, required, and named as in the template.
        let path_params: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{method} {path}: {p}");
                p["name"].as_str().expect("name")
            })
            .collect();
        let in_template: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(path_params, in_template, "{method} {path}");
    }
}

#[tokio::test]
async fn every_post_documents_the_idempotency_key_and_every_answer() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    for (method, path, _) in ROUTES.iter().filter(|(m, ..)| *m == "post") {
        let op = c.operation(method, path);
        let key = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} lacks Idempotency-Key"));
        assert_eq!(key["in"], "header", "{path}");
        assert_eq!(key["required"], true, "{path}");
        assert_eq!(key["schema"]["pattern"], IDEMPOTENCY_KEY, "{path}");
        assert_eq!(key["schema"]["type"], "string", "{path}");

        assert_eq!(op["requestBody"]["required"], true, "{path}");
        let body = c.resolve(&op["requestBody"]["content"]["application/json"]["schema"]);
        assert_eq!(
            body["additionalProperties"], false,
            "{path}: body is not closed"
        );

        for status in [
            200, 201, 400, 401, 403, 405, 409, 413, 415, 422, 429, 500, 503,
        ] {
            assert!(
                c.response(method, path, status).is_some(),
                "{path} lacks {status}"
            );
        }
        let created = c.response(method, path, 201).expect("201");
        let replayed = c.response(method, path, 200).expect("200");
        assert_eq!(
            created["content"]["application/json"]["schema"],
            replayed["content"]["application/json"]["schema"],
            "{path}: a replay returns the same body"
        );
        assert_eq!(
            replayed["headers"]["Idempotent-Replayed"]["schema"]["enum"],
            json!(["true"]),
            "{path}: 200 lacks Idempotent-Replayed: true"
        );
        let in_progress = c.response(method, path, 409).expect("409");
        assert!(
            in_progress["headers"].get("Retry-After").is_some(),
            "{path}: 409 lacks Retry-After"
        );
        let unavailable = c.response(method, path, 503).expect("503");
        assert!(
            unavailable["headers"].get("Retry-After").is_some(),
            "{path}: 503 lacks Retry-After"
        );
    }
}

#[tokio::test]
async fn errors_are_problem_json_and_every_response_carries_traceparent() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    let mut codes: Vec<&str> = c.schema("ProblemCode")["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|v| v.as_str().expect("a string code"))
        .collect();
    codes.sort_unstable();
    let mut expected = PROBLEM_CODES.to_vec();
    expected.sort_unstable();
    assert_eq!(codes, expected);
    let problem = c.schema("Problem");
    assert_eq!(problem["additionalProperties"], false);
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .expect("required")
                .contains(&json!(field)),
            "Problem.{field} is not required"
        );
    }
    let item = c.resolve(&problem["properties"]["errors"]["items"]);
    assert_eq!(item["required"], json!(["field", "code", "message"]));

    for (method, path, _) in ROUTES {
        for (status, response) in c.operation(method, path)["responses"]
            .as_object()
            .expect("responses")
        {
            let response = c.resolve(response);
            assert!(
                response["headers"].get("traceparent").is_some(),
                "{method} {path} {status} lacks traceparent"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().expect("content");
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn money_is_typed_as_a_string_and_request_bodies_state_the_wire_rules() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;

    // Every `*_minor` property anywhere is a string with a digits-only pattern; never a number.
    let mut nodes = Vec::new();
    walk(&c.doc["components"]["schemas"], "", &mut nodes);
    let mut money_fields = 0;
    for (path, node) in &nodes {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (name, prop) in props.iter().filter(|(n, _)| n.ends_with("_minor")) {
            money_fields += 1;
            let prop = c.flat(prop);
            assert!(
                admits(prop, "string") && !admits(prop, "number") && !admits(prop, "integer"),
                "{path}/{name} is not typed as a string: {prop}"
            );
            let pattern = prop["pattern"].as_str().unwrap_or_default();
            assert!(
                pattern == MONEY || pattern == "^(0|-?[1-9][0-9]{0,18})$",
                "{path}/{name} has pattern {pattern:?}"
            );
        }
        // Every object with properties is closed, so validation catches undocumented fields.
        assert_eq!(
            node["additionalProperties"], false,
            "{path} does not forbid undocumented fields"
        );
    }
    assert!(money_fields >= 20, "only {money_fields} money fields found");

    let disb = &c.schema("DisbursementRequest")["properties"];
    assert_eq!(c.flat(&disb["amount_minor"])["pattern"], MONEY);
    assert_eq!(c.flat(&disb["currency"])["pattern"], "^[A-Z]{3}$");
    assert_eq!(disb["loan_id"]["format"], "uuid");
    assert_eq!(disb["borrower_id"]["format"], "uuid");
    assert_eq!(disb["effective_at"]["format"], "date");
    assert_eq!(disb["destination_ref"]["minLength"], 1);
    assert_eq!(disb["destination_ref"]["maxLength"], 255);
    assert_eq!(
        c.schema("DisbursementMethod")["enum"],
        json!(["ach", "wire", "card_push", "internal_transfer"])
    );
    assert_eq!(
        c.schema("DisbursementRequest")["required"],
        json!([
            "loan_id",
            "borrower_id",
            "amount_minor",
            "currency",
            "effective_at",
            "method"
        ])
    );
    let pay = &c.schema("PaymentRequest")["properties"];
    assert_eq!(pay["external_ref"]["minLength"], 1);
    assert_eq!(pay["external_ref"]["maxLength"], 255);
    assert_eq!(
        c.schema("PaymentMethod")["enum"],
        json!(["ach", "wire", "card", "cash", "internal_transfer"])
    );
    assert_eq!(
        c.schema("FeeType")["enum"],
        json!(["origination", "late", "nsf", "other"])
    );
    let accrual = &c.schema("AccrualBatchRequest")["properties"];
    assert_eq!(accrual["loans"]["minItems"], 1);
    assert_eq!(accrual["loans"]["maxItems"], 10_000);
    assert_eq!(accrual["accrual_date"]["format"], "date");
    assert_eq!(
        c.schema("DayCountConvention")["enum"],
        json!(["ACT_365", "ACT_360", "30_360"])
    );
    assert_eq!(c.schema("AccrualBatchLoan")["additionalProperties"], false);
    let rev = &c.schema("ReversalRequest")["properties"];
    assert_eq!(rev["reason_description"]["maxLength"], 500);
    assert_eq!(
        c.schema("ReasonCode")["enum"],
        json!([
            "error_correction",
            "duplicate",
            "fraud",
            "customer_request",
            "other"
        ])
    );

    let metadata = c.schema("Metadata");
    assert_eq!(metadata["type"], "object");
    assert_eq!(
        metadata["propertyNames"]["pattern"],
        "^[a-zA-Z][a-zA-Z0-9_]*$"
    );
    assert!(
        metadata["description"]
            .as_str()
            .is_some_and(|d| d.contains("2048 bytes")),
        "{metadata}"
    );
}

#[tokio::test]
async fn lifecycle_request_bodies_state_the_wire_rules() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    let settle = c.schema("DisbursementSettlementRequest");
    assert_eq!(
        settle["required"],
        json!(["disbursement_event_id", "effective_at"])
    );
    assert_eq!(
        settle["properties"]["disbursement_event_id"]["format"],
        "uuid"
    );
    let bank = &settle["properties"]["bank_account_ref"];
    assert_eq!(bank["pattern"], r"^[A-Za-z0-9._:\-]+$");
    assert_eq!(bank["minLength"], 1);
    assert_eq!(bank["maxLength"], 64);
    let ret = c.schema("PaymentReturnRequest");
    assert_eq!(
        ret["required"],
        json!(["payment_event_id", "return_reason", "effective_at"])
    );
    assert_eq!(ret["properties"]["return_code"]["pattern"], "^R[0-9]{2}$");
    assert_eq!(
        c.flat(&ret["properties"]["nsf_fee_minor"])["pattern"],
        MONEY
    );
    assert_eq!(
        c.schema("ReturnReason")["enum"],
        json!([
            "insufficient_funds",
            "account_closed",
            "no_account",
            "unauthorized",
            "stopped",
            "other"
        ])
    );
    let waiver = c.schema("FeeWaiverRequest");
    assert_eq!(
        waiver["required"],
        json!(["fee_event_id", "reason", "effective_at"])
    );
    assert_eq!(
        c.flat(&waiver["properties"]["amount_minor"])["pattern"],
        MONEY
    );
    assert_eq!(waiver["properties"]["reason"]["minLength"], 1);
    assert_eq!(waiver["properties"]["reason"]["maxLength"], 500);
    let charge_off = c.schema("ChargeOffRequest");
    assert_eq!(
        charge_off["required"],
        json!(["loan_id", "effective_at", "reason_code"])
    );
    assert_eq!(
        c.schema("ChargeOffReason")["enum"],
        json!([
            "delinquency",
            "bankruptcy",
            "fraud",
            "deceased",
            "settlement",
            "other"
        ])
    );
    let adjustment = c.schema("AdjustmentRequest");
    assert_eq!(
        adjustment["required"],
        json!(["effective_at", "description", "lines"])
    );
    assert_eq!(adjustment["properties"]["description"]["minLength"], 1);
    assert_eq!(adjustment["properties"]["description"]["maxLength"], 500);
    assert_eq!(adjustment["properties"]["lines"]["minItems"], 2);
    assert_eq!(adjustment["properties"]["lines"]["maxItems"], 50);
    let line = c.schema("AdjustmentLine");
    assert_eq!(line["additionalProperties"], false);
    assert_eq!(
        line["required"],
        json!(["account_code", "direction", "amount_minor", "currency"])
    );
    assert_eq!(
        c.flat(&line["properties"]["account_code"])["pattern"],
        "^[0-9]{4}$"
    );
    assert_eq!(
        c.flat(&line["properties"]["amount_minor"])["pattern"],
        MONEY
    );
    assert_eq!(
        c.flat(&line["properties"]["currency"])["pattern"],
        "^[A-Z]{3}$"
    );
}

#[tokio::test]
async fn event_types_and_loan_statuses_are_the_spec_lists() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    let mut types: Vec<&str> = c.schema("EventType")["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect();
    types.sort_unstable();
    let mut expected = EVENT_TYPES.to_vec();
    expected.sort_unstable();
    assert_eq!(types, expected);
    assert_eq!(
        c.schema("LoanStatus")["enum"],
        json!(["active", "paid_off", "charged_off"])
    );
}

#[tokio::test]
async fn lifecycle_answers_have_exactly_the_decided_fields() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    // Every field required, none other (SPEC §6c and the lifecycle decisions).
    for (schema, fields) in [
        ("LoanBalance", &LOAN_BALANCE_KEYS[..]),
        (
            "PaymentReceipt",
            &[
                "payment_event_id",
                "journal_entry_id",
                "allocation",
                "recovery_minor",
                "posted_at",
            ][..],
        ),
        (
            "DisbursementSettlementReceipt",
            &[
                "settlement_event_id",
                "journal_entry_id",
                "disbursement_event_id",
                "amount_minor",
                "currency",
                "posted_at",
            ][..],
        ),
        (
            "PaymentReturnReceipt",
            &[
                "return_event_id",
                "journal_entry_id",
                "payment_event_id",
                "returned_allocation",
                "nsf_fee_minor",
                "posted_at",
            ][..],
        ),
        (
            "FeeWaiverReceipt",
            &[
                "waiver_event_id",
                "journal_entry_id",
                "fee_event_id",
                "waived_minor",
                "posted_at",
            ][..],
        ),
        (
            "ChargeOffReceipt",
            &[
                "chargeoff_event_id",
                "journal_entry_id",
                "loan_id",
                "charged_off",
                "total_minor",
                "posted_at",
            ][..],
        ),
        (
            "ChargedOffAmounts",
            &["principal_minor", "interest_minor", "fees_minor"][..],
        ),
        (
            "AdjustmentReceipt",
            &["adjustment_event_id", "journal_entry_id", "posted_at"][..],
        ),
    ] {
        let s = c.schema(schema);
        assert_eq!(s["required"], json!(fields), "{schema}");
        let mut properties: Vec<&String> = s["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        properties.sort();
        let mut fields = fields.to_vec();
        fields.sort_unstable();
        assert_eq!(properties, fields, "{schema}");
    }
    let returned = &c.schema("PaymentReturnReceipt")["properties"]["returned_allocation"];
    assert_eq!(c.resolve(returned), c.schema("Allocation"));
}

/// Asserts that a component schema requires exactly `fields` and has no other property.
fn assert_exact_fields(c: &Contract, schema: &str, fields: &[&str]) {
    let s = c.schema(schema);
    assert_eq!(s["required"], json!(fields), "{schema}");
    let mut properties: Vec<&String> = s["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    properties.sort();
    let mut fields = fields.to_vec();
    fields.sort_unstable();
    assert_eq!(properties, fields, "{schema}");
}

#[tokio::test]
async fn month_end_bodies_and_answers_have_exactly_the_decided_fields() {
    let app = spawn_app().await;
    let c = Contract::load(&app).await;
    // SPEC §6d: the close's body is closed, `{through_date, metadata?}`.
    let close = c.schema("PeriodCloseRequest");
    assert_eq!(close["additionalProperties"], false);
    assert_eq!(close["required"], json!(["through_date"]));
    assert_eq!(close["properties"]["through_date"]["format"], "date");
    let mut properties: Vec<&String> = close["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    properties.sort();
    assert_eq!(properties, ["metadata", "through_date"]);
    for (schema, fields) in [
        (
            "PeriodCloseReceipt",
            &[
                "period_close_id",
                "through_date",
                "closed_at",
                "trial_balance",
            ][..],
        ),
        ("ClosingTrialBalance", &["currency", "accounts"][..]),
        (
            "ClosingAccountBalance",
            &["account_code", "balance_minor"][..],
        ),
        ("PeriodCloseList", &["lock_date", "items"][..]),
        (
            "PeriodCloseSummary",
            &["period_close_id", "through_date", "closed_at"][..],
        ),
        (
            "TrialBalance",
            &[
                "as_of_date",
                "currency",
                "accounts",
                "dr_total_minor",
                "cr_total_minor",
                "balanced",
            ][..],
        ),
        (
            "TrialBalanceAccount",
            &[
                "account_code",
                "account_name",
                "normal_balance",
                "dr_total_minor",
                "cr_total_minor",
                "balance_minor",
            ][..],
        ),
    ] {
        assert_exact_fields(&c, schema, fields);
    }
    assert_eq!(
        c.schema("NormalBalance")["enum"],
        json!(["debit", "credit"])
    );
    // The lock date is `null` until the first close.
    let lock = &c.schema("PeriodCloseList")["properties"]["lock_date"];
    assert!(admits(lock, "null") && admits(lock, "string"), "{lock}");
    // Trial-balance query: `currency` required, `as_of_date` optional.
    let params = c.operation("get", TRIAL_BALANCE)["parameters"]
        .as_array()
        .expect("parameters");
    let names: Vec<(&str, bool)> = params
        .iter()
        .map(|p| (p["name"].as_str().expect("name"), p["required"] == true))
        .collect();
    assert_eq!(names, [("currency", true), ("as_of_date", false)]);

    // The journal export (SPEC §6d): documented ahead of its route, streamed as text/plain.
    let export = c.operation("get", EXPORT);
    let params = export["parameters"].as_array().expect("parameters");
    let names: Vec<(&str, bool)> = params
        .iter()
        .map(|p| (p["name"].as_str().expect("name"), p["required"] == true))
        .collect();
    assert_eq!(
        names,
        [("format", true), ("from_date", false), ("to_date", false)]
    );
    assert_eq!(params[0]["schema"]["enum"], json!(["beancount", "hledger"]));
    assert_eq!(params[1]["schema"]["format"], "date");
    assert_eq!(params[2]["schema"]["format"], "date");
    let ok = c.response("get", EXPORT, 200).expect("200");
    let content: Vec<&String> = ok["content"].as_object().expect("content").keys().collect();
    assert_eq!(content, ["text/plain"]);
    assert!(c.response("get", EXPORT, 400).is_some());
    let busy = c.response("get", EXPORT, 503).expect("503");
    assert!(busy["headers"].get("Retry-After").is_some(), "{busy}");
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs_with_and_without_the_trailing_slash() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let bare = no_redirects
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(bare.status().as_u16(), 308);
    assert_eq!(
        bare.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    for path in ["/docs", "/docs/"] {
        let page = Answer::from(app.get_raw(path, None).await).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}: {:?}",
            page.header("content-type")
        );
        assert!(page.text.contains("swagger"), "{path}");
    }
    let init = Answer::from(app.get_raw("/docs/swagger-initializer.js", None).await).await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains(DOCUMENT), "{}", init.text);
}

// ---------------------------------------------------------------------------------------------
// The contract test: every endpoint for real
// ---------------------------------------------------------------------------------------------

/// A loan with one entry of every kind: disbursement, fee, accrual, payment, and a reversal of
/// the payment. Every write is audited, and so is every request body sent.
struct History {
    loan: Uuid,
    borrower: Uuid,
    disbursement_entry: String,
    fee_entry: String,
    payment_entry: String,
    reversal_entry: String,
    disbursement_event: String,
    fee_event: String,
    /// The reversed payment's event.
    payment_event: String,
}

async fn post_audited(
    audit: &mut Audit<'_>,
    c: &Caller<'_>,
    path: &str,
    key: &str,
    body: &Value,
) -> Value {
    audit.request(path, body);
    let a = c.post(path, key, body).await;
    audit.answer("post", path, &a, 201);
    a.json()
}

async fn history(audit: &mut Audit<'_>, c: &Caller<'_>) -> History {
    let (loan, borrower) = (uuid(), uuid());
    let disbursement = disbursement_body(loan, borrower, "1000000");
    let disbursement_key = key("disbursement");
    let disbursed = post_audited(audit, c, DISBURSEMENTS, &disbursement_key, &disbursement).await;

    // The same key and body again: 200, the identical body, Idempotent-Replayed.
    let replay = c
        .post(DISBURSEMENTS, &disbursement_key, &disbursement)
        .await;
    audit.answer("post", DISBURSEMENTS, &replay, 200);
    assert_eq!(replay.json(), disbursed);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    let fee = json!({
        "loan_id": loan.to_string(),
        "fee_type": "origination",
        "amount_minor": "2500",
        "currency": "USD",
        "effective_at": "2026-11-15",
        "metadata": { "reason": "contract" }
    });
    let charged = post_audited(audit, c, FEES, &key("fee"), &fee).await;

    // The loan's exact principal, 10 % a year, ACT/365: 1 000 000 × 0.10 / 365 = 273.97 → 274.
    let accrual = json!({
        "program_id": uuid().to_string(),
        "accrual_date": "2026-11-30",
        "day_count_convention": "ACT_365",
        "loans": [{
            "loan_id": loan.to_string(),
            "outstanding_principal_minor": "1000000",
            "interest_minor": "274",
            "annual_rate_bps": 1000
        }]
    });
    let accrued = post_audited(audit, c, ACCRUALS, &key("accrual"), &accrual).await;
    assert_eq!(accrued["loan_count"], 1);
    assert_eq!(accrued["total_accrued_minor"], "274");

    let payment = json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": "88849",
        "currency": "USD",
        "effective_at": "2026-12-01",
        "source_method": "ach",
        "external_ref": format!("psp-{}", uuid()),
        "metadata": { "channel": "api" }
    });
    let paid = post_audited(audit, c, PAYMENTS, &key("payment"), &payment).await;
    assert_eq!(
        paid["allocation"],
        json!({ "fees_minor": "2500", "interest_minor": "274", "principal_minor": "86075", "suspense_minor": "0" })
    );

    let payment_entry = paid["journal_entry_id"].as_str().expect("id").to_owned();
    let reversal = json!({
        "reverses_entry_id": payment_entry,
        "reason_code": "error_correction",
        "reason_description": "posted twice by the processor",
        "effective_at": "2026-12-02",
        "metadata": { "ticket": "OPS1" }
    });
    let reversed = post_audited(audit, c, REVERSALS, &key("reversal"), &reversal).await;
    assert_eq!(reversed["reverses_entry_id"], payment_entry.as_str());
    assert_eq!(reversed["correlation_id"], paid["payment_event_id"]);

    History {
        loan,
        borrower,
        disbursement_entry: disbursed["journal_entry_id"]
            .as_str()
            .expect("id")
            .to_owned(),
        fee_entry: charged["journal_entry_id"].as_str().expect("id").to_owned(),
        payment_entry,
        reversal_entry: reversed["journal_entry_id"]
            .as_str()
            .expect("id")
            .to_owned(),
        disbursement_event: id_of(&disbursed, "disbursement_event_id"),
        fee_event: id_of(&charged, "fee_event_id"),
        payment_event: id_of(&paid, "payment_event_id"),
    }
}

/// A string field of an answer (an id).
fn id_of(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

/// A spawned app, its document, an audit, a caller and its history.
macro_rules! scenario {
    ($app:ident, $contract:ident, $audit:ident, $c:ident, $h:ident) => {
        let $app = spawn_app().await;
        let $contract = Contract::load(&$app).await;
        let mut $audit = Audit::new(&$contract);
        let $c = $app.tenant();
        let $h = history(&mut $audit, &$c).await;
    };
}

/// A valid fee body for `loan`.
fn fee_body(loan: Uuid) -> Value {
    json!({
        "loan_id": loan.to_string(), "fee_type": "late", "amount_minor": "100",
        "currency": "USD", "effective_at": "2026-12-03"
    })
}

#[tokio::test]
async fn every_write_answers_what_the_document_says() {
    // The history posts one of each write (and a replay), auditing every answer.
    scenario!(app, contract, audit, c, _history);
    audit.finish();
}

#[tokio::test]
async fn every_read_answers_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let loan = h.loan;

    let b = c.get(&format!("/v1/loans/{loan}/balance")).await;
    audit.answer("get", LOAN_BALANCE, &b, 200);
    assert_eq!(b.json()["borrower_id"], h.borrower.to_string());
    assert!(b.json()["last_activity_at"].is_string(), "{}", b.text);
    let before = c
        .get(&format!("/v1/loans/{loan}/balance?as_of_date=2026-11-20"))
        .await;
    audit.answer("get", LOAN_BALANCE, &before, 200);
    assert_eq!(before.json()["fees_receivable_minor"], "2500");
    let before_any = c
        .get(&format!("/v1/loans/{loan}/balance?as_of_date=2026-01-01"))
        .await;
    audit.answer("get", LOAN_BALANCE, &before_any, 200);

    let first = c
        .get(&format!("/v1/loans/{loan}/journal-entries?page_size=2"))
        .await;
    audit.answer("get", LOAN_ENTRIES, &first, 200);
    let token = first.json()["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let mut seen = first.json()["items"].as_array().expect("items").len();
    let mut next = Some(token);
    while let Some(token) = next {
        let page = c
            .get(&format!(
                "/v1/loans/{loan}/journal-entries?page_size=2&page_token={token}"
            ))
            .await;
        audit.answer("get", LOAN_ENTRIES, &page, 200);
        seen += page.json()["items"].as_array().expect("items").len();
        next = page.json()["next_page_token"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5, "disbursement, fee, accrual, payment, reversal");
    let filtered = c
        .get(&format!(
            "/v1/loans/{loan}/journal-entries?event_type=fee_assessed&from_date=2026-11-01&to_date=2026-12-31"
        ))
        .await;
    audit.answer("get", LOAN_ENTRIES, &filtered, 200);
    assert_eq!(filtered.json()["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(filtered.json()["next_page_token"], Value::Null);

    for query in [
        "1100/balance?currency=USD",
        "2000/balance?currency=USD&layer=SETTLED&as_of_date=2026-12-31",
        "4100/balance?currency=USD&layer=PENDING",
        "2100/balance?currency=EUR",
    ] {
        let a = c.get(&format!("/v1/accounts/{query}")).await;
        audit.answer("get", ACCOUNT_BALANCE, &a, 200);
    }

    for entry in [
        &h.disbursement_entry,
        &h.fee_entry,
        &h.payment_entry,
        &h.reversal_entry,
    ] {
        let a = c.get(&format!("/v1/journal-entries/{entry}")).await;
        audit.answer("get", ENTRY, &a, 200);
    }
    let reversed = c.get_entry(&h.payment_entry).await.json();
    assert_eq!(reversed["reversed_by_entry_id"], h.reversal_entry.as_str());

    for path in [
        RECONCILIATION,
        "/v1/reconciliation/status?as_of_date=2026-11-30",
    ] {
        let a = c.get(path).await;
        audit.answer("get", RECONCILIATION, &a, 200);
        assert_eq!(a.json()["ledger_integrity"]["status"], "ok", "{}", a.text);
    }

    for path in [LIVE, READY] {
        let a = Answer::from(app.get_raw(path, None).await).await;
        audit.answer("get", path, &a, 200);
    }
    let doc = Answer::from(app.get_raw(DOCUMENT, None).await).await;
    audit.answer("get", DOCUMENT, &doc, 200);
    let metrics = Answer::from(app.get_raw(METRICS, None).await).await;
    audit.answer("get", METRICS, &metrics, 200);
    audit.finish();
}

#[tokio::test]
async fn malformed_writes_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let loan = h.loan;

    // 400 validation_failed, every failing field listed; the document refuses the body too.
    let mut bad = disbursement_body(uuid(), uuid(), "01");
    bad["currency"] = json!("usd");
    bad["colour"] = json!("blue");
    let refused = contract.request_errors("post", DISBURSEMENTS, &bad);
    assert!(
        !refused.is_empty(),
        "the document accepts a body the API refuses"
    );
    let a = c.post(DISBURSEMENTS, &key("bad"), &bad).await;
    audit.problem("post", DISBURSEMENTS, &a, 400, "validation_failed");
    let mut fields = a.error_fields();
    fields.sort();
    assert_eq!(fields, ["amount_minor", "colour", "currency"]);

    // 400 idempotency_key_missing / idempotency_key_invalid.
    let fee = fee_body(loan);
    let a = Answer::from(app.post_raw(FEES, Some(&c.token), None, &fee).await).await;
    audit.problem("post", FEES, &a, 400, "idempotency_key_missing");
    let a = Answer::from(
        app.post_raw(FEES, Some(&c.token), Some("short"), &fee)
            .await,
    )
    .await;
    audit.problem("post", FEES, &a, 400, "idempotency_key_invalid");

    // 400 malformed_json, 415, 413: raw requests.
    let raw = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&c.token)
            .header("Idempotency-Key", key("raw"))
    };
    let a = Answer::from(
        raw(reqwest::Method::POST, PAYMENTS)
            .header(CONTENT_TYPE, "application/json")
            .body("{\"loan_id\": ")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("post", PAYMENTS, &a, 400, "malformed_json");
    let a = Answer::from(
        raw(reqwest::Method::POST, FEES)
            .header(CONTENT_TYPE, "text/plain")
            .body(fee.to_string())
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("post", FEES, &a, 415, "unsupported_media_type");
    let a = Answer::from(
        raw(reqwest::Method::POST, REVERSALS)
            .json(&json!({ "pad": "x".repeat(70 * 1024) }))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("post", REVERSALS, &a, 413, "payload_too_large");
    audit.finish();
}

#[tokio::test]
async fn malformed_reads_and_wrong_methods_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let loan = h.loan;
    let raw = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&c.token)
    };

    // 405 on a write, a read and the document.
    let a = Answer::from(
        raw(reqwest::Method::PUT, DISBURSEMENTS)
            .json(&fee_body(loan))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("post", DISBURSEMENTS, &a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("POST"));
    let a = Answer::from(
        raw(
            reqwest::Method::DELETE,
            &format!("/v1/loans/{loan}/balance"),
        )
        .send()
        .await
        .expect("sent"),
    )
    .await;
    audit.problem("get", LOAN_BALANCE, &a, 405, "method_not_allowed");
    let a = Answer::from(
        raw(reqwest::Method::POST, DOCUMENT)
            .json(&fee_body(loan))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("get", DOCUMENT, &a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, HEAD"));

    // 400 on reads.
    let a = c.get("/v1/loans/not-a-uuid/balance").await;
    audit.problem("get", LOAN_BALANCE, &a, 400, "validation_failed");
    let a = c
        .get(&format!("/v1/loans/{loan}/journal-entries?page_size=0"))
        .await;
    audit.problem("get", LOAN_ENTRIES, &a, 400, "validation_failed");
    let a = c
        .get(&format!(
            "/v1/loans/{loan}/journal-entries?page_token=forged.token"
        ))
        .await;
    audit.problem("get", LOAN_ENTRIES, &a, 400, "invalid_page_token");
    let a = c.get("/v1/accounts/11/balance?layer=GOLD").await;
    audit.problem("get", ACCOUNT_BALANCE, &a, 400, "validation_failed");
    let a = c
        .get("/v1/reconciliation/status?as_of_date=yesterday")
        .await;
    audit.problem("get", RECONCILIATION, &a, 400, "validation_failed");
    let a = c
        .get(&format!("/v1/journal-entries/{}?x=1", h.fee_entry))
        .await;
    audit.problem("get", ENTRY, &a, 400, "validation_failed");
    audit.finish();
}

#[tokio::test]
async fn refused_access_answers_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let loan = h.loan;

    // 401 without a token or with a bad one, on a write and on reads.
    let a = Answer::from(
        app.post_raw(FEES, None, Some(&key("fee")), &fee_body(loan))
            .await,
    )
    .await;
    audit.problem("post", FEES, &a, 401, "unauthenticated");
    let a = Answer::from(app.get_raw(RECONCILIATION, None).await).await;
    audit.problem("get", RECONCILIATION, &a, 401, "unauthenticated");
    let a = Answer::from(
        app.get_raw(&format!("/v1/loans/{loan}/balance"), Some("not.a.jwt"))
            .await,
    )
    .await;
    audit.problem("get", LOAN_BALANCE, &a, 401, "unauthenticated");

    // 403 with a valid token that lacks the operation's scope.
    let reader = app.caller(c.tenant, &["hpts:balances:read"]);
    let a = reader.post(ACCRUALS, &key("acc"), &json!({})).await;
    audit.problem("post", ACCRUALS, &a, 403, "insufficient_scope");
    let a = reader
        .get(&format!("/v1/journal-entries/{}", h.fee_entry))
        .await;
    audit.problem("get", ENTRY, &a, 403, "insufficient_scope");

    // 404: missing, or another tenant's.
    let a = c.get(&format!("/v1/loans/{}/balance", uuid())).await;
    audit.problem("get", LOAN_BALANCE, &a, 404, "not_found");
    let a = app
        .tenant()
        .get(&format!("/v1/loans/{loan}/journal-entries"))
        .await;
    audit.problem("get", LOAN_ENTRIES, &a, 404, "not_found");
    let a = c.get("/v1/accounts/9999/balance?currency=USD").await;
    audit.problem("get", ACCOUNT_BALANCE, &a, 404, "not_found");
    let a = c.get(&format!("/v1/journal-entries/{}", uuid())).await;
    audit.problem("get", ENTRY, &a, 404, "not_found");
    let reversal = json!({ "reverses_entry_id": uuid().to_string(), "reason_code": "other" });
    audit.request(REVERSALS, &reversal);
    let a = c.post(REVERSALS, &key("rev"), &reversal).await;
    audit.problem("post", REVERSALS, &a, 404, "not_found");
    audit.finish();
}

#[tokio::test]
async fn refused_business_rules_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let loan = h.loan;

    // 409 already_reversed and duplicate_external_ref.
    let again = json!({ "reverses_entry_id": h.payment_entry, "reason_code": "duplicate" });
    audit.request(REVERSALS, &again);
    let a = c.post(REVERSALS, &key("rev"), &again).await;
    audit.problem("post", REVERSALS, &a, 409, "already_reversed");
    let payment = json!({
        "loan_id": loan.to_string(), "borrower_id": h.borrower.to_string(), "amount_minor": "100",
        "currency": "USD", "effective_at": "2026-12-05", "source_method": "wire",
        "external_ref": "psp-dup-1"
    });
    audit.request(PAYMENTS, &payment);
    let a = c.post(PAYMENTS, &key("pay"), &payment).await;
    audit.answer("post", PAYMENTS, &a, 201);
    let a = c.post(PAYMENTS, &key("pay"), &payment).await;
    audit.problem("post", PAYMENTS, &a, 409, "duplicate_external_ref");

    // 422: idempotency and business rules.
    let disbursement_key = key("disbursement");
    let body = disbursement_body(loan, h.borrower, "500");
    let a = c.post(DISBURSEMENTS, &disbursement_key, &body).await;
    audit.answer("post", DISBURSEMENTS, &a, 201);
    let other = disbursement_body(loan, h.borrower, "501");
    let a = c.post(DISBURSEMENTS, &disbursement_key, &other).await;
    audit.problem("post", DISBURSEMENTS, &a, 422, "idempotency_mismatch");
    let a = c
        .post(
            DISBURSEMENTS,
            &key("d"),
            &disbursement_body(loan, uuid(), "10"),
        )
        .await;
    audit.problem("post", DISBURSEMENTS, &a, 422, "borrower_mismatch");
    let mut zero = fee_body(loan);
    zero["amount_minor"] = json!("0");
    audit.request(FEES, &zero);
    let a = c.post(FEES, &key("fee"), &zero).await;
    audit.problem("post", FEES, &a, 422, "amount_must_be_positive");
    let a = c
        .post(
            REVERSALS,
            &key("rev"),
            &json!({ "reverses_entry_id": h.reversal_entry, "reason_code": "other" }),
        )
        .await;
    audit.problem("post", REVERSALS, &a, 422, "cannot_reverse_reversal");
    // The fee was partly paid by the 100 payment above: reversing it would make fees negative.
    let a = c
        .post(
            REVERSALS,
            &key("rev"),
            &json!({ "reverses_entry_id": h.fee_entry, "reason_code": "other" }),
        )
        .await;
    audit.problem(
        "post",
        REVERSALS,
        &a,
        422,
        "reversal_blocked_by_later_activity",
    );
    let stale = json!({
        "program_id": uuid().to_string(),
        "accrual_date": "2026-12-31",
        "day_count_convention": "30_360",
        "loans": [{ "loan_id": loan.to_string(), "outstanding_principal_minor": "1", "interest_minor": "5" }]
    });
    audit.request(ACCRUALS, &stale);
    let a = c.post(ACCRUALS, &key("acc"), &stale).await;
    audit.problem("post", ACCRUALS, &a, 422, "principal_mismatch");
    assert_eq!(a.error_fields(), ["loans[0].outstanding_principal_minor"]);
    audit.finish();
}

// ---------------------------------------------------------------------------------------------
// The loan lifecycle writes (SPEC §6c), for real
// ---------------------------------------------------------------------------------------------

/// The history's loan taken through its lifecycle, every write audited: the disbursement
/// settled, 1000 of the fee waived, a payment of 2000 returned with a 1500 NSF fee, a payment of
/// 100 that stays live, the charge-off, a recovery of 5000; and a manual adjustment.
struct Lifecycle {
    settlement_entry: String,
    waiver_entry: String,
    returned_payment_event: String,
    return_entry: String,
    live_payment_event: String,
    chargeoff_entry: String,
    recovery_event: String,
    recovery_entry: String,
    adjustment_entry: String,
}

/// Posts a write (201, audited with its body), then replays it: 200, the identical body and
/// `Idempotent-Replayed: true`, audited too.
async fn post_and_replay(audit: &mut Audit<'_>, c: &Caller<'_>, path: &str, body: &Value) -> Value {
    let k = key("lifecycle");
    let created = post_audited(audit, c, path, &k, body).await;
    let replay = c.post(path, &k, body).await;
    audit.answer("post", path, &replay, 200);
    assert_eq!(replay.json(), created, "POST {path}: the replay differs");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    created
}

/// A payment body for the history's loan.
fn payment_body(h: &History, amount: &str, effective_at: &str) -> Value {
    json!({
        "loan_id": h.loan.to_string(), "borrower_id": h.borrower.to_string(),
        "amount_minor": amount, "currency": "USD", "effective_at": effective_at,
        "source_method": "ach"
    })
}

/// The lines of an entry read, as (account, direction, amount).
fn lines_of(entry: &Value) -> Vec<(String, String, String)> {
    entry["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                id_of(l, "account_code"),
                id_of(l, "direction"),
                id_of(l, "amount_minor"),
            )
        })
        .collect()
}

fn lines(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected
        .iter()
        .map(|(a, d, m)| ((*a).to_owned(), (*d).to_owned(), (*m).to_owned()))
        .collect()
}

async fn lifecycle(audit: &mut Audit<'_>, c: &Caller<'_>, h: &History) -> Lifecycle {
    // After the history: principal 1 000 000, interest 274, fees 2500 (the payment is reversed).
    let settlement = json!({
        "disbursement_event_id": h.disbursement_event,
        "effective_at": "2026-11-02",
        "bank_account_ref": "bank:operating-1",
        "metadata": { "statement": "2026-11" }
    });
    let settled = post_and_replay(audit, c, SETTLEMENTS, &settlement).await;
    assert_eq!(
        settled["disbursement_event_id"],
        h.disbursement_event.as_str()
    );
    assert_eq!(settled["amount_minor"], "1000000");
    assert_eq!(settled["currency"], "USD");

    let waiver = json!({
        "fee_event_id": h.fee_event, "amount_minor": "1000",
        "reason": "goodwill: first fee", "effective_at": "2026-12-03"
    });
    let forgiven = post_and_replay(audit, c, WAIVERS, &waiver).await;
    assert_eq!(forgiven["fee_event_id"], h.fee_event.as_str());
    assert_eq!(forgiven["waived_minor"], "1000");

    // 1500 to fees, 274 to interest, the rest to principal; then all of it comes back.
    let paid = post_and_replay(audit, c, PAYMENTS, &payment_body(h, "2000", "2026-12-04")).await;
    let allocation = json!({
        "fees_minor": "1500", "interest_minor": "274", "principal_minor": "226", "suspense_minor": "0"
    });
    assert_eq!(paid["allocation"], allocation);
    assert_eq!(paid["recovery_minor"], "0");
    let returned_payment_event = id_of(&paid, "payment_event_id");
    let payment_return = json!({
        "payment_event_id": returned_payment_event, "return_reason": "insufficient_funds",
        "return_code": "R01", "effective_at": "2026-12-06", "nsf_fee_minor": "1500",
        "metadata": { "ach_trace": "091000019" }
    });
    let returned = post_and_replay(audit, c, RETURNS, &payment_return).await;
    assert_eq!(
        returned["payment_event_id"],
        returned_payment_event.as_str()
    );
    assert_eq!(returned["returned_allocation"], allocation);
    assert_eq!(returned["nsf_fee_minor"], "1500");

    // Fees are 1500 + the 1500 NSF fee again; this payment stays live.
    let live = post_and_replay(audit, c, PAYMENTS, &payment_body(h, "100", "2026-12-08")).await;
    assert_eq!(live["allocation"]["fees_minor"], "100");

    let charge_off = json!({
        "loan_id": h.loan.to_string(), "effective_at": "2026-12-10", "reason_code": "delinquency"
    });
    let charged = post_and_replay(audit, c, CHARGE_OFFS, &charge_off).await;
    assert_eq!(charged["loan_id"], h.loan.to_string());
    assert_eq!(
        charged["charged_off"],
        json!({ "principal_minor": "1000000", "interest_minor": "274", "fees_minor": "2900" })
    );
    assert_eq!(charged["total_minor"], "1003174");

    // A payment on the charged-off loan is a recovery.
    let recovered =
        post_and_replay(audit, c, PAYMENTS, &payment_body(h, "5000", "2026-12-15")).await;
    assert_eq!(recovered["recovery_minor"], "5000");
    assert_eq!(
        recovered["allocation"],
        json!({
            "fees_minor": "0", "interest_minor": "0", "principal_minor": "0", "suspense_minor": "0"
        })
    );

    let adjustment = json!({
        "effective_at": "2026-12-20",
        "description": "clearing correction: 250 of a payout came back",
        "lines": [
            { "account_code": "1000", "direction": "DR", "amount_minor": "250", "currency": "USD" },
            { "account_code": "2000", "direction": "CR", "amount_minor": "250", "currency": "USD" }
        ],
        "metadata": { "ticket": "ACC7" }
    });
    let adjusted = post_and_replay(audit, c, ADJUSTMENTS, &adjustment).await;
    assert!(adjusted["adjustment_event_id"].is_string(), "{adjusted}");

    Lifecycle {
        settlement_entry: id_of(&settled, "journal_entry_id"),
        waiver_entry: id_of(&forgiven, "journal_entry_id"),
        returned_payment_event,
        return_entry: id_of(&returned, "journal_entry_id"),
        live_payment_event: id_of(&live, "payment_event_id"),
        chargeoff_entry: id_of(&charged, "journal_entry_id"),
        recovery_event: id_of(&recovered, "payment_event_id"),
        recovery_entry: id_of(&recovered, "journal_entry_id"),
        adjustment_entry: id_of(&adjusted, "journal_entry_id"),
    }
}

#[tokio::test]
async fn lifecycle_writes_and_reads_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let c = app.caller(c.tenant, ALL_SCOPES);
    let l = lifecycle(&mut audit, &c, &h).await;
    let loan = h.loan;

    assert_the_charged_off_balances_now_and_the_day_before(&mut audit, &c, loan).await;

    assert_each_lifecycle_entry_reads_back_with_its_lines(&mut audit, &c, &l, &h).await;
    assert_the_adjustment_reads_back_without_a_loan(&mut audit, &c, &l).await;

    // The loan's journal: the history's 5 entries and the 7 lifecycle ones (not the adjustment).
    let all = c
        .get(&format!("/v1/loans/{loan}/journal-entries?page_size=500"))
        .await;
    audit.answer("get", LOAN_ENTRIES, &all, 200);
    assert_eq!(all.json()["items"].as_array().map(Vec::len), Some(12));
    let charge_offs = c
        .get(&format!(
            "/v1/loans/{loan}/journal-entries?event_type=chargeoff"
        ))
        .await;
    audit.answer("get", LOAN_ENTRIES, &charge_offs, 200);
    assert_eq!(
        charge_offs.json()["items"].as_array().map(Vec::len),
        Some(1)
    );

    for query in [
        "4200/balance?currency=USD",
        "5000/balance?currency=USD&as_of_date=2026-12-31",
    ] {
        let a = c.get(&format!("/v1/accounts/{query}")).await;
        audit.answer("get", ACCOUNT_BALANCE, &a, 200);
    }
    let a = c.get(RECONCILIATION).await;
    audit.answer("get", RECONCILIATION, &a, 200);
    assert_eq!(a.json()["ledger_integrity"]["status"], "ok", "{}", a.text);
    audit.finish();
}

/// Charged off: balances written off, the recovery counted; the day before, still active.
async fn assert_the_charged_off_balances_now_and_the_day_before(
    audit: &mut Audit<'_>,
    c: &Caller<'_>,
    loan: Uuid,
) {
    let b = c.get(&format!("/v1/loans/{loan}/balance")).await;
    audit.answer("get", LOAN_BALANCE, &b, 200);
    let b = b.json();
    assert_eq!(b["status"], "charged_off", "{b}");
    for field in [
        "principal_outstanding_minor",
        "interest_receivable_minor",
        "fees_receivable_minor",
        "total_exposure_minor",
    ] {
        assert_eq!(b[field], "0", "{field}: {b}");
    }
    assert_eq!(b["charged_off_minor"], "1003174", "{b}");
    assert_eq!(b["recovered_minor"], "5000", "{b}");
    assert_eq!(b["paid_total_minor"], "5100", "{b}");
    // The day before the charge-off.
    let before = c
        .get(&format!("/v1/loans/{loan}/balance?as_of_date=2026-12-09"))
        .await;
    audit.answer("get", LOAN_BALANCE, &before, 200);
    let before = before.json();
    assert_eq!(before["status"], "active", "{before}");
    assert_eq!(before["principal_outstanding_minor"], "1000000", "{before}");
    assert_eq!(before["fees_receivable_minor"], "2900", "{before}");
    assert_eq!(before["charged_off_minor"], "0", "{before}");
    assert_eq!(before["recovered_minor"], "0", "{before}");
}

/// Every new entry, with its event type and its lines in the order posted.
async fn assert_each_lifecycle_entry_reads_back_with_its_lines(
    audit: &mut Audit<'_>,
    c: &Caller<'_>,
    l: &Lifecycle,
    h: &History,
) {
    let loan = h.loan;
    let expected = [
        (
            &l.settlement_entry,
            "disbursement_settled",
            lines(&[("2000", "DR", "1000000"), ("1000", "CR", "1000000")]),
        ),
        (
            &l.waiver_entry,
            "fee_waived",
            lines(&[("4100", "DR", "1000"), ("1300", "CR", "1000")]),
        ),
        (
            &l.return_entry,
            "payment_returned",
            lines(&[
                ("1000", "CR", "2000"),
                ("1300", "DR", "1500"),
                ("1200", "DR", "274"),
                ("1100", "DR", "226"),
                ("1300", "DR", "1500"),
                ("4100", "CR", "1500"),
            ]),
        ),
        (
            &l.chargeoff_entry,
            "chargeoff",
            lines(&[
                ("5000", "DR", "1000000"),
                ("1100", "CR", "1000000"),
                ("4000", "DR", "274"),
                ("1200", "CR", "274"),
                ("4100", "DR", "2900"),
                ("1300", "CR", "2900"),
            ]),
        ),
        (
            &l.recovery_entry,
            "recovery",
            lines(&[("1000", "DR", "5000"), ("4200", "CR", "5000")]),
        ),
    ];
    for (entry, event_type, entry_lines) in expected {
        let a = c.get(&format!("/v1/journal-entries/{entry}")).await;
        audit.answer("get", ENTRY, &a, 200);
        let read = a.json();
        assert_eq!(read["event_type"], event_type, "{read}");
        assert_eq!(lines_of(&read), entry_lines, "{event_type}: {read}");
        for line in read["lines"].as_array().expect("lines") {
            assert_eq!(line["loan_id"], loan.to_string(), "{event_type}: {line}");
            assert_eq!(line["borrower_id"], h.borrower.to_string(), "{line}");
        }
    }
}

/// The adjustment: the request's lines, no loan, the request's description.
async fn assert_the_adjustment_reads_back_without_a_loan(
    audit: &mut Audit<'_>,
    c: &Caller<'_>,
    l: &Lifecycle,
) {
    let a = c
        .get(&format!("/v1/journal-entries/{}", l.adjustment_entry))
        .await;
    audit.answer("get", ENTRY, &a, 200);
    let adjustment = a.json();
    assert_eq!(adjustment["event_type"], "manual_adjustment");
    assert_eq!(
        adjustment["description"],
        "clearing correction: 250 of a payout came back"
    );
    assert_eq!(
        lines_of(&adjustment),
        lines(&[("1000", "DR", "250"), ("2000", "CR", "250")])
    );
    for line in adjustment["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], Value::Null, "{line}");
    }
}

/// Posts requests that must be refused, as one caller, auditing every answer.
struct Attempts<'x, 'a, 'c> {
    audit: &'x mut Audit<'a>,
    c: &'x Caller<'c>,
}

impl Attempts<'_, '_, '_> {
    /// A well-formed request (the document accepts it) that a business rule refuses.
    async fn refused(&mut self, path: &str, body: &Value, status: u16, code: &str) -> Answer {
        self.audit.request(path, body);
        let a = self.c.post(path, &key("refused"), body).await;
        self.audit.problem("post", path, &a, status, code);
        a
    }

    /// A request the document refuses too: 400 `validation_failed`.
    async fn malformed(&mut self, path: &str, body: &Value) -> Answer {
        assert!(
            !self
                .audit
                .contract
                .request_errors("post", path, body)
                .is_empty(),
            "the document accepts a body POST {path} refuses: {body}"
        );
        let a = self.c.post(path, &key("malformed"), body).await;
        self.audit
            .problem("post", path, &a, 400, "validation_failed");
        a
    }
}

fn reversal_of(entry: &str) -> Value {
    json!({ "reverses_entry_id": entry, "reason_code": "other" })
}

fn settlement_of(event: &str) -> Value {
    json!({ "disbursement_event_id": event, "effective_at": "2026-11-03" })
}

fn return_of(event: &str) -> Value {
    json!({ "payment_event_id": event, "return_reason": "account_closed", "effective_at": "2026-12-21" })
}

fn waiver_of(event: &str) -> Value {
    json!({ "fee_event_id": event, "reason": "goodwill", "effective_at": "2026-12-21" })
}

fn charge_off_of(loan: Uuid) -> Value {
    json!({ "loan_id": loan.to_string(), "effective_at": "2026-12-21", "reason_code": "other" })
}

fn adjustment_of(lines: &[(&str, &str, &str)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(account, direction, amount)| {
            json!({
                "account_code": account, "direction": direction, "amount_minor": amount,
                "currency": "USD"
            })
        })
        .collect();
    json!({ "effective_at": "2026-12-21", "description": "correction", "lines": lines })
}

#[tokio::test]
async fn refused_settlements_and_returns_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let c = app.caller(c.tenant, ALL_SCOPES);
    let l = lifecycle(&mut audit, &c, &h).await;
    let mut t = Attempts {
        audit: &mut audit,
        c: &c,
    };

    // Settlements: once; only of a disbursement; a settled disbursement is not reversible.
    let settled = settlement_of(&h.disbursement_event);
    t.refused(SETTLEMENTS, &settled, 409, "already_settled")
        .await;
    let missing = settlement_of(&uuid().to_string());
    t.refused(SETTLEMENTS, &missing, 404, "not_found").await;
    let fee = settlement_of(&h.fee_event);
    t.refused(SETTLEMENTS, &fee, 404, "not_found").await;
    let mut bad = settlement_of(&h.disbursement_event);
    bad["bank_account_ref"] = json!("operating account");
    let a = t.malformed(SETTLEMENTS, &bad).await;
    assert_eq!(a.error_fields(), ["bank_account_ref"]);
    let blocked = reversal_of(&h.disbursement_entry);
    t.refused(
        REVERSALS,
        &blocked,
        422,
        "reversal_blocked_by_later_activity",
    )
    .await;

    // Returns: once; not of a reversed payment; not of an ordinary payment of a charged-off
    // loan, and no NSF fee on one; only of a payment; a returned payment is not reversible.
    let again = return_of(&l.returned_payment_event);
    t.refused(RETURNS, &again, 409, "already_returned").await;
    let reversed = return_of(&h.payment_event);
    t.refused(RETURNS, &reversed, 422, "event_reversed").await;
    let ordinary = return_of(&l.live_payment_event);
    let a = t.refused(RETURNS, &ordinary, 422, "loan_charged_off").await;
    assert_eq!(a.error_fields(), ["payment_event_id"]);
    let mut with_fee = return_of(&l.recovery_event);
    with_fee["nsf_fee_minor"] = json!("1500");
    let a = t.refused(RETURNS, &with_fee, 422, "loan_charged_off").await;
    assert_eq!(a.error_fields(), ["nsf_fee_minor"]);
    let fee = return_of(&h.fee_event);
    t.refused(RETURNS, &fee, 404, "not_found").await;
    let mut bad = return_of(&l.live_payment_event);
    bad["return_code"] = json!("X01");
    let a = t.malformed(RETURNS, &bad).await;
    assert_eq!(a.error_fields(), ["return_code"]);
    let page = c
        .get(&format!(
            "/v1/loans/{}/journal-entries?event_type=payment_received",
            h.loan
        ))
        .await;
    t.audit.answer("get", LOAN_ENTRIES, &page, 200);
    let returned_entry = page.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["correlation_id"] == l.returned_payment_event.as_str())
        .map(|e| id_of(e, "journal_entry_id"))
        .expect("the returned payment's entry");
    let returned = reversal_of(&returned_entry);
    t.refused(REVERSALS, &returned, 422, "event_returned").await;
    audit.finish();
}

#[tokio::test]
async fn refused_waivers_and_charge_offs_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let c = app.caller(c.tenant, ALL_SCOPES);
    let l = lifecycle(&mut audit, &c, &h).await;
    let loan = h.loan;
    let mut t = Attempts {
        audit: &mut audit,
        c: &c,
    };

    // Waivers: the charge-off left no fees to waive; only of a fee; a waived fee is not
    // reversible.
    let nothing_left = waiver_of(&h.fee_event);
    let a = t
        .refused(WAIVERS, &nothing_left, 422, "waiver_exceeds_outstanding")
        .await;
    assert_eq!(a.error_fields(), ["amount_minor"]);
    let payment = waiver_of(&l.live_payment_event);
    t.refused(WAIVERS, &payment, 404, "not_found").await;
    let mut bad = waiver_of(&h.fee_event);
    bad["reason"] = json!("");
    let a = t.malformed(WAIVERS, &bad).await;
    assert_eq!(a.error_fields(), ["reason"]);
    let waived = reversal_of(&h.fee_entry);
    t.refused(
        REVERSALS,
        &waived,
        422,
        "reversal_blocked_by_later_activity",
    )
    .await;

    // Charge-offs: once; of a loan that exists and owes something; not reversible while a
    // recovery after it is live.
    t.refused(
        CHARGE_OFFS,
        &charge_off_of(loan),
        409,
        "already_charged_off",
    )
    .await;
    let a = t
        .refused(CHARGE_OFFS, &charge_off_of(uuid()), 422, "loan_not_found")
        .await;
    assert_eq!(a.error_fields(), ["loan_id"]);
    let (repaid, borrower, _) = c.open_loan("100").await;
    let payment = json!({
        "loan_id": repaid.to_string(), "borrower_id": borrower.to_string(), "amount_minor": "100",
        "currency": "USD", "effective_at": "2026-11-02", "source_method": "cash"
    });
    post_audited(t.audit, &c, PAYMENTS, &key("pay"), &payment).await;
    let repaid = charge_off_of(repaid);
    t.refused(CHARGE_OFFS, &repaid, 422, "nothing_to_charge_off")
        .await;
    let mut bad = charge_off_of(loan);
    bad["reason_code"] = json!("bad_luck");
    let a = t.malformed(CHARGE_OFFS, &bad).await;
    assert_eq!(a.error_fields(), ["reason_code"]);
    let recovered = reversal_of(&l.chargeoff_entry);
    t.refused(
        REVERSALS,
        &recovered,
        422,
        "reversal_blocked_by_later_activity",
    )
    .await;

    // A charged-off loan takes no disbursement, fee or accrual.
    let disbursement = disbursement_body(loan, h.borrower, "100");
    t.refused(DISBURSEMENTS, &disbursement, 422, "loan_charged_off")
        .await;
    t.refused(FEES, &fee_body(loan), 422, "loan_charged_off")
        .await;
    let accrual = json!({
        "program_id": uuid().to_string(), "accrual_date": "2026-12-22",
        "day_count_convention": "ACT_365",
        "loans": [{
            "loan_id": loan.to_string(), "outstanding_principal_minor": "0", "interest_minor": "1"
        }]
    });
    let a = t.refused(ACCRUALS, &accrual, 422, "loan_charged_off").await;
    assert!(
        a.error_fields().contains(&"loans[0].loan_id".to_owned()),
        "{}",
        a.text
    );
    audit.finish();
}

#[tokio::test]
async fn refused_adjustments_and_missing_scopes_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let c = app.caller(c.tenant, ALL_SCOPES);
    lifecycle(&mut audit, &c, &h).await;
    let mut t = Attempts {
        audit: &mut audit,
        c: &c,
    };

    let unbalanced = adjustment_of(&[("1000", "DR", "10"), ("2000", "CR", "9")]);
    let a = t
        .refused(ADJUSTMENTS, &unbalanced, 422, "entry_unbalanced")
        .await;
    assert_eq!(a.error_fields(), ["lines"]);
    let unknown = adjustment_of(&[("1000", "DR", "10"), ("9999", "CR", "10")]);
    let a = t
        .refused(ADJUSTMENTS, &unknown, 422, "account_not_found")
        .await;
    assert_eq!(a.error_fields(), ["lines[1].account_code"]);
    let control = adjustment_of(&[("1100", "DR", "10"), ("2000", "CR", "10")]);
    let a = t
        .refused(ADJUSTMENTS, &control, 422, "account_not_adjustable")
        .await;
    assert_eq!(a.error_fields(), ["lines[0].account_code"]);
    let zero = adjustment_of(&[("1000", "DR", "0"), ("2000", "CR", "0")]);
    let a = t
        .refused(ADJUSTMENTS, &zero, 422, "amount_must_be_positive")
        .await;
    let mut fields = a.error_fields();
    fields.sort();
    assert_eq!(fields, ["lines[0].amount_minor", "lines[1].amount_minor"]);
    let one_line = adjustment_of(&[("1000", "DR", "10")]);
    let a = t.malformed(ADJUSTMENTS, &one_line).await;
    assert_eq!(a.error_fields(), ["lines"]);
    let direction = adjustment_of(&[("1000", "debit", "10"), ("2000", "CR", "10")]);
    let a = t.malformed(ADJUSTMENTS, &direction).await;
    assert_eq!(a.error_fields(), ["lines[0].direction"]);

    // 403 without the operation's scope, 401 without a token.
    let cashier = app.caller(c.tenant, &["hpts:payments:write", "hpts:fees:write"]);
    let a = cashier
        .post(CHARGE_OFFS, &key("co"), &charge_off_of(h.loan))
        .await;
    audit.problem("post", CHARGE_OFFS, &a, 403, "insufficient_scope");
    let balanced = adjustment_of(&[("1000", "DR", "1"), ("2000", "CR", "1")]);
    let a = cashier.post(ADJUSTMENTS, &key("adj"), &balanced).await;
    audit.problem("post", ADJUSTMENTS, &a, 403, "insufficient_scope");
    let settlement = settlement_of(&h.disbursement_event);
    let a = Answer::from(
        app.post_raw(SETTLEMENTS, None, Some(&key("s")), &settlement)
            .await,
    )
    .await;
    audit.problem("post", SETTLEMENTS, &a, 401, "unauthenticated");
    audit.finish();
}

#[tokio::test]
async fn a_rate_limited_request_answers_what_the_document_says() {
    let app = spawn_app_with(&["--rate-limit-rps", "1", "--rate-limit-burst", "1"]).await;
    let contract = Contract::load(&app).await;
    let mut audit = Audit::new(&contract);
    let c = app.tenant();
    // One token a second: back-to-back requests soon find the bucket empty.
    let mut limited = None;
    for _ in 0..20 {
        let a = c.get(RECONCILIATION).await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        audit.answer("get", RECONCILIATION, &a, 200);
    }
    let limited = limited.expect("no request was rate limited");
    audit.problem("get", RECONCILIATION, &limited, 429, "rate_limited");
    assert!(
        limited.header("retry-after").is_some(),
        "{:?}",
        limited.headers
    );
    audit.finish();
}

// ---------------------------------------------------------------------------------------------
// Month-end (SPEC §6d), for real
// ---------------------------------------------------------------------------------------------

/// The chart's codes, in code order.
const CHART: [&str; 10] = [
    "1000", "1100", "1200", "1300", "2000", "2100", "4000", "4100", "4200", "5000",
];

/// The `{account_code, balance_minor}` of every chart account, in code order: `non_zero` gives
/// the balances that are not `"0"`.
fn closing_accounts(non_zero: &[(&str, &str)]) -> Value {
    CHART
        .iter()
        .map(|code| {
            let balance = non_zero
                .iter()
                .find(|(c, _)| c == code)
                .map_or("0", |(_, b)| *b);
            json!({ "account_code": code, "balance_minor": balance })
        })
        .collect()
}

/// As of 2026-11-15 the history holds its disbursement (2026-11-01) and its fee (2026-11-15).
const CLOSED_THROUGH: &str = "2026-11-15";

fn close_through(date: &str) -> Value {
    json!({ "through_date": date })
}

#[tokio::test]
async fn period_closes_answer_what_the_document_says() {
    scenario!(app, contract, audit, c, _history);
    let c = app.caller(c.tenant, ALL_SCOPES);

    let none = c.get(PERIOD_CLOSES).await;
    audit.answer("get", PERIOD_CLOSES, &none, 200);
    assert_eq!(none.json(), json!({ "lock_date": null, "items": [] }));

    // 201, then the replay: 200 with the identical body.
    let mut body = close_through(CLOSED_THROUGH);
    body["metadata"] = json!({ "closed_by": "controller" });
    let closed = post_and_replay(&mut audit, &c, PERIOD_CLOSES, &body).await;
    assert_eq!(closed["through_date"], CLOSED_THROUGH);
    let usd = closing_accounts(&[
        ("1100", "1000000"),
        ("1300", "2500"),
        ("2000", "1000000"),
        ("4100", "2500"),
    ]);
    assert_eq!(
        closed["trial_balance"],
        json!([{ "currency": "USD", "accounts": usd }])
    );

    let listed = c.get(PERIOD_CLOSES).await;
    audit.answer("get", PERIOD_CLOSES, &listed, 200);
    let listed = listed.json();
    assert_eq!(listed["lock_date"], CLOSED_THROUGH);
    assert_eq!(
        listed["items"],
        json!([{
            "period_close_id": closed["period_close_id"],
            "through_date": CLOSED_THROUGH,
            "closed_at": closed["closed_at"],
        }])
    );

    // Only a day after the lock date, only a past day, only the documented fields.
    let mut t = Attempts {
        audit: &mut audit,
        c: &c,
    };
    for date in [CLOSED_THROUGH, "2026-11-10"] {
        let a = t
            .refused(
                PERIOD_CLOSES,
                &close_through(date),
                409,
                "period_already_closed",
            )
            .await;
        assert_eq!(a.error_fields(), ["through_date"]);
    }
    let a = t
        .refused(
            PERIOD_CLOSES,
            &close_through("2999-12-31"),
            422,
            "close_date_not_past",
        )
        .await;
    assert_eq!(a.error_fields(), ["through_date"]);
    let mut unknown = close_through("2026-11-20");
    unknown["period"] = json!("november");
    let a = t.malformed(PERIOD_CLOSES, &unknown).await;
    assert_eq!(a.error_fields(), ["period"]);

    // Refused access and query, on both methods.
    let reader = app.caller(c.tenant, &["hpts:ledger:read"]);
    let a = reader
        .post(PERIOD_CLOSES, &key("close"), &close_through("2026-11-20"))
        .await;
    audit.problem("post", PERIOD_CLOSES, &a, 403, "insufficient_scope");
    let a = c
        .get(&format!("{PERIOD_CLOSES}?through_date=2026-11-15"))
        .await;
    audit.problem("get", PERIOD_CLOSES, &a, 400, "validation_failed");
    let a = Answer::from(
        app.client
            .put(format!("{}{PERIOD_CLOSES}", app.address))
            .bearer_auth(&c.token)
            .json(&close_through("2026-11-20"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    audit.problem("get", PERIOD_CLOSES, &a, 405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, HEAD, POST"));
    audit.finish();
}

#[tokio::test]
async fn the_period_lock_answers_what_the_document_says() {
    scenario!(app, contract, audit, c, h);
    let c = app.caller(c.tenant, ALL_SCOPES);
    post_audited(
        &mut audit,
        &c,
        PERIOD_CLOSES,
        &key("close"),
        &close_through(CLOSED_THROUGH),
    )
    .await;
    let mut t = Attempts {
        audit: &mut audit,
        c: &c,
    };

    // No write dated on or before the lock date; `errors[]` names the date.
    let mut fee = fee_body(h.loan);
    fee["effective_at"] = json!(CLOSED_THROUGH);
    let a = t.refused(FEES, &fee, 422, "period_closed").await;
    assert_eq!(a.error_fields(), ["effective_at"]);
    let accrual = json!({
        "program_id": uuid().to_string(), "accrual_date": "2026-11-14",
        "day_count_convention": "ACT_365",
        "loans": [{
            "loan_id": h.loan.to_string(), "outstanding_principal_minor": "1000000",
            "interest_minor": "274"
        }]
    });
    let a = t.refused(ACCRUALS, &accrual, 422, "period_closed").await;
    assert_eq!(a.error_fields(), ["accrual_date"]);
    let mut dated = reversal_of(&h.fee_entry);
    dated["effective_at"] = json!(CLOSED_THROUGH);
    let a = t.refused(REVERSALS, &dated, 422, "period_closed").await;
    assert_eq!(a.error_fields(), ["effective_at"]);

    // Without `effective_at`, the fee (dated in the closed period) is reversed on the first
    // open day.
    let reversal = post_audited(
        t.audit,
        &c,
        REVERSALS,
        &key("rev"),
        &reversal_of(&h.fee_entry),
    )
    .await;
    let entry = c
        .get(&format!(
            "/v1/journal-entries/{}",
            id_of(&reversal, "journal_entry_id")
        ))
        .await;
    t.audit.answer("get", ENTRY, &entry, 200);
    assert_eq!(entry.json()["effective_at"], "2026-11-16");

    // The stored trial balance still recomputes unchanged.
    let a = c.get(RECONCILIATION).await;
    t.audit.answer("get", RECONCILIATION, &a, 200);
    let report = a.json();
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "closed_periods_unchanged")
        .unwrap_or_else(|| panic!("no closed_periods_unchanged in {report}"));
    assert_eq!(check["status"], "ok", "{check}");
    audit.finish();
}

#[tokio::test]
async fn the_trial_balance_answers_what_the_document_says() {
    scenario!(app, contract, audit, c, _history);
    let c = app.caller(c.tenant, ALL_SCOPES);

    let a = c
        .get(&format!(
            "{TRIAL_BALANCE}?currency=USD&as_of_date={CLOSED_THROUGH}"
        ))
        .await;
    audit.answer("get", TRIAL_BALANCE, &a, 200);
    let tb = a.json();
    assert_eq!(tb["as_of_date"], CLOSED_THROUGH);
    assert_eq!(tb["currency"], "USD");
    let accounts = tb["accounts"].as_array().expect("accounts");
    let codes: Vec<&str> = accounts
        .iter()
        .map(|a| a["account_code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, CHART);
    assert_eq!(accounts[1]["normal_balance"], "debit");
    assert_eq!(accounts[1]["dr_total_minor"], "1000000");
    assert_eq!(accounts[1]["balance_minor"], "1000000");
    assert_eq!(accounts[4]["normal_balance"], "credit");
    assert_eq!(accounts[4]["cr_total_minor"], "1000000");
    assert_eq!(accounts[4]["balance_minor"], "1000000");
    assert_eq!(
        (
            &tb["dr_total_minor"],
            &tb["cr_total_minor"],
            &tb["balanced"]
        ),
        (&json!("1002500"), &json!("1002500"), &json!(true))
    );

    // A period close stores exactly these balances.
    let closed = post_and_replay(
        &mut audit,
        &c,
        PERIOD_CLOSES,
        &close_through(CLOSED_THROUGH),
    )
    .await;
    let read: Vec<Value> = accounts
        .iter()
        .map(|a| json!({ "account_code": a["account_code"], "balance_minor": a["balance_minor"] }))
        .collect();
    assert_eq!(closed["trial_balance"][0]["accounts"], json!(read));

    // Today (the default), the whole history, and a currency the tenant never used.
    for query in [
        "currency=USD",
        "currency=USD&as_of_date=2026-12-31",
        "currency=EUR",
    ] {
        let a = c.get(&format!("{TRIAL_BALANCE}?{query}")).await;
        audit.answer("get", TRIAL_BALANCE, &a, 200);
        assert_eq!(a.json()["balanced"], true, "{query}: {}", a.text);
    }

    // 400: a missing or unknown currency, a bad date, an unknown parameter; 403 without the
    // scope.
    for (query, field) in [
        ("", "currency"),
        ("?currency=ABC", "currency"),
        ("?currency=USD&as_of_date=2026-02-30", "as_of_date"),
        ("?currency=USD&layer=SETTLED", "layer"),
    ] {
        let a = c.get(&format!("{TRIAL_BALANCE}{query}")).await;
        audit.problem("get", TRIAL_BALANCE, &a, 400, "validation_failed");
        assert_eq!(a.error_fields(), [field], "{query}");
    }
    let reader = app.caller(c.tenant, &["hpts:ledger:read"]);
    let a = reader.get(&format!("{TRIAL_BALANCE}?currency=USD")).await;
    audit.problem("get", TRIAL_BALANCE, &a, 403, "insufficient_scope");
    audit.finish();
}
