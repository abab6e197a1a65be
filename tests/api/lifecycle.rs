//! Loan lifecycle writes (SPEC §6c and the issue-14 wire decisions): disbursement settlements,
//! payment returns, fee waivers, charge-offs with their recoveries, and manual adjustments. For
//! each: the exact lines in posting order, the response shape, the loan and GL balances after,
//! idempotent replay, every refusal, scope and tenant isolation; then the reversal rules that tie
//! them together, and one whole loan life that stays reconciled (over the API and by
//! `hpts verify`) after every step.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::accruals::accrual_body;
use crate::fees::fee_body;
use crate::helpers::{
    Answer, Caller, LOAN_BALANCE_KEYS, TestApp, assert_keys, assert_verify_passes, created,
    disbursement_body, key, minor, spawn_app, text, uuid,
};
use crate::payments::{
    Owed, assert_problem, balance, entry, entry_lines, ledger_state, lines_of, owed, payment_body,
    scopes_without,
};

// The dates of a loan's life, in order. The shared bodies disburse on 2026-11-01, assess fees on
// 2026-11-10 and receive payments on 2026-11-15.
const SETTLED_ON: &str = "2026-11-02";
const ACCRUED_ON: &str = "2026-11-14";
const RETURNED_ON: &str = "2026-11-18";
const WAIVED_ON: &str = "2026-11-19";
const CHARGED_OFF_ON: &str = "2026-11-25";
const RECOVERED_ON: &str = "2026-11-28";
const RECOVERY_RETURNED_ON: &str = "2026-11-29";

const SETTLEMENT_KEYS: [&str; 6] = [
    "settlement_event_id",
    "journal_entry_id",
    "disbursement_event_id",
    "amount_minor",
    "currency",
    "posted_at",
];
const RETURN_KEYS: [&str; 6] = [
    "return_event_id",
    "journal_entry_id",
    "payment_event_id",
    "returned_allocation",
    "nsf_fee_minor",
    "posted_at",
];
const WAIVER_KEYS: [&str; 5] = [
    "waiver_event_id",
    "journal_entry_id",
    "fee_event_id",
    "waived_minor",
    "posted_at",
];
const CHARGE_OFF_KEYS: [&str; 6] = [
    "chargeoff_event_id",
    "journal_entry_id",
    "loan_id",
    "charged_off",
    "total_minor",
    "posted_at",
];
const ADJUSTMENT_KEYS: [&str; 3] = ["adjustment_event_id", "journal_entry_id", "posted_at"];
const PAYMENT_KEYS: [&str; 5] = [
    "payment_event_id",
    "journal_entry_id",
    "allocation",
    "recovery_minor",
    "posted_at",
];

// ---------------------------------------------------------------------------------------------
// Bodies.

/// A valid settlement body.
fn settlement_body(disbursement_event_id: &str) -> Value {
    json!({
        "disbursement_event_id": disbursement_event_id,
        "effective_at": SETTLED_ON,
        "bank_account_ref": "bank:operating-01",
        "metadata": { "batch": "ach-2026-11-02" }
    })
}

/// A valid payment return body without an NSF fee.
fn return_body(payment_event_id: &str) -> Value {
    json!({
        "payment_event_id": payment_event_id,
        "return_reason": "insufficient_funds",
        "return_code": "R01",
        "effective_at": RETURNED_ON,
        "metadata": { "trace": "091000019" }
    })
}

/// A valid payment return body charging an NSF fee.
fn return_with_fee(payment_event_id: &str, nsf_fee: &str) -> Value {
    let mut body = return_body(payment_event_id);
    body["nsf_fee_minor"] = json!(nsf_fee);
    body
}

/// A valid fee waiver body (the whole waivable amount without `amount`).
fn waiver_body(fee_event_id: &str, amount: Option<&str>) -> Value {
    let mut body = json!({
        "fee_event_id": fee_event_id,
        "reason": "goodwill: first late payment",
        "effective_at": WAIVED_ON,
        "metadata": { "approved_by": "ops-lead" }
    });
    if let Some(amount) = amount {
        body["amount_minor"] = json!(amount);
    }
    body
}

/// A valid charge-off body.
fn charge_off_body(loan: Uuid) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "effective_at": CHARGED_OFF_ON,
        "reason_code": "delinquency",
        "metadata": { "committee": "2026-11" }
    })
}

/// A valid adjustment body of `(account_code, direction, amount_minor)` USD lines.
fn adjustment_body(lines: &[(&str, &str, &str)]) -> Value {
    let lines: Vec<(&str, &str, &str, &str)> =
        lines.iter().map(|(a, d, m)| (*a, *d, *m, "USD")).collect();
    adjustment_body_in(&lines)
}

/// A valid adjustment body of `(account_code, direction, amount_minor, currency)` lines.
fn adjustment_body_in(lines: &[(&str, &str, &str, &str)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(account, direction, amount, currency)| {
            json!({
                "account_code": account,
                "direction": direction,
                "amount_minor": amount,
                "currency": currency,
            })
        })
        .collect();
    json!({
        "effective_at": "2026-11-20",
        "description": "November bank charges",
        "lines": lines,
        "metadata": { "ticket": "FIN-77" }
    })
}

/// A payment body dated after the charge-off (a recovery once the loan is charged off).
fn recovery_body(loan: &Loan, amount: &str) -> Value {
    let mut body = payment_body(loan.id, loan.borrower, amount);
    body["effective_at"] = json!(RECOVERED_ON);
    body
}

/// A reversal body.
fn reversal_body(entry_id: &str) -> Value {
    json!({
        "reverses_entry_id": entry_id,
        "reason_code": "error_correction",
        "reason_description": "unwinding in order"
    })
}

/// An allocation object.
fn parts(fees: i64, interest: i64, principal: i64, suspense: i64) -> Value {
    json!({
        "fees_minor": fees.to_string(),
        "interest_minor": interest.to_string(),
        "principal_minor": principal.to_string(),
        "suspense_minor": suspense.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Answers, entries and balances.

/// Asserts the ids and `posted_at` of a write response: lowercase version-7 UUIDs, RFC 3339 UTC.
fn assert_receipt(v: &Value, ids: &[&str]) {
    for field in ids {
        let id = text(v, field);
        let parsed = Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{field} ({e}): {v}"));
        assert_eq!(parsed.get_version_num(), 7, "{field}: {v}");
        assert_eq!(id, id.to_lowercase(), "{field}: {v}");
    }
    let posted_at = text(v, "posted_at");
    assert!(
        posted_at.contains('T') && posted_at.ends_with('Z'),
        "{posted_at}"
    );
}

/// Asserts a refusal: status, `code` and, when given, exactly these `errors[].field`s.
fn assert_refused(a: &Answer, status: u16, code: &str, fields: &[&str]) {
    assert_problem(a, status, code);
    if !fields.is_empty() {
        assert_eq!(a.error_fields(), fields, "{}", a.text);
    }
}

/// An entry's lines in `sequence` order as `(account, direction, amount)`, asserting the
/// sequences are exactly 1..=n.
fn sequenced(entry: &Value) -> Vec<(String, String, String)> {
    let mut lines: Vec<&Value> = entry["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {entry}"))
        .iter()
        .collect();
    lines.sort_by_key(|l| {
        l["sequence"]
            .as_i64()
            .unwrap_or_else(|| panic!("no sequence: {l}"))
    });
    let sequences: Vec<i64> = lines
        .iter()
        .map(|l| l["sequence"].as_i64().unwrap_or_default())
        .collect();
    let expected: Vec<i64> = (1..=i64::try_from(lines.len()).expect("few lines")).collect();
    assert_eq!(sequences, expected, "{entry}");
    lines
        .iter()
        .map(|l| {
            let s = |f: &str| {
                l[f].as_str()
                    .unwrap_or_else(|| panic!("{f} missing: {l}"))
                    .to_owned()
            };
            (s("account_code"), s("direction"), s("amount_minor"))
        })
        .collect()
}

/// Lines in the order given, for comparing with [`sequenced`].
fn in_order(lines: &[(&str, &str, i64)]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .map(|(a, d, m)| ((*a).to_owned(), (*d).to_owned(), m.to_string()))
        .collect()
}

/// The sorted lines of `entry` with every direction flipped: what its reversal posts.
fn mirrored(entry: &Value) -> Vec<(String, String, String)> {
    let mut lines: Vec<(String, String, String)> = lines_of(entry)
        .into_iter()
        .map(|(account, direction, amount)| {
            let flipped = if direction == "DR" { "CR" } else { "DR" };
            (account, flipped.to_owned(), amount)
        })
        .collect();
    lines.sort();
    lines
}

/// Asserts every line of `entry` is USD and carries the loan and its borrower.
fn assert_on_loan(entry: &Value, loan: &Loan) {
    for line in entry["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], loan.id.to_string().as_str(), "{line}");
        assert_eq!(
            line["borrower_id"],
            loan.borrower.to_string().as_str(),
            "{line}"
        );
        assert_eq!(line["currency"], "USD", "{line}");
    }
}

/// The journal entry a write response names.
async fn entry_of(c: &Caller<'_>, receipt: &Value) -> Value {
    entry(c, &text(receipt, "journal_entry_id")).await
}

/// The normal-side balance of a USD GL account.
async fn gl(c: &Caller<'_>, code: &str) -> i64 {
    gl_in(c, code, "USD").await
}

/// The normal-side balance of a GL account in `currency`.
async fn gl_in(c: &Caller<'_>, code: &str, currency: &str) -> i64 {
    let a = c.get_account_balance(code, currency).await;
    assert_eq!(a.status, 200, "{code} {currency}: {}", a.text);
    let b = a.json();
    assert_eq!(b["account_code"], code, "{b}");
    minor(&b, "normal_balance_minor")
}

/// Asserts the normal-side balance of each USD account.
async fn assert_gl(c: &Caller<'_>, expected: &[(&str, i64)]) {
    for (code, amount) in expected {
        assert_eq!(gl(c, code).await, *amount, "GL account {code}");
    }
}

/// What §6c adds to a loan's balance: status, written off, recovered, and total exposure.
#[derive(Debug, PartialEq, Eq)]
struct Standing {
    status: String,
    charged_off: i64,
    recovered: i64,
    exposure: i64,
}

impl Standing {
    fn active(exposure: i64) -> Self {
        Standing {
            status: "active".to_owned(),
            charged_off: 0,
            recovered: 0,
            exposure,
        }
    }

    fn charged_off(charged_off: i64, recovered: i64) -> Self {
        Standing {
            status: "charged_off".to_owned(),
            charged_off,
            recovered,
            exposure: 0,
        }
    }

    fn of(b: &Value) -> Self {
        Standing {
            status: text(b, "status"),
            charged_off: minor(b, "charged_off_minor"),
            recovered: minor(b, "recovered_minor"),
            exposure: minor(b, "total_exposure_minor"),
        }
    }
}

/// The loan's standing now.
async fn standing(c: &Caller<'_>, loan: Uuid) -> Standing {
    Standing::of(&balance(c, loan).await)
}

/// The loan's standing as of a past date.
async fn standing_as_of(c: &Caller<'_>, loan: Uuid, date: &str) -> Standing {
    let a = c
        .get(&format!("/v1/loans/{loan}/balance?as_of_date={date}"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    Standing::of(&a.json())
}

/// The event id of the tenant's (only) reversal: a reversal's own event is not on the wire.
fn reversal_event_id(app: &TestApp, tenant: Uuid) -> String {
    app.db()
        .query_row(
            "SELECT event_id FROM events WHERE tenant_id = ?1 AND event_type = 'reversal'",
            [tenant.to_string()],
            |r| r.get(0),
        )
        .expect("a reversal event")
}

/// The tenant's reconciliation is 200: integrity ok, every check ok, roll-up ok.
async fn assert_reconciled(c: &Caller<'_>, step: &str) {
    let a = c.get("/v1/reconciliation/status").await;
    assert_eq!(a.status, 200, "{step}: {}", a.text);
    let report = a.json();
    assert_eq!(
        report["ledger_integrity"]["status"], "ok",
        "{step}: {report}"
    );
    assert_eq!(
        report["ledger_integrity"]["mismatched_account_count"], 0,
        "{step}: {report}"
    );
    let checks = report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{step}: no checks: {report}"));
    assert!(!checks.is_empty(), "{step}: {report}");
    for check in checks {
        assert_eq!(check["status"], "ok", "{step}: {check}");
    }
    assert_eq!(
        report["portfolio_rollup"]["status"], "ok",
        "{step}: {report}"
    );
}

/// Reconciled over the API and by `hpts verify`.
async fn assert_books_clean(app: &TestApp, c: &Caller<'_>, step: &str) {
    assert_reconciled(c, step).await;
    assert_verify_passes(app, step);
}

/// First answer 201; the same key and body again 200 with `Idempotent-Replayed: true` and the
/// identical body, writing nothing; the same key with `other` 422 `idempotency_mismatch`.
async fn assert_replay_writes_nothing(
    app: &TestApp,
    c: &Caller<'_>,
    path: &str,
    body: &Value,
    other: &Value,
) {
    let k = key("replay");
    let first = c.post(path, &k, body).await;
    created(&first);
    let before = ledger_state(app);

    let replay = c.post(path, &k, body).await;

    assert_eq!(replay.status, 200, "{path}: {}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"), "{path}");
    assert_eq!(replay.text, first.text, "{path}");
    assert_eq!(ledger_state(app), before, "{path}");
    let mismatch = c.post(path, &k, other).await;
    assert_refused(&mismatch, 422, "idempotency_mismatch", &[]);
    assert_eq!(ledger_state(app), before, "{path}");
}

/// Posts `body` with `field` set to each value, asserting a 400 naming exactly that field; then
/// without each required field. Nothing is written.
async fn assert_each_field_rule(
    app: &TestApp,
    c: &Caller<'_>,
    path: &str,
    body: &Value,
    cases: Vec<(&str, Value)>,
    required: &[&str],
) {
    let before = ledger_state(app);
    for (field, value) in cases {
        let mut bad = body.clone();
        bad[field] = value.clone();

        let a = c.post(path, &key("field"), &bad).await;

        assert_eq!(a.status, 400, "{path} {field} = {value}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{path} {field} = {value}");
        assert_eq!(
            a.error_fields(),
            [field],
            "{path} {field} = {value}: {}",
            a.text
        );
    }
    for field in required {
        let mut bad = body.clone();
        bad.as_object_mut().expect("object").remove(*field);

        let a = c.post(path, &key("field"), &bad).await;

        assert_eq!(a.status, 400, "{path} without {field}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{path} without {field}");
        assert_eq!(
            a.error_fields(),
            [*field],
            "{path} without {field}: {}",
            a.text
        );
    }
    assert_eq!(ledger_state(app), before, "{path}");
}

// ---------------------------------------------------------------------------------------------
// Set-up.

/// A loan opened by one USD disbursement on 2026-11-01.
struct Loan {
    id: Uuid,
    borrower: Uuid,
    disbursement: Value,
}

impl Loan {
    fn disbursement_event(&self) -> String {
        text(&self.disbursement, "disbursement_event_id")
    }

    fn disbursement_entry(&self) -> String {
        text(&self.disbursement, "journal_entry_id")
    }
}

async fn open(c: &Caller<'_>, amount: &str) -> Loan {
    let (id, borrower, disbursement) = c.open_loan(amount).await;
    Loan {
        id,
        borrower,
        disbursement,
    }
}

async fn assess(c: &Caller<'_>, loan: &Loan, amount: &str) -> Value {
    created(&c.post_fee(&key("fee"), &fee_body(loan.id, amount)).await)
}

async fn accrue(c: &Caller<'_>, loan: &Loan, principal: i64, interest: i64) -> Value {
    created(
        &c.post_accruals(
            &key("accrual"),
            &accrual_body(ACCRUED_ON, &[(loan.id, principal, interest)]),
        )
        .await,
    )
}

async fn pay(c: &Caller<'_>, loan: &Loan, amount: &str) -> Value {
    created(
        &c.post_payment(&key("pay"), &payment_body(loan.id, loan.borrower, amount))
            .await,
    )
}

async fn recover(c: &Caller<'_>, loan: &Loan, amount: &str) -> Value {
    created(
        &c.post_payment(&key("pay"), &recovery_body(loan, amount))
            .await,
    )
}

async fn settle(c: &Caller<'_>, loan: &Loan) -> Value {
    created(
        &c.post_settlement(&key("settle"), &settlement_body(&loan.disbursement_event()))
            .await,
    )
}

async fn return_payment(c: &Caller<'_>, body: &Value) -> Value {
    created(&c.post_payment_return(&key("return"), body).await)
}

async fn waive(c: &Caller<'_>, fee: &Value, amount: Option<&str>) -> Value {
    created(
        &c.post_fee_waiver(
            &key("waive"),
            &waiver_body(&text(fee, "fee_event_id"), amount),
        )
        .await,
    )
}

async fn charge_off(c: &Caller<'_>, loan: &Loan) -> Value {
    created(
        &c.post_charge_off(&key("chargeoff"), &charge_off_body(loan.id))
            .await,
    )
}

async fn reverse(c: &Caller<'_>, entry_id: &str) -> Answer {
    c.post_reversal(&key("rev"), &reversal_body(entry_id)).await
}

/// Reverses the entry a write response names (asserting 201); returns the reversal's body.
async fn reversed(c: &Caller<'_>, receipt: &Value) -> Value {
    created(&reverse(c, &text(receipt, "journal_entry_id")).await)
}

/// Posts `body(id)` to `path` for each (what, id): every one is 404 `not_found`.
async fn assert_each_not_found(
    c: &Caller<'_>,
    path: &str,
    body: fn(&str) -> Value,
    ids: &[(&str, String)],
) {
    for (what, id) in ids {
        let a = c.post(path, &key("not-found"), &body(id)).await;

        assert_eq!(a.status, 404, "{what}: {}", a.text);
        assert_eq!(a.code(), "not_found", "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/disbursement-settlements.

#[tokio::test]
async fn a_settlement_moves_the_disbursed_amount_from_clearing_to_cash_and_leaves_the_loan_alone() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "250000").await;
    let more = created(
        &c.post_disbursement(
            &key("disb"),
            &disbursement_body(loan.id, loan.borrower, "5000"),
        )
        .await,
    );
    let owed_before = owed(&c, loan.id).await;

    let a = c
        .post_settlement(&key("settle"), &settlement_body(&loan.disbursement_event()))
        .await;

    let body = created(&a);
    assert_keys(&body, &SETTLEMENT_KEYS);
    assert_receipt(&body, &["settlement_event_id", "journal_entry_id"]);
    assert_eq!(
        body["disbursement_event_id"],
        loan.disbursement["disbursement_event_id"]
    );
    assert_eq!(body["amount_minor"], "250000");
    assert_eq!(body["currency"], "USD");
    let e = entry_of(&c, &body).await;
    assert_eq!(e["event_type"], "disbursement_settled");
    assert_eq!(e["correlation_id"], body["settlement_event_id"]);
    assert_eq!(e["effective_at"], SETTLED_ON);
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(e["metadata"], json!({ "batch": "ach-2026-11-02" }));
    assert_eq!(
        sequenced(&e),
        in_order(&[("2000", "DR", 250_000), ("1000", "CR", 250_000)])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(owed(&c, loan.id).await, owed_before);
    assert_eq!(standing(&c, loan.id).await, Standing::active(255_000));
    assert_gl(&c, &[("1000", -250_000), ("1100", 255_000), ("2000", 5000)]).await;
    let listed = c
        .get(&format!(
            "/v1/loans/{}/journal-entries?event_type=disbursement_settled",
            loan.id
        ))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["journal_entry_id"], body["journal_entry_id"]);

    // The second disbursement settles on its own, for its own amount.
    let second = created(
        &c.post_settlement(
            &key("settle"),
            &settlement_body(&text(&more, "disbursement_event_id")),
        )
        .await,
    );
    assert_eq!(second["amount_minor"], "5000");
    assert_gl(&c, &[("1000", -255_000), ("2000", 0)]).await;
    assert_reconciled(&c, "settled").await;
}

#[tokio::test]
async fn replaying_a_settlement_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let body = settlement_body(&loan.disbursement_event());
    let mut other = body.clone();
    other["bank_account_ref"] = json!("bank:operating-02");

    assert_replay_writes_nothing(&app, &c, "/v1/disbursement-settlements", &body, &other).await;

    assert_gl(&c, &[("1000", -1000), ("2000", 0)]).await;
}

#[tokio::test]
async fn a_disbursement_settles_only_once() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    settle(&c, &loan).await;
    let before = ledger_state(&app);
    let mut again = settlement_body(&loan.disbursement_event());
    again["effective_at"] = json!("2026-11-03");

    let a = c.post_settlement(&key("settle"), &again).await;

    assert_refused(&a, 409, "already_settled", &[]);
    assert_eq!(ledger_state(&app), before);
    assert_gl(&c, &[("1000", -1000), ("2000", 0)]).await;
}

#[tokio::test]
async fn a_reversed_disbursement_cannot_settle() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    reversed(&c, &loan.disbursement).await;
    let before = ledger_state(&app);

    let a = c
        .post_settlement(&key("settle"), &settlement_body(&loan.disbursement_event()))
        .await;

    assert_refused(&a, 422, "event_reversed", &[]);
    assert_eq!(ledger_state(&app), before);
    assert_gl(&c, &[("1000", 0), ("2000", 0)]).await;
}

#[tokio::test]
async fn a_settled_disbursement_is_reversed_only_after_its_settlement_which_lets_it_settle_again() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let settlement = settle(&c, &loan).await;
    let settlement_entry = entry_of(&c, &settlement).await;
    let before = ledger_state(&app);

    let blocked = reverse(&c, &loan.disbursement_entry()).await;

    assert_refused(&blocked, 422, "reversal_blocked_by_later_activity", &[]);
    assert_eq!(ledger_state(&app), before);

    let undone = reversed(&c, &settlement).await;
    assert_eq!(undone["correlation_id"], settlement["settlement_event_id"]);
    assert_eq!(
        entry_lines(&c, &text(&undone, "journal_entry_id")).await,
        mirrored(&settlement_entry)
    );
    assert_gl(&c, &[("1000", 0), ("2000", 1000)]).await;
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );

    // It settles again; that live settlement blocks the reversal again until it is reversed.
    let again = settle(&c, &loan).await;
    assert_ne!(
        again["settlement_event_id"],
        settlement["settlement_event_id"]
    );
    assert_eq!(again["amount_minor"], "1000");
    let blocked = reverse(&c, &loan.disbursement_entry()).await;
    assert_refused(&blocked, 422, "reversal_blocked_by_later_activity", &[]);
    reversed(&c, &again).await;
    reversed(&c, &loan.disbursement).await;

    assert_eq!(owed(&c, loan.id).await, Owed::default());
    assert_gl(&c, &[("1000", 0), ("1100", 0), ("2000", 0)]).await;
    assert_reconciled(&c, "unwound").await;
}

#[tokio::test]
async fn a_settlement_of_an_unknown_foreign_or_non_disbursement_event_is_not_found() {
    let app = spawn_app().await;
    let (c, other) = (app.tenant(), app.tenant());
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "100").await;
    let payment = pay(&c, &loan, "50").await;
    let late_fee = assess(&c, &loan, "10").await;
    reversed(&c, &late_fee).await;
    let foreign = open(&other, "1000").await;
    let before = ledger_state(&app);

    let wrong = [
        ("an unknown id", uuid().to_string()),
        (
            "another tenant's disbursement",
            foreign.disbursement_event(),
        ),
        ("a fee", text(&fee, "fee_event_id")),
        ("a payment", text(&payment, "payment_event_id")),
        ("a reversal's event", reversal_event_id(&app, c.tenant)),
        ("a journal entry id", loan.disbursement_entry()),
    ];
    assert_each_not_found(&c, "/v1/disbursement-settlements", settlement_body, &wrong).await;

    assert_eq!(ledger_state(&app), before);
    // The other tenant's disbursement was not touched: it still settles.
    settle(&other, &foreign).await;
}

#[tokio::test]
async fn a_settlement_dated_before_its_disbursement_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let mut later = disbursement_body(loan.id, loan.borrower, "500");
    later["effective_at"] = json!("2026-11-05");
    let later = created(&c.post_disbursement(&key("disb"), &later).await);
    let mut body = settlement_body(&text(&later, "disbursement_event_id"));
    body["effective_at"] = json!("2026-11-04");
    let before = ledger_state(&app);

    let a = c.post_settlement(&key("settle"), &body).await;

    assert_refused(&a, 422, "effective_before_original", &["effective_at"]);
    assert_eq!(ledger_state(&app), before);
    body["effective_at"] = json!("2026-11-05");
    let same_day = created(&c.post_settlement(&key("settle"), &body).await);
    assert_eq!(same_day["amount_minor"], "500");
}

#[tokio::test]
async fn each_invalid_settlement_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let bare = open(&c, "2000").await;
    let body = settlement_body(&loan.disbursement_event());
    let cases: Vec<(&str, Value)> = vec![
        ("disbursement_event_id", json!("disbursement-1")),
        ("disbursement_event_id", json!(7)),
        ("effective_at", json!("2026-02-30")),
        ("effective_at", json!("02/11/2026")),
        ("bank_account_ref", json!("")),
        ("bank_account_ref", json!("a".repeat(65))),
        ("bank_account_ref", json!("acct #1")),
        ("bank_account_ref", json!("bank/01")),
        ("bank_account_ref", json!(12)),
        ("metadata", json!("not an object")),
        ("amount_minor", json!("1000")),
    ];

    assert_each_field_rule(
        &app,
        &c,
        "/v1/disbursement-settlements",
        &body,
        cases,
        &["disbursement_event_id", "effective_at"],
    )
    .await;

    let mut longest = body.clone();
    longest["bank_account_ref"] = json!(format!("A.z_0:-{}", "9".repeat(57)));
    created(&c.post_settlement(&key("settle"), &longest).await);
    let mut without = settlement_body(&bare.disbursement_event());
    let object = without.as_object_mut().expect("object");
    object.remove("bank_account_ref");
    object.remove("metadata");
    created(&c.post_settlement(&key("settle"), &without).await);
}

// ---------------------------------------------------------------------------------------------
// POST /v1/payment-returns.

#[tokio::test]
async fn a_return_credits_cash_and_debits_back_each_part_of_the_payment_then_the_nsf_fee() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    assess(&c, &loan, "100").await;
    accrue(&c, &loan, 1000, 50).await;
    let payment = pay(&c, &loan, "1200").await;
    assert_eq!(payment["allocation"], parts(100, 50, 1000, 50));

    let a = c
        .post_payment_return(
            &key("return"),
            &return_with_fee(&text(&payment, "payment_event_id"), "2500"),
        )
        .await;

    let body = created(&a);
    assert_keys(&body, &RETURN_KEYS);
    assert_receipt(&body, &["return_event_id", "journal_entry_id"]);
    assert_eq!(body["payment_event_id"], payment["payment_event_id"]);
    assert_eq!(body["returned_allocation"], parts(100, 50, 1000, 50));
    assert_eq!(body["nsf_fee_minor"], "2500");
    let e = entry_of(&c, &body).await;
    assert_eq!(e["event_type"], "payment_returned");
    assert_eq!(e["correlation_id"], body["return_event_id"]);
    assert_eq!(e["effective_at"], RETURNED_ON);
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(e["metadata"], json!({ "trace": "091000019" }));
    assert_eq!(
        sequenced(&e),
        in_order(&[
            ("1000", "CR", 1200),
            ("1300", "DR", 100),
            ("1200", "DR", 50),
            ("1100", "DR", 1000),
            ("2100", "DR", 50),
            ("1300", "DR", 2500),
            ("4100", "CR", 2500),
        ])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            interest: 50,
            fees: 2600,
            suspense: 0,
            disbursed: 1000,
            paid: 0
        }
    );
    assert_eq!(standing(&c, loan.id).await, Standing::active(3650));
    assert_gl(
        &c,
        &[
            ("1000", 0),
            ("1100", 1000),
            ("1200", 50),
            ("1300", 2600),
            ("2100", 0),
            ("4000", 50),
            ("4100", 2600),
        ],
    )
    .await;
    assert_reconciled(&c, "returned").await;
}

#[tokio::test]
async fn a_return_without_an_nsf_fee_debits_back_only_the_parts_the_payment_paid() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    let mut body = return_body(&text(&payment, "payment_event_id"));
    body["return_reason"] = json!("account_closed");
    body.as_object_mut().expect("object").remove("return_code");

    let returned = return_payment(&c, &body).await;

    assert_keys(&returned, &RETURN_KEYS);
    assert_eq!(returned["returned_allocation"], parts(0, 0, 400, 0));
    assert_eq!(returned["nsf_fee_minor"], "0");
    let e = entry_of(&c, &returned).await;
    assert_eq!(
        sequenced(&e),
        in_order(&[("1000", "CR", 400), ("1100", "DR", 400)])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1000", 0), ("1100", 1000)]).await;
}

#[tokio::test]
async fn replaying_a_payment_return_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    let body = return_with_fee(&text(&payment, "payment_event_id"), "25");
    let mut other = body.clone();
    other["return_code"] = json!("R02");

    assert_replay_writes_nothing(&app, &c, "/v1/payment-returns", &body, &other).await;

    assert_eq!(owed(&c, loan.id).await.fees, 25);
}

#[tokio::test]
async fn a_payment_is_returned_only_once() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    let body = return_body(&text(&payment, "payment_event_id"));
    return_payment(&c, &body).await;
    let before = ledger_state(&app);
    let mut again = body.clone();
    again["return_reason"] = json!("stopped");

    let a = c.post_payment_return(&key("return"), &again).await;

    assert_refused(&a, 409, "already_returned", &[]);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, loan.id).await.principal, 1000);
}

#[tokio::test]
async fn a_reversed_payment_cannot_be_returned() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    reversed(&c, &payment).await;
    let before = ledger_state(&app);

    let a = c
        .post_payment_return(
            &key("return"),
            &return_body(&text(&payment, "payment_event_id")),
        )
        .await;

    assert_refused(&a, 422, "event_reversed", &[]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_returned_payment_is_reversed_only_after_its_return_which_lets_it_be_returned_again() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    assess(&c, &loan, "100").await;
    let payment = pay(&c, &loan, "600").await;
    let payment_id = text(&payment, "payment_event_id");
    let returned = return_payment(&c, &return_with_fee(&payment_id, "300")).await;
    let return_entry = entry_of(&c, &returned).await;
    let before = ledger_state(&app);

    let blocked = reverse(&c, &text(&payment, "journal_entry_id")).await;

    assert_refused(&blocked, 422, "event_returned", &[]);
    assert_eq!(ledger_state(&app), before);

    let undone = reversed(&c, &returned).await;
    assert_eq!(undone["correlation_id"], returned["return_event_id"]);
    assert_eq!(
        entry_lines(&c, &text(&undone, "journal_entry_id")).await,
        mirrored(&return_entry)
    );
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 500,
            disbursed: 1000,
            paid: 600,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1000", 600), ("1300", 0), ("4100", 100)]).await;

    // Returned again; that live return blocks the reversal again until it is reversed too.
    let again = return_payment(&c, &return_body(&payment_id)).await;
    assert_eq!(again["returned_allocation"], parts(100, 0, 500, 0));
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            fees: 100,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    let blocked = reverse(&c, &text(&payment, "journal_entry_id")).await;
    assert_refused(&blocked, 422, "event_returned", &[]);
    reversed(&c, &again).await;
    reversed(&c, &payment).await;

    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            fees: 100,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1000", 0), ("1100", 1000), ("1300", 100)]).await;
    assert_reconciled(&c, "unwound").await;
}

#[tokio::test]
async fn a_return_of_an_unknown_foreign_or_non_payment_event_is_not_found() {
    let app = spawn_app().await;
    let (c, other) = (app.tenant(), app.tenant());
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "100").await;
    let payment = pay(&c, &loan, "50").await;
    let late_fee = assess(&c, &loan, "10").await;
    reversed(&c, &late_fee).await;
    let foreign = open(&other, "1000").await;
    let foreign_payment = pay(&other, &foreign, "100").await;
    let before = ledger_state(&app);

    let wrong = [
        ("an unknown id", uuid().to_string()),
        (
            "another tenant's payment",
            text(&foreign_payment, "payment_event_id"),
        ),
        ("a fee", text(&fee, "fee_event_id")),
        ("a disbursement", loan.disbursement_event()),
        ("a reversal's event", reversal_event_id(&app, c.tenant)),
        ("a journal entry id", text(&payment, "journal_entry_id")),
    ];
    assert_each_not_found(&c, "/v1/payment-returns", return_body, &wrong).await;

    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&other, foreign.id).await.paid, 100);
    return_payment(
        &other,
        &return_body(&text(&foreign_payment, "payment_event_id")),
    )
    .await;
}

#[tokio::test]
async fn a_return_dated_before_its_payment_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    let mut body = return_body(&text(&payment, "payment_event_id"));
    body["effective_at"] = json!("2026-11-14");
    let before = ledger_state(&app);

    let a = c.post_payment_return(&key("return"), &body).await;

    assert_refused(&a, 422, "effective_before_original", &["effective_at"]);
    assert_eq!(ledger_state(&app), before);
    body["effective_at"] = json!("2026-11-15");
    return_payment(&c, &body).await;
}

#[tokio::test]
async fn each_invalid_return_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "100000").await;
    let payment = pay(&c, &loan, "400").await;
    let body = return_with_fee(&text(&payment, "payment_event_id"), "2500");
    let cases: Vec<(&str, Value)> = vec![
        ("payment_event_id", json!("payment-1")),
        ("payment_event_id", json!(null)),
        ("return_reason", json!("nsf")),
        ("return_reason", json!("INSUFFICIENT_FUNDS")),
        ("return_code", json!("R1")),
        ("return_code", json!("R001")),
        ("return_code", json!("X01")),
        ("return_code", json!("r01")),
        ("return_code", json!(1)),
        ("effective_at", json!("2026-13-01")),
        ("nsf_fee_minor", json!("25.00")),
        ("nsf_fee_minor", json!(2500)),
        ("nsf_fee_minor", json!("-1")),
        ("nsf_fee_minor", json!("9223372036854775808")),
        ("metadata", json!([1, 2])),
        ("amount_minor", json!("400")),
    ];

    assert_each_field_rule(
        &app,
        &c,
        "/v1/payment-returns",
        &body,
        cases,
        &["payment_event_id", "return_reason", "effective_at"],
    )
    .await;

    for reason in [
        "insufficient_funds",
        "account_closed",
        "no_account",
        "unauthorized",
        "stopped",
        "other",
    ] {
        let paid = pay(&c, &loan, "10").await;
        let mut body = return_body(&text(&paid, "payment_event_id"));
        body["return_reason"] = json!(reason);
        body["return_code"] = json!("R99");
        let a = c.post_payment_return(&key("return"), &body).await;
        assert_eq!(a.status, 201, "{reason}: {}", a.text);
    }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/fee-waivers.

#[tokio::test]
async fn a_fee_waiver_debits_fee_income_and_credits_fees_receivable() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "1000").await;

    let a = c
        .post_fee_waiver(
            &key("waive"),
            &waiver_body(&text(&fee, "fee_event_id"), Some("400")),
        )
        .await;

    let body = created(&a);
    assert_keys(&body, &WAIVER_KEYS);
    assert_receipt(&body, &["waiver_event_id", "journal_entry_id"]);
    assert_eq!(body["fee_event_id"], fee["fee_event_id"]);
    assert_eq!(body["waived_minor"], "400");
    let e = entry_of(&c, &body).await;
    assert_eq!(e["event_type"], "fee_waived");
    assert_eq!(e["correlation_id"], body["waiver_event_id"]);
    assert_eq!(e["effective_at"], WAIVED_ON);
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(e["metadata"], json!({ "approved_by": "ops-lead" }));
    assert_eq!(
        sequenced(&e),
        in_order(&[("4100", "DR", 400), ("1300", "CR", 400)])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 10_000,
            fees: 600,
            disbursed: 10_000,
            ..Owed::default()
        }
    );
    assert_eq!(standing(&c, loan.id).await, Standing::active(10_600));
    assert_gl(&c, &[("1300", 600), ("4100", 600)]).await;

    // Without an amount, the rest of the fee is waived.
    let rest = waive(&c, &fee, None).await;

    assert_eq!(rest["waived_minor"], "600");
    assert_eq!(
        sequenced(&entry_of(&c, &rest).await),
        in_order(&[("4100", "DR", 600), ("1300", "CR", 600)])
    );
    assert_eq!(owed(&c, loan.id).await.fees, 0);
    assert_gl(&c, &[("1300", 0), ("4100", 0)]).await;
    assert_reconciled(&c, "waived").await;
}

#[tokio::test]
async fn a_waiver_is_limited_to_what_is_left_of_the_fee_and_to_the_fees_the_loan_still_owes() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "1000").await;
    let fee_id = text(&fee, "fee_event_id");
    waive(&c, &fee, Some("400")).await;
    let before = ledger_state(&app);

    let over = c
        .post_fee_waiver(&key("waive"), &waiver_body(&fee_id, Some("601")))
        .await;

    assert_refused(&over, 422, "waiver_exceeds_outstanding", &["amount_minor"]);
    assert_eq!(ledger_state(&app), before);
    waive(&c, &fee, Some("600")).await;
    // Nothing is left to waive, with or without an amount.
    let before = ledger_state(&app);
    for amount in [Some("1"), None] {
        let a = c
            .post_fee_waiver(&key("waive"), &waiver_body(&fee_id, amount))
            .await;
        assert_refused(&a, 422, "waiver_exceeds_outstanding", &["amount_minor"]);
    }
    assert_eq!(ledger_state(&app), before);

    // A second fee, partly paid: only the fees the loan still owes can be waived.
    let second = assess(&c, &loan, "500").await;
    let payment = pay(&c, &loan, "300").await;
    assert_eq!(payment["allocation"], parts(300, 0, 0, 0));
    let a = c
        .post_fee_waiver(
            &key("waive"),
            &waiver_body(&text(&second, "fee_event_id"), Some("201")),
        )
        .await;
    assert_refused(&a, 422, "waiver_exceeds_outstanding", &["amount_minor"]);
    let all = waive(&c, &second, None).await;
    assert_eq!(all["waived_minor"], "200");
    assert_eq!(owed(&c, loan.id).await.fees, 0);
    assert_gl(&c, &[("1300", 0), ("4100", 300)]).await;
}

#[tokio::test]
async fn replaying_a_fee_waiver_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let fee = assess(&c, &loan, "500").await;
    let body = waiver_body(&text(&fee, "fee_event_id"), Some("100"));
    let mut other = body.clone();
    other["amount_minor"] = json!("101");

    assert_replay_writes_nothing(&app, &c, "/v1/fee-waivers", &body, &other).await;

    assert_eq!(owed(&c, loan.id).await.fees, 400);
}

#[tokio::test]
async fn a_reversed_fee_cannot_be_waived() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let fee = assess(&c, &loan, "500").await;
    reversed(&c, &fee).await;
    let before = ledger_state(&app);

    let a = c
        .post_fee_waiver(
            &key("waive"),
            &waiver_body(&text(&fee, "fee_event_id"), None),
        )
        .await;

    assert_refused(&a, 422, "event_reversed", &[]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_waived_fee_is_reversed_only_after_its_waiver_whose_reversal_makes_it_waivable_again() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "1000").await;
    let waiver = waive(&c, &fee, Some("1000")).await;
    let waiver_entry = entry_of(&c, &waiver).await;
    let before = ledger_state(&app);

    let blocked = reverse(&c, &text(&fee, "journal_entry_id")).await;

    assert_refused(&blocked, 422, "reversal_blocked_by_later_activity", &[]);
    assert_eq!(ledger_state(&app), before);

    let undone = reversed(&c, &waiver).await;
    assert_eq!(undone["correlation_id"], waiver["waiver_event_id"]);
    assert_eq!(
        entry_lines(&c, &text(&undone, "journal_entry_id")).await,
        mirrored(&waiver_entry)
    );
    assert_eq!(owed(&c, loan.id).await.fees, 1000);
    assert_gl(&c, &[("1300", 1000), ("4100", 1000)]).await;

    // The whole fee is waivable again.
    let again = waive(&c, &fee, None).await;
    assert_eq!(again["waived_minor"], "1000");
    reversed(&c, &again).await;
    reversed(&c, &fee).await;

    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 10_000,
            disbursed: 10_000,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1300", 0), ("4100", 0)]).await;
    assert_reconciled(&c, "unwound").await;
}

#[tokio::test]
async fn a_waiver_of_an_unknown_foreign_or_non_fee_event_is_not_found() {
    let app = spawn_app().await;
    let (c, other) = (app.tenant(), app.tenant());
    let loan = open(&c, "10000").await;
    let fee = assess(&c, &loan, "100").await;
    let payment = pay(&c, &loan, "50").await;
    let nsf = return_payment(
        &c,
        &return_with_fee(&text(&payment, "payment_event_id"), "25"),
    )
    .await;
    let late_fee = assess(&c, &loan, "10").await;
    reversed(&c, &late_fee).await;
    let foreign = open(&other, "1000").await;
    let foreign_fee = assess(&other, &foreign, "300").await;
    let before = ledger_state(&app);

    let wrong = [
        ("an unknown id", uuid().to_string()),
        ("another tenant's fee", text(&foreign_fee, "fee_event_id")),
        ("a payment", text(&payment, "payment_event_id")),
        ("a disbursement", loan.disbursement_event()),
        ("a return with an NSF fee", text(&nsf, "return_event_id")),
        ("a reversal's event", reversal_event_id(&app, c.tenant)),
        ("a journal entry id", text(&fee, "journal_entry_id")),
    ];
    assert_each_not_found(&c, "/v1/fee-waivers", |id| waiver_body(id, None), &wrong).await;

    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&other, foreign.id).await.fees, 300);
    let theirs = waive(&other, &foreign_fee, None).await;
    assert_eq!(theirs["waived_minor"], "300");
}

#[tokio::test]
async fn a_waiver_dated_before_its_fee_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let fee = assess(&c, &loan, "500").await;
    let mut body = waiver_body(&text(&fee, "fee_event_id"), None);
    body["effective_at"] = json!("2026-11-09");
    let before = ledger_state(&app);

    let a = c.post_fee_waiver(&key("waive"), &body).await;

    assert_refused(&a, 422, "effective_before_original", &["effective_at"]);
    assert_eq!(ledger_state(&app), before);
    body["effective_at"] = json!("2026-11-10");
    created(&c.post_fee_waiver(&key("waive"), &body).await);
}

#[tokio::test]
async fn each_invalid_waiver_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let fee = assess(&c, &loan, "500").await;
    let body = waiver_body(&text(&fee, "fee_event_id"), Some("100"));
    let cases: Vec<(&str, Value)> = vec![
        ("fee_event_id", json!("fee-1")),
        ("fee_event_id", json!(3)),
        ("amount_minor", json!("1.5")),
        ("amount_minor", json!(100)),
        ("amount_minor", json!("007")),
        ("amount_minor", json!("-100")),
        ("reason", json!("")),
        ("reason", json!("x".repeat(501))),
        ("reason", json!(5)),
        ("effective_at", json!("2026-11-31")),
        ("metadata", json!("waived")),
        ("fee_type", json!("late")),
    ];

    assert_each_field_rule(
        &app,
        &c,
        "/v1/fee-waivers",
        &body,
        cases,
        &["fee_event_id", "reason", "effective_at"],
    )
    .await;

    let mut longest = body.clone();
    longest["reason"] = json!("x".repeat(500));
    let a = created(&c.post_fee_waiver(&key("waive"), &longest).await);
    assert_eq!(a["waived_minor"], "100");
}

// ---------------------------------------------------------------------------------------------
// POST /v1/charge-offs.

#[tokio::test]
async fn a_charge_off_writes_off_principal_then_interest_then_fees() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    assess(&c, &loan, "100").await;
    accrue(&c, &loan, 10_000, 20).await;

    let a = c
        .post_charge_off(&key("chargeoff"), &charge_off_body(loan.id))
        .await;

    let body = created(&a);
    assert_keys(&body, &CHARGE_OFF_KEYS);
    assert_receipt(&body, &["chargeoff_event_id", "journal_entry_id"]);
    assert_eq!(body["loan_id"], loan.id.to_string().as_str());
    assert_eq!(
        body["charged_off"],
        json!({ "principal_minor": "10000", "interest_minor": "20", "fees_minor": "100" })
    );
    assert_eq!(body["total_minor"], "10120");
    let e = entry_of(&c, &body).await;
    assert_eq!(e["event_type"], "chargeoff");
    assert_eq!(e["correlation_id"], body["chargeoff_event_id"]);
    assert_eq!(e["effective_at"], CHARGED_OFF_ON);
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(e["metadata"], json!({ "committee": "2026-11" }));
    assert_eq!(
        sequenced(&e),
        in_order(&[
            ("5000", "DR", 10_000),
            ("1100", "CR", 10_000),
            ("4000", "DR", 20),
            ("1200", "CR", 20),
            ("4100", "DR", 100),
            ("1300", "CR", 100),
        ])
    );
    assert_on_loan(&e, &loan);
    let b = balance(&c, loan.id).await;
    assert_keys(&b, &LOAN_BALANCE_KEYS);
    assert_eq!(Standing::of(&b), Standing::charged_off(10_120, 0));
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            disbursed: 10_000,
            ..Owed::default()
        }
    );
    // As of the day before, the loan was active and nothing was written off.
    assert_eq!(
        standing_as_of(&c, loan.id, "2026-11-24").await,
        Standing::active(10_120)
    );
    assert_eq!(
        standing_as_of(&c, loan.id, CHARGED_OFF_ON).await,
        Standing::charged_off(10_120, 0)
    );
    assert_gl(
        &c,
        &[
            ("1100", 0),
            ("1200", 0),
            ("1300", 0),
            ("4000", 0),
            ("4100", 0),
            ("5000", 10_000),
        ],
    )
    .await;
    assert_reconciled(&c, "charged off").await;
}

#[tokio::test]
async fn a_charge_off_posts_a_pair_only_for_each_non_zero_balance() {
    let app = spawn_app().await;
    let c = app.tenant();
    let principal_only = open(&c, "5000").await;
    pay(&c, &principal_only, "1000").await;
    let fees_only = open(&c, "1000").await;
    pay(&c, &fees_only, "1000").await;
    let mut late_fee = fee_body(fees_only.id, "50");
    late_fee["effective_at"] = json!("2026-11-20");
    created(&c.post_fee(&key("fee"), &late_fee).await);

    let first = charge_off(&c, &principal_only).await;
    let second = charge_off(&c, &fees_only).await;

    assert_eq!(
        first["charged_off"],
        json!({ "principal_minor": "4000", "interest_minor": "0", "fees_minor": "0" })
    );
    assert_eq!(first["total_minor"], "4000");
    assert_eq!(
        sequenced(&entry_of(&c, &first).await),
        in_order(&[("5000", "DR", 4000), ("1100", "CR", 4000)])
    );
    assert_eq!(
        standing(&c, principal_only.id).await,
        Standing::charged_off(4000, 0)
    );
    assert_eq!(owed(&c, principal_only.id).await.paid, 1000);
    assert_eq!(
        second["charged_off"],
        json!({ "principal_minor": "0", "interest_minor": "0", "fees_minor": "50" })
    );
    assert_eq!(second["total_minor"], "50");
    assert_eq!(
        sequenced(&entry_of(&c, &second).await),
        in_order(&[("4100", "DR", 50), ("1300", "CR", 50)])
    );
    assert_eq!(
        standing(&c, fees_only.id).await,
        Standing::charged_off(50, 0)
    );
    assert_gl(&c, &[("5000", 4000), ("4100", 0), ("1100", 0), ("1300", 0)]).await;
}

#[tokio::test]
async fn replaying_a_charge_off_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let body = charge_off_body(loan.id);
    let mut other = body.clone();
    other["reason_code"] = json!("fraud");

    assert_replay_writes_nothing(&app, &c, "/v1/charge-offs", &body, &other).await;

    assert_eq!(standing(&c, loan.id).await, Standing::charged_off(1000, 0));
}

#[tokio::test]
async fn a_loan_is_charged_off_only_once() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    charge_off(&c, &loan).await;
    let before = ledger_state(&app);
    let mut again = charge_off_body(loan.id);
    again["effective_at"] = json!("2026-11-26");
    again["reason_code"] = json!("bankruptcy");

    let a = c.post_charge_off(&key("chargeoff"), &again).await;

    assert_refused(&a, 409, "already_charged_off", &[]);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(standing(&c, loan.id).await, Standing::charged_off(1000, 0));
}

#[tokio::test]
async fn a_loan_with_nothing_outstanding_cannot_be_charged_off() {
    let app = spawn_app().await;
    let c = app.tenant();
    let overpaid = open(&c, "1000").await;
    let payment = pay(&c, &overpaid, "1250").await;
    assert_eq!(payment["allocation"], parts(0, 0, 1000, 250));
    let undone = open(&c, "1000").await;
    reversed(&c, &undone.disbursement).await;
    let before = ledger_state(&app);

    for loan in [&overpaid, &undone] {
        let a = c
            .post_charge_off(&key("chargeoff"), &charge_off_body(loan.id))
            .await;

        assert_refused(&a, 422, "nothing_to_charge_off", &[]);
    }

    assert_eq!(ledger_state(&app), before);
    let b = balance(&c, overpaid.id).await;
    assert_eq!(b["charged_off_minor"], "0", "{b}");
    assert_ne!(b["status"], "charged_off", "{b}");
}

#[tokio::test]
async fn a_charge_off_of_an_unknown_or_foreign_loan_is_loan_not_found() {
    let app = spawn_app().await;
    let (c, other) = (app.tenant(), app.tenant());
    open(&c, "1000").await;
    let foreign = open(&other, "1000").await;
    let before = ledger_state(&app);

    for loan in [uuid(), foreign.id] {
        let a = c
            .post_charge_off(&key("chargeoff"), &charge_off_body(loan))
            .await;

        assert_refused(&a, 422, "loan_not_found", &["loan_id"]);
    }

    assert_eq!(ledger_state(&app), before);
    assert_eq!(standing(&other, foreign.id).await, Standing::active(1000));
}

#[tokio::test]
async fn a_charge_off_dated_before_the_loans_first_disbursement_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let mut body = charge_off_body(loan.id);
    body["effective_at"] = json!("2026-10-31");
    let before = ledger_state(&app);

    let a = c.post_charge_off(&key("chargeoff"), &body).await;

    assert_refused(&a, 422, "effective_before_loan", &["effective_at"]);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(standing(&c, loan.id).await, Standing::active(1000));
}

#[tokio::test]
async fn each_invalid_charge_off_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let body = charge_off_body(loan.id);
    let cases: Vec<(&str, Value)> = vec![
        ("loan_id", json!("loan-1")),
        ("loan_id", json!(1)),
        ("reason_code", json!("default")),
        ("reason_code", json!("FRAUD")),
        ("reason_code", json!(null)),
        ("effective_at", json!("2026-11-31")),
        ("effective_at", json!("25.11.2026")),
        ("metadata", json!(1)),
        ("amount_minor", json!("1000")),
    ];

    assert_each_field_rule(
        &app,
        &c,
        "/v1/charge-offs",
        &body,
        cases,
        &["loan_id", "effective_at", "reason_code"],
    )
    .await;

    for reason in [
        "delinquency",
        "bankruptcy",
        "fraud",
        "deceased",
        "settlement",
        "other",
    ] {
        let loan = open(&c, "1000").await;
        let mut body = charge_off_body(loan.id);
        body["reason_code"] = json!(reason);
        let a = c.post_charge_off(&key("chargeoff"), &body).await;
        assert_eq!(a.status, 201, "{reason}: {}", a.text);
    }
}

#[tokio::test]
async fn a_charged_off_loan_takes_no_disbursement_fee_or_accrual() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let healthy = open(&c, "5000").await;
    charge_off(&c, &loan).await;
    let before = ledger_state(&app);
    let mut more = disbursement_body(loan.id, loan.borrower, "500");
    more["effective_at"] = json!("2026-11-26");
    let mut fee = fee_body(loan.id, "50");
    fee["effective_at"] = json!("2026-11-26");
    let batch = accrual_body("2026-11-26", &[(healthy.id, 5000, 3), (loan.id, 0, 5)]);

    let disbursement = c.post_disbursement(&key("disb"), &more).await;
    let fee = c.post_fee(&key("fee"), &fee).await;
    let accrual = c.post_accruals(&key("accrual"), &batch).await;

    assert_refused(&disbursement, 422, "loan_charged_off", &[]);
    assert_refused(&fee, 422, "loan_charged_off", &[]);
    assert_refused(&accrual, 422, "loan_charged_off", &["loans[1].loan_id"]);
    assert_eq!(
        accrual.error_codes(),
        ["loan_charged_off"],
        "{}",
        accrual.text
    );
    assert_eq!(ledger_state(&app), before);
    assert_eq!(standing(&c, loan.id).await, Standing::charged_off(1000, 0));
    assert_eq!(standing(&c, healthy.id).await, Standing::active(5000));
}

#[tokio::test]
async fn a_payment_on_a_charged_off_loan_is_a_recovery_up_to_what_was_written_off_then_suspense() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    assess(&c, &loan, "100").await;
    accrue(&c, &loan, 1000, 20).await;
    let written_off = charge_off(&c, &loan).await;
    assert_eq!(written_off["total_minor"], "1120");

    let first = recover(&c, &loan, "700").await;

    assert_keys(&first, &PAYMENT_KEYS);
    assert_receipt(&first, &["payment_event_id", "journal_entry_id"]);
    assert_eq!(first["allocation"], parts(0, 0, 0, 0));
    assert_eq!(first["recovery_minor"], "700");
    let e = entry_of(&c, &first).await;
    assert_eq!(e["event_type"], "recovery");
    assert_eq!(e["correlation_id"], first["payment_event_id"]);
    assert_eq!(e["effective_at"], RECOVERED_ON);
    assert_eq!(
        sequenced(&e),
        in_order(&[("1000", "DR", 700), ("4200", "CR", 700)])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        standing(&c, loan.id).await,
        Standing::charged_off(1120, 700)
    );
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            disbursed: 1000,
            paid: 700,
            ..Owed::default()
        }
    );

    // The rest of what was written off, then suspense.
    let second = recover(&c, &loan, "600").await;

    assert_eq!(second["allocation"], parts(0, 0, 0, 180));
    assert_eq!(second["recovery_minor"], "420");
    let e = entry_of(&c, &second).await;
    assert_eq!(e["event_type"], "recovery");
    assert_eq!(
        sequenced(&e),
        in_order(&[
            ("1000", "DR", 600),
            ("4200", "CR", 420),
            ("2100", "CR", 180)
        ])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        standing(&c, loan.id).await,
        Standing::charged_off(1120, 1120)
    );
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            suspense: 180,
            disbursed: 1000,
            paid: 1300,
            ..Owed::default()
        }
    );

    // Fully recovered: a further payment is still a recovery, all of it suspense.
    let third = recover(&c, &loan, "50").await;

    assert_eq!(third["allocation"], parts(0, 0, 0, 50));
    assert_eq!(third["recovery_minor"], "0");
    let e = entry_of(&c, &third).await;
    assert_eq!(e["event_type"], "recovery");
    assert_eq!(
        sequenced(&e),
        in_order(&[("1000", "DR", 50), ("2100", "CR", 50)])
    );
    assert_eq!(
        standing(&c, loan.id).await,
        Standing::charged_off(1120, 1120)
    );
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            suspense: 230,
            disbursed: 1000,
            paid: 1350,
            ..Owed::default()
        }
    );
    assert_gl(
        &c,
        &[
            ("1000", 1350),
            ("1100", 0),
            ("2100", 230),
            ("4200", 1120),
            ("5000", 1000),
        ],
    )
    .await;
    assert_reconciled(&c, "recovered").await;
}

#[tokio::test]
async fn an_ordinary_payment_on_a_charged_off_loan_is_returned_only_after_the_charge_off_is_reversed()
 {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let payment = pay(&c, &loan, "400").await;
    let written_off = charge_off(&c, &loan).await;
    assert_eq!(written_off["total_minor"], "600");
    let mut body = return_body(&text(&payment, "payment_event_id"));
    body["effective_at"] = json!("2026-11-26");
    let k = key("return");
    let before = ledger_state(&app);

    let refused = c.post_payment_return(&k, &body).await;

    assert_refused(&refused, 422, "loan_charged_off", &["payment_event_id"]);
    assert_eq!(ledger_state(&app), before);
    reversed(&c, &written_off).await;
    // The refusal did not consume its key.
    let returned = created(&c.post_payment_return(&k, &body).await);
    assert_eq!(returned["returned_allocation"], parts(0, 0, 400, 0));
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    assert_eq!(standing(&c, loan.id).await, Standing::active(1000));
}

#[tokio::test]
async fn a_returned_recovery_mirrors_its_own_lines_and_the_charge_off_reverses_once_no_recovery_is_live()
 {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let written_off = charge_off(&c, &loan).await;
    let first = recover(&c, &loan, "600").await;
    let second = recover(&c, &loan, "700").await;
    assert_eq!(second["recovery_minor"], "400");
    assert_eq!(second["allocation"], parts(0, 0, 0, 300));
    let before = ledger_state(&app);

    // No NSF fee on a charged-off loan.
    let mut with_fee = return_with_fee(&text(&second, "payment_event_id"), "2500");
    with_fee["effective_at"] = json!(RECOVERY_RETURNED_ON);
    let refused = c.post_payment_return(&key("return"), &with_fee).await;
    assert_refused(&refused, 422, "loan_charged_off", &["nsf_fee_minor"]);
    assert_eq!(ledger_state(&app), before);

    let mut body = return_body(&text(&second, "payment_event_id"));
    body["effective_at"] = json!(RECOVERY_RETURNED_ON);
    let returned = return_payment(&c, &body).await;

    assert_keys(&returned, &RETURN_KEYS);
    assert_eq!(returned["payment_event_id"], second["payment_event_id"]);
    assert_eq!(returned["returned_allocation"], parts(0, 0, 0, 300));
    assert_eq!(returned["nsf_fee_minor"], "0");
    let e = entry_of(&c, &returned).await;
    assert_eq!(e["event_type"], "payment_returned");
    assert_eq!(
        sequenced(&e),
        in_order(&[
            ("1000", "CR", 700),
            ("4200", "DR", 400),
            ("2100", "DR", 300)
        ])
    );
    assert_on_loan(&e, &loan);
    assert_eq!(
        standing(&c, loan.id).await,
        Standing::charged_off(1000, 600)
    );
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            disbursed: 1000,
            paid: 600,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1000", 600), ("2100", 0), ("4200", 600)]).await;

    // A returned recovery cannot be reversed; the first recovery is still live.
    let before = ledger_state(&app);
    let recovery_reversal = reverse(&c, &text(&second, "journal_entry_id")).await;
    assert_refused(&recovery_reversal, 422, "event_returned", &[]);
    let charge_off_reversal = reverse(&c, &text(&written_off, "journal_entry_id")).await;
    assert_refused(
        &charge_off_reversal,
        422,
        "reversal_blocked_by_later_activity",
        &[],
    );
    assert_eq!(ledger_state(&app), before);

    // With the first recovery returned too, no recovery is live: the charge-off reverses.
    let mut body = return_body(&text(&first, "payment_event_id"));
    body["effective_at"] = json!(RECOVERY_RETURNED_ON);
    let returned = return_payment(&c, &body).await;
    assert_eq!(returned["returned_allocation"], parts(0, 0, 0, 0));
    assert_eq!(standing(&c, loan.id).await, Standing::charged_off(1000, 0));
    reversed(&c, &written_off).await;

    assert_eq!(standing(&c, loan.id).await, Standing::active(1000));
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    assert_gl(&c, &[("1000", 0), ("1100", 1000), ("4200", 0), ("5000", 0)]).await;
    assert_reconciled(&c, "charge-off reversed").await;
}

#[tokio::test]
async fn a_charge_off_is_reversed_only_after_its_recovery_and_the_loan_comes_back_active() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    assess(&c, &loan, "100").await;
    let written_off = charge_off(&c, &loan).await;
    let charge_off_entry = entry_of(&c, &written_off).await;
    let recovery = recover(&c, &loan, "300").await;
    let recovery_entry = entry_of(&c, &recovery).await;
    let before = ledger_state(&app);

    let blocked = reverse(&c, &text(&written_off, "journal_entry_id")).await;

    assert_refused(&blocked, 422, "reversal_blocked_by_later_activity", &[]);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        standing(&c, loan.id).await,
        Standing::charged_off(1100, 300)
    );

    let undone = reversed(&c, &recovery).await;
    assert_eq!(undone["correlation_id"], recovery["payment_event_id"]);
    assert_eq!(
        entry_lines(&c, &text(&undone, "journal_entry_id")).await,
        mirrored(&recovery_entry)
    );
    assert_eq!(standing(&c, loan.id).await, Standing::charged_off(1100, 0));
    assert_eq!(owed(&c, loan.id).await.paid, 0);

    let back = reversed(&c, &written_off).await;

    assert_eq!(back["correlation_id"], written_off["chargeoff_event_id"]);
    assert_eq!(
        entry_lines(&c, &text(&back, "journal_entry_id")).await,
        mirrored(&charge_off_entry)
    );
    let b = balance(&c, loan.id).await;
    assert_eq!(b["status"], "active", "{b}");
    assert_eq!(b["charged_off_minor"], "0", "{b}");
    assert_eq!(b["recovered_minor"], "0", "{b}");
    assert_eq!(
        owed(&c, loan.id).await,
        Owed {
            principal: 1000,
            fees: 100,
            disbursed: 1000,
            ..Owed::default()
        }
    );
    assert_gl(
        &c,
        &[
            ("1100", 1000),
            ("1300", 100),
            ("4100", 100),
            ("4200", 0),
            ("5000", 0),
        ],
    )
    .await;

    // The loan takes ordinary events again: a payment is no longer a recovery.
    let payment = recover(&c, &loan, "200").await;
    assert_eq!(payment["recovery_minor"], "0");
    assert_eq!(payment["allocation"], parts(100, 0, 100, 0));
    assert_eq!(
        entry_of(&c, &payment).await["event_type"],
        "payment_received"
    );
    assess(&c, &loan, "10").await;
    assert_reconciled(&c, "active again").await;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/adjustments.

#[tokio::test]
async fn an_adjustment_posts_its_lines_in_request_order_on_no_loan() {
    let app = spawn_app().await;
    let c = app.tenant();
    let lines = [
        ("1000", "DR", "1500"),
        ("4100", "CR", "1000"),
        ("4000", "CR", "500"),
        ("5000", "DR", "70"),
        ("4200", "CR", "40"),
        ("2000", "CR", "30"),
    ];

    let a = c
        .post_adjustment(&key("adjust"), &adjustment_body(&lines))
        .await;

    let body = created(&a);
    assert_keys(&body, &ADJUSTMENT_KEYS);
    assert_receipt(&body, &["adjustment_event_id", "journal_entry_id"]);
    let e = entry_of(&c, &body).await;
    assert_eq!(e["event_type"], "manual_adjustment");
    assert_eq!(e["correlation_id"], body["adjustment_event_id"]);
    assert_eq!(e["description"], "November bank charges");
    assert_eq!(e["effective_at"], "2026-11-20");
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(e["metadata"], json!({ "ticket": "FIN-77" }));
    assert_eq!(
        sequenced(&e),
        in_order(&[
            ("1000", "DR", 1500),
            ("4100", "CR", 1000),
            ("4000", "CR", 500),
            ("5000", "DR", 70),
            ("4200", "CR", 40),
            ("2000", "CR", 30),
        ])
    );
    for line in e["lines"].as_array().expect("lines") {
        assert!(line["loan_id"].is_null(), "{line}");
        assert!(line["borrower_id"].is_null(), "{line}");
        assert_eq!(line["currency"], "USD", "{line}");
    }
    assert_gl(
        &c,
        &[
            ("1000", 1500),
            ("2000", 30),
            ("4000", 500),
            ("4100", 1000),
            ("4200", 40),
            ("5000", 70),
        ],
    )
    .await;
    assert_books_clean(&app, &c, "adjusted").await;
}

#[tokio::test]
async fn adjustment_lines_must_balance_in_each_currency_on_its_own() {
    let app = spawn_app().await;
    let c = app.tenant();
    let two_currencies = adjustment_body_in(&[
        ("1000", "DR", "100", "USD"),
        ("4100", "CR", "100", "USD"),
        ("1000", "DR", "200", "EUR"),
        ("4000", "CR", "200", "EUR"),
    ]);
    created(&c.post_adjustment(&key("adjust"), &two_currencies).await);
    assert_eq!(gl_in(&c, "1000", "USD").await, 100);
    assert_eq!(gl_in(&c, "1000", "EUR").await, 200);
    assert_eq!(gl_in(&c, "4000", "EUR").await, 200);
    let before = ledger_state(&app);

    for (what, body) in [
        (
            "equal totals across two currencies",
            adjustment_body_in(&[("1000", "DR", "100", "USD"), ("4100", "CR", "100", "EUR")]),
        ),
        (
            "one currency off by one",
            adjustment_body(&[("1000", "DR", "100"), ("4100", "CR", "99")]),
        ),
        (
            "debits only",
            adjustment_body(&[("1000", "DR", "100"), ("5000", "DR", "100")]),
        ),
    ] {
        let a = c.post_adjustment(&key("adjust"), &body).await;

        assert_eq!(a.status, 422, "{what}: {}", a.text);
        assert_eq!(a.code(), "entry_unbalanced", "{what}");
        assert_eq!(a.error_fields(), ["lines"], "{what}: {}", a.text);
    }

    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn replaying_an_adjustment_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let body = adjustment_body(&[("1000", "DR", "100"), ("4100", "CR", "100")]);
    let mut other = body.clone();
    other["description"] = json!("December bank charges");

    assert_replay_writes_nothing(&app, &c, "/v1/adjustments", &body, &other).await;

    assert_eq!(gl(&c, "1000").await, 100);
}

#[tokio::test]
async fn an_adjustment_to_an_account_outside_the_chart_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let before = ledger_state(&app);

    for (lines, field) in [
        (
            [("1000", "DR", "100"), ("9999", "CR", "100")],
            "lines[1].account_code",
        ),
        (
            [("3000", "DR", "100"), ("4100", "CR", "100")],
            "lines[0].account_code",
        ),
    ] {
        let a = c
            .post_adjustment(&key("adjust"), &adjustment_body(&lines))
            .await;

        assert_refused(&a, 422, "account_not_found", &[field]);
    }

    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn the_loan_control_accounts_cannot_be_adjusted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;
    let before = ledger_state(&app);

    for (i, code) in ["1100", "1200", "1300", "2100"].into_iter().enumerate() {
        let lines = if i % 2 == 0 {
            [(code, "DR", "100"), ("1000", "CR", "100")]
        } else {
            [("1000", "DR", "100"), (code, "CR", "100")]
        };
        let field = format!("lines[{}].account_code", i % 2);

        let a = c
            .post_adjustment(&key("adjust"), &adjustment_body(&lines))
            .await;

        assert_refused(&a, 422, "account_not_adjustable", &[field.as_str()]);
    }

    assert_eq!(ledger_state(&app), before);
    assert_eq!(standing(&c, loan.id).await, Standing::active(1000));
}

#[tokio::test]
async fn an_adjustment_line_of_zero_is_refused_as_amount_must_be_positive() {
    let app = spawn_app().await;
    let c = app.tenant();
    let before = ledger_state(&app);

    let a = c
        .post_adjustment(
            &key("adjust"),
            &adjustment_body(&[
                ("1000", "DR", "100"),
                ("4100", "CR", "100"),
                ("4000", "DR", "0"),
            ]),
        )
        .await;

    assert_refused(
        &a,
        422,
        "amount_must_be_positive",
        &["lines[2].amount_minor"],
    );
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn an_adjustment_has_between_two_and_fifty_lines() {
    let app = spawn_app().await;
    let c = app.tenant();
    let ones = |n: usize| vec![("4100", "CR", "1"); n];
    let with_cash = |n: usize, cash: &'static str| {
        let mut lines = vec![("1000", "DR", cash)];
        lines.extend(ones(n));
        lines
    };
    let before = ledger_state(&app);

    for (what, body) in [
        ("no lines", adjustment_body(&[])),
        ("one line", adjustment_body(&[("1000", "DR", "1")])),
        ("51 lines", adjustment_body(&with_cash(50, "50"))),
    ] {
        let a = c.post_adjustment(&key("adjust"), &body).await;

        assert_eq!(a.status, 400, "{what}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{what}");
        assert_eq!(a.error_fields(), ["lines"], "{what}: {}", a.text);
    }

    assert_eq!(ledger_state(&app), before);
    let fifty = created(
        &c.post_adjustment(&key("adjust"), &adjustment_body(&with_cash(49, "49")))
            .await,
    );
    assert_eq!(sequenced(&entry_of(&c, &fifty).await).len(), 50);
    assert_eq!(gl(&c, "4100").await, 49);
}

#[tokio::test]
async fn each_invalid_adjustment_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let body = adjustment_body(&[("1000", "DR", "100"), ("4100", "CR", "100")]);
    let top: Vec<(&str, Value)> = vec![
        ("description", json!("")),
        ("description", json!("x".repeat(501))),
        ("description", json!(5)),
        ("effective_at", json!("2026-02-29")),
        ("lines", json!("1000 DR 100")),
        ("lines", json!({ "account_code": "1000" })),
        ("metadata", json!("adjusted")),
        ("loan_id", json!(uuid().to_string())),
    ];

    assert_each_field_rule(
        &app,
        &c,
        "/v1/adjustments",
        &body,
        top,
        &["description", "effective_at", "lines"],
    )
    .await;

    let before = ledger_state(&app);
    let line_cases: Vec<(usize, &str, Value)> = vec![
        (0, "account_code", json!("100")),
        (0, "account_code", json!("10000")),
        (0, "account_code", json!("ABCD")),
        (0, "account_code", json!(1000)),
        (1, "direction", json!("dr")),
        (1, "direction", json!("DEBIT")),
        (1, "direction", json!("")),
        (0, "amount_minor", json!("1.00")),
        (0, "amount_minor", json!(100)),
        (0, "amount_minor", json!("-100")),
        (0, "amount_minor", json!("9223372036854775808")),
        (1, "currency", json!("usd")),
        (1, "currency", json!("US")),
        (0, "loan_id", json!(uuid().to_string())),
    ];
    for (i, field, value) in line_cases {
        let mut bad = body.clone();
        bad["lines"][i][field] = value.clone();
        let path = format!("lines[{i}].{field}");

        let a = c.post_adjustment(&key("adjust"), &bad).await;

        assert_eq!(a.status, 400, "{path} = {value}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{path} = {value}");
        assert_eq!(
            a.error_fields(),
            [path.as_str()],
            "{path} = {value}: {}",
            a.text
        );
    }
    for field in ["account_code", "direction", "amount_minor", "currency"] {
        let mut bad = body.clone();
        bad["lines"][0].as_object_mut().expect("line").remove(field);
        let path = format!("lines[0].{field}");

        let a = c.post_adjustment(&key("adjust"), &bad).await;

        assert_eq!(a.status, 400, "without {path}: {}", a.text);
        assert_eq!(
            a.error_fields(),
            [path.as_str()],
            "without {path}: {}",
            a.text
        );
    }
    assert_eq!(ledger_state(&app), before);

    let mut longest = body.clone();
    longest["description"] = json!("x".repeat(500));
    let a = created(&c.post_adjustment(&key("adjust"), &longest).await);
    assert_eq!(entry_of(&c, &a).await["description"], "x".repeat(500));
}

#[tokio::test]
async fn an_adjustment_line_in_an_unknown_currency_is_refused_as_unknown_currency() {
    let app = spawn_app().await;
    let c = app.tenant();
    let before = ledger_state(&app);

    for code in ["ABC", "ZZZ"] {
        let body = adjustment_body_in(&[("1000", "DR", "100", code), ("4100", "CR", "100", code)]);

        let a = c.post_adjustment(&key("adjust"), &body).await;

        assert_refused(
            &a,
            400,
            "validation_failed",
            &["lines[0].currency", "lines[1].currency"],
        );
        assert_eq!(
            a.error_codes(),
            ["unknown_currency", "unknown_currency"],
            "{code}: {}",
            a.text
        );
    }

    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn an_adjustment_reverses_exactly_and_touches_no_other_tenant() {
    let app = spawn_app().await;
    let (c, other) = (app.tenant(), app.tenant());
    let adjustment = created(
        &c.post_adjustment(
            &key("adjust"),
            &adjustment_body(&[("2000", "DR", "250"), ("1000", "CR", "250")]),
        )
        .await,
    );
    let original = entry_of(&c, &adjustment).await;
    assert_gl(&c, &[("1000", -250), ("2000", -250)]).await;
    assert_gl(&other, &[("1000", 0), ("2000", 0)]).await;

    let undone = reversed(&c, &adjustment).await;

    assert_eq!(undone["correlation_id"], adjustment["adjustment_event_id"]);
    let reversal = entry_of(&c, &undone).await;
    assert_eq!(
        reversal["reverses_entry_id"],
        adjustment["journal_entry_id"]
    );
    assert_eq!(lines_of(&reversal), mirrored(&original));
    for line in reversal["lines"].as_array().expect("lines") {
        assert!(line["loan_id"].is_null(), "{line}");
    }
    assert_eq!(
        entry_of(&c, &adjustment).await["reversed_by_entry_id"],
        undone["journal_entry_id"]
    );
    assert_gl(&c, &[("1000", 0), ("2000", 0)]).await;
    let foreign = reverse(&other, &text(&adjustment, "journal_entry_id")).await;
    assert_refused(&foreign, 404, "not_found", &[]);
    assert_books_clean(&app, &c, "adjustment reversed").await;
}

// ---------------------------------------------------------------------------------------------
// Every lifecycle write.

/// One valid write of each kind in `c`'s tenant, with the scope it needs.
async fn one_of_each(c: &Caller<'_>) -> Vec<(&'static str, &'static str, Value)> {
    let settled = open(c, "1000").await;
    let loan = open(c, "10000").await;
    let payment = pay(c, &loan, "100").await;
    let fee = assess(c, &loan, "100").await;
    let written_off = open(c, "1000").await;
    vec![
        (
            "hpts:disbursements:write",
            "/v1/disbursement-settlements",
            settlement_body(&settled.disbursement_event()),
        ),
        (
            "hpts:payments:write",
            "/v1/payment-returns",
            return_body(&text(&payment, "payment_event_id")),
        ),
        (
            "hpts:fees:write",
            "/v1/fee-waivers",
            waiver_body(&text(&fee, "fee_event_id"), None),
        ),
        (
            "hpts:chargeoffs:write",
            "/v1/charge-offs",
            charge_off_body(written_off.id),
        ),
        (
            "hpts:adjustments:write",
            "/v1/adjustments",
            adjustment_body(&[("1000", "DR", "10"), ("4100", "CR", "10")]),
        ),
    ]
}

#[tokio::test]
async fn each_lifecycle_write_needs_its_own_scope_and_no_other() {
    let app = spawn_app().await;
    let c = app.tenant();
    let writes = one_of_each(&c).await;

    for (scope, path, body) in &writes {
        let before = ledger_state(&app);
        let without = app.caller(c.tenant, &scopes_without(scope));

        let a = without.post(path, &key("scope"), body).await;

        assert_eq!(a.status, 403, "{path} without {scope}: {}", a.text);
        assert_eq!(a.code(), "insufficient_scope", "{path}");
        assert_eq!(ledger_state(&app), before, "{path}");
        let only = app.caller(c.tenant, &[*scope]);
        let a = only.post(path, &key("scope"), body).await;
        assert_eq!(a.status, 201, "{path} with only {scope}: {}", a.text);
    }
}

#[tokio::test]
async fn every_lifecycle_write_requires_an_idempotency_key() {
    let app = spawn_app().await;
    let c = app.tenant();
    let writes = one_of_each(&c).await;
    let before = ledger_state(&app);

    for (_, path, body) in &writes {
        let a = Answer::from(app.post_raw(path, Some(&c.token), None, body).await).await;

        assert_eq!(a.status, 400, "{path}: {}", a.text);
        assert_eq!(a.code(), "idempotency_key_missing", "{path}");
    }

    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn uppercase_referenced_ids_are_accepted_and_echoed_lowercase() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    let payment = pay(&c, &loan, "100").await;
    let fee = assess(&c, &loan, "100").await;

    let settlement = created(
        &c.post_settlement(
            &key("settle"),
            &settlement_body(&loan.disbursement_event().to_uppercase()),
        )
        .await,
    );
    let returned = return_payment(
        &c,
        &return_body(&text(&payment, "payment_event_id").to_uppercase()),
    )
    .await;
    let waiver = created(
        &c.post_fee_waiver(
            &key("waive"),
            &waiver_body(&text(&fee, "fee_event_id").to_uppercase(), None),
        )
        .await,
    );
    let mut body = charge_off_body(loan.id);
    body["loan_id"] = json!(loan.id.to_string().to_uppercase());
    let written_off = created(&c.post_charge_off(&key("chargeoff"), &body).await);

    assert_eq!(
        settlement["disbursement_event_id"],
        loan.disbursement["disbursement_event_id"]
    );
    assert_eq!(returned["payment_event_id"], payment["payment_event_id"]);
    assert_eq!(waiver["fee_event_id"], fee["fee_event_id"]);
    assert_eq!(written_off["loan_id"], loan.id.to_string().as_str());
}

#[tokio::test]
async fn an_ordinary_payment_carries_recovery_minor_zero_and_a_loan_balance_no_charge_off() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "1000").await;

    let payment = pay(&c, &loan, "100").await;

    assert_keys(&payment, &PAYMENT_KEYS);
    assert_eq!(payment["recovery_minor"], "0");
    assert_eq!(payment["allocation"], parts(0, 0, 100, 0));
    assert_eq!(
        entry_of(&c, &payment).await["event_type"],
        "payment_received"
    );
    let b = balance(&c, loan.id).await;
    assert_keys(&b, &LOAN_BALANCE_KEYS);
    assert_eq!(Standing::of(&b), Standing::active(900));
    assert_eq!(b["charged_off_minor"], "0");
    assert_eq!(b["recovered_minor"], "0");
}

// ---------------------------------------------------------------------------------------------
// A whole loan life.

/// The receipts of one loan's life, from its disbursement to its recovery.
struct LoanLife {
    loan: Loan,
    settlement: Value,
    fee: Value,
    accrual: Value,
    payment: Value,
    returned: Value,
    waiver: Value,
    written_off: Value,
    recovery: Value,
}

/// Disburses 1,000.00, settles it, assesses a 25.00 fee, accrues 3.00 and takes a 100.00
/// payment, checking the books after each step: the loan and the settlement, fee, accrual and
/// payment receipts.
async fn open_settle_assess_accrue_and_pay(
    app: &TestApp,
    c: &Caller<'_>,
) -> (Loan, Value, Value, Value, Value) {
    let loan = open(c, "100000").await;
    assert_books_clean(app, c, "disbursed").await;
    let settlement = settle(c, &loan).await;
    assert_gl(c, &[("1000", -100_000), ("2000", 0), ("1100", 100_000)]).await;
    assert_books_clean(app, c, "settled").await;
    let fee = assess(c, &loan, "2500").await;
    assert_books_clean(app, c, "fee assessed").await;
    let accrual = accrue(c, &loan, 100_000, 300).await;
    assert_books_clean(app, c, "accrued").await;
    let payment = pay(c, &loan, "10000").await;
    assert_eq!(payment["allocation"], parts(2500, 300, 7200, 0));
    assert_eq!(payment["recovery_minor"], "0");
    assert_eq!(
        owed(c, loan.id).await,
        Owed {
            principal: 92_800,
            disbursed: 100_000,
            paid: 10_000,
            ..Owed::default()
        }
    );
    assert_books_clean(app, c, "paid").await;
    (loan, settlement, fee, accrual, payment)
}

/// The payment bounces with a 30.00 NSF fee: its allocation comes back and the fee is owed.
async fn return_the_payment_with_an_nsf_fee(
    app: &TestApp,
    c: &Caller<'_>,
    loan: &Loan,
    payment: &Value,
) -> Value {
    // The payment bounces, with an NSF fee.
    let returned = return_payment(
        c,
        &return_with_fee(&text(payment, "payment_event_id"), "3000"),
    )
    .await;
    assert_eq!(returned["returned_allocation"], parts(2500, 300, 7200, 0));
    assert_eq!(
        sequenced(&entry_of(c, &returned).await),
        in_order(&[
            ("1000", "CR", 10_000),
            ("1300", "DR", 2500),
            ("1200", "DR", 300),
            ("1100", "DR", 7200),
            ("1300", "DR", 3000),
            ("4100", "CR", 3000),
        ])
    );
    assert_eq!(
        owed(c, loan.id).await,
        Owed {
            principal: 100_000,
            interest: 300,
            fees: 5500,
            disbursed: 100_000,
            ..Owed::default()
        }
    );
    assert_books_clean(app, c, "returned").await;
    returned
}

/// The late fee is waived in full; the NSF fee is still owed.
async fn waive_the_fee_in_full(app: &TestApp, c: &Caller<'_>, loan: &Loan, fee: &Value) -> Value {
    // The late fee is waived in full.
    let waiver = waive(c, fee, None).await;
    assert_eq!(waiver["waived_minor"], "2500");
    assert_eq!(owed(c, loan.id).await.fees, 3000);
    assert_books_clean(app, c, "waived").await;
    waiver
}

/// The loan is charged off, then 50.00 is recovered: the charge-off and recovery receipts.
async fn charge_off_then_recover(app: &TestApp, c: &Caller<'_>, loan: &Loan) -> (Value, Value) {
    // Charged off, then a recovery.
    let written_off = charge_off(c, loan).await;
    assert_eq!(
        written_off["charged_off"],
        json!({ "principal_minor": "100000", "interest_minor": "300", "fees_minor": "3000" })
    );
    assert_eq!(written_off["total_minor"], "103300");
    assert_eq!(
        standing(c, loan.id).await,
        Standing::charged_off(103_300, 0)
    );
    assert_gl(
        c,
        &[
            ("1100", 0),
            ("1200", 0),
            ("1300", 0),
            ("4000", 0),
            ("4100", 0),
            ("5000", 100_000),
        ],
    )
    .await;
    assert_books_clean(app, c, "charged off").await;
    let recovery = recover(c, loan, "5000").await;
    assert_eq!(recovery["recovery_minor"], "5000");
    assert_eq!(recovery["allocation"], parts(0, 0, 0, 0));
    assert_eq!(entry_of(c, &recovery).await["event_type"], "recovery");
    assert_eq!(
        standing(c, loan.id).await,
        Standing::charged_off(103_300, 5000)
    );
    assert_eq!(owed(c, loan.id).await.paid, 5000);
    assert_gl(c, &[("1000", -95_000), ("4200", 5000)]).await;
    assert_books_clean(app, c, "recovered").await;
    (written_off, recovery)
}

/// Reversing what later activity depends on is refused, and writes nothing.
async fn assert_reversals_out_of_order_are_refused(app: &TestApp, c: &Caller<'_>, life: &LoanLife) {
    let LoanLife {
        loan,
        fee,
        payment,
        written_off,
        ..
    } = life;
    // Wrong order: whatever later activity depends on cannot be reversed, and nothing is written.
    let before = ledger_state(app);
    for (what, receipt, code) in [
        (
            "the charge-off before its recovery",
            written_off,
            "reversal_blocked_by_later_activity",
        ),
        (
            "the fee before its waiver",
            fee,
            "reversal_blocked_by_later_activity",
        ),
        ("the payment before its return", payment, "event_returned"),
        (
            "the disbursement before its settlement",
            &loan.disbursement,
            "reversal_blocked_by_later_activity",
        ),
    ] {
        let a = reverse(c, &text(receipt, "journal_entry_id")).await;
        assert_eq!(a.status, 422, "{what}: {}", a.text);
        assert_eq!(a.code(), code, "{what}");
    }
    assert_eq!(ledger_state(app), before);
    assert_books_clean(app, c, "wrong order refused").await;
}

/// The recovery, then the charge-off, are reversed: the loan is active again.
async fn reverse_the_recovery_then_the_charge_off(app: &TestApp, c: &Caller<'_>, life: &LoanLife) {
    let LoanLife {
        loan,
        written_off,
        recovery,
        ..
    } = life;
    // Right order.
    reversed(c, recovery).await;
    assert_eq!(
        standing(c, loan.id).await,
        Standing::charged_off(103_300, 0)
    );
    assert_books_clean(app, c, "recovery reversed").await;
    reversed(c, written_off).await;
    assert_eq!(standing(c, loan.id).await, Standing::active(103_300));
    assert_eq!(
        owed(c, loan.id).await,
        Owed {
            principal: 100_000,
            interest: 300,
            fees: 3000,
            disbursed: 100_000,
            ..Owed::default()
        }
    );
    assert_books_clean(app, c, "charge-off reversed").await;
}

/// The return cannot be reversed before the waiver; then the waiver, return, payment, accrual
/// and fee are reversed in order.
async fn reverse_the_waiver_return_payment_accrual_and_fee(
    app: &TestApp,
    c: &Caller<'_>,
    life: &LoanLife,
) {
    let LoanLife {
        loan,
        fee,
        accrual,
        payment,
        returned,
        waiver,
        ..
    } = life;
    // The return took back 5,500 of fees; only 3,000 are owed until the waiver is reversed.
    let before = ledger_state(app);
    let early = reverse(c, &text(returned, "journal_entry_id")).await;
    assert_refused(&early, 422, "reversal_blocked_by_later_activity", &[]);
    assert_eq!(ledger_state(app), before);
    reversed(c, waiver).await;
    assert_eq!(owed(c, loan.id).await.fees, 5500);
    assert_books_clean(app, c, "waiver reversed").await;
    reversed(c, returned).await;
    assert_eq!(
        owed(c, loan.id).await,
        Owed {
            principal: 92_800,
            disbursed: 100_000,
            paid: 10_000,
            ..Owed::default()
        }
    );
    assert_books_clean(app, c, "return reversed").await;
    reversed(c, payment).await;
    assert_books_clean(app, c, "payment reversed").await;
    reversed(c, accrual).await;
    assert_books_clean(app, c, "accrual reversed").await;
    reversed(c, fee).await;
    assert_eq!(
        owed(c, loan.id).await,
        Owed {
            principal: 100_000,
            disbursed: 100_000,
            ..Owed::default()
        }
    );
    assert_books_clean(app, c, "fee reversed").await;
}

/// The disbursement cannot be reversed while settled; then the settlement and the disbursement
/// are reversed, and every account is back to zero.
async fn reverse_the_settlement_then_the_disbursement(
    app: &TestApp,
    c: &Caller<'_>,
    life: &LoanLife,
) {
    let LoanLife {
        loan, settlement, ..
    } = life;
    let still_settled = reverse(c, &loan.disbursement_entry()).await;
    assert_refused(
        &still_settled,
        422,
        "reversal_blocked_by_later_activity",
        &[],
    );
    reversed(c, settlement).await;
    assert_books_clean(app, c, "settlement reversed").await;
    reversed(c, &loan.disbursement).await;

    assert_eq!(owed(c, loan.id).await, Owed::default());
    assert_gl(
        c,
        &[
            ("1000", 0),
            ("1100", 0),
            ("1200", 0),
            ("1300", 0),
            ("2000", 0),
            ("2100", 0),
            ("4000", 0),
            ("4100", 0),
            ("4200", 0),
            ("5000", 0),
        ],
    )
    .await;
    assert_books_clean(app, c, "disbursement reversed").await;
}

#[tokio::test]
async fn a_whole_loan_life_stays_reconciled_after_every_step_and_unwinds_only_in_order() {
    let app = spawn_app().await;
    let c = app.tenant();
    assert_books_clean(&app, &c, "empty").await;

    let (loan, settlement, fee, accrual, payment) =
        open_settle_assess_accrue_and_pay(&app, &c).await;
    let returned = return_the_payment_with_an_nsf_fee(&app, &c, &loan, &payment).await;
    let waiver = waive_the_fee_in_full(&app, &c, &loan, &fee).await;
    let (written_off, recovery) = charge_off_then_recover(&app, &c, &loan).await;
    let life = LoanLife {
        loan,
        settlement,
        fee,
        accrual,
        payment,
        returned,
        waiver,
        written_off,
        recovery,
    };

    assert_reversals_out_of_order_are_refused(&app, &c, &life).await;
    reverse_the_recovery_then_the_charge_off(&app, &c, &life).await;
    reverse_the_waiver_return_payment_accrual_and_fee(&app, &c, &life).await;
    reverse_the_settlement_then_the_disbursement(&app, &c, &life).await;
}

#[tokio::test]
async fn a_returned_recovery_cannot_come_back_once_another_recovery_took_its_place() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loan = open(&c, "10000").await;
    charge_off(&c, &loan).await;
    let first = recover(&c, &loan, "10000").await;
    assert_eq!(text(&first, "recovery_minor"), "10000");
    let mut body = return_body(&text(&first, "payment_event_id"));
    body["effective_at"] = json!(RECOVERED_ON);
    let returned = return_payment(&c, &body).await;
    let second = recover(&c, &loan, "10000").await;
    assert_eq!(text(&second, "recovery_minor"), "10000");
    // Reviving the first recovery would recover 20,000 of 10,000 written off.
    let revived = reverse(&c, &text(&returned, "journal_entry_id")).await;
    assert_refused(&revived, 422, "reversal_blocked_by_later_activity", &[]);
    let s = standing(&c, loan.id).await;
    assert_eq!((s.charged_off, s.recovered), (10_000, 10_000));
    // Everything written off is recovered: a further payment goes to suspense alone.
    let more = recover(&c, &loan, "1").await;
    assert_eq!(text(&more, "recovery_minor"), "0");
    assert_eq!(more["allocation"]["suspense_minor"], "1");
    assert_books_clean(&app, &c, "after the refused revival").await;
}
