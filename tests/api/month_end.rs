//! Month-end (SPEC §1 invariant 7, §6d): `POST /v1/period-closes` and the period lock it sets —
//! every write type is refused on and before the lock date and accepted the day after, a
//! reversal without `effective_at` of a closed-period entry lands on the first open day — the
//! close's refusals, replay and stored trial balance, `GET /v1/period-closes`, `GET
//! /v1/trial-balance` (every chart account, balanced, equal to the account balances, as of a
//! date, per currency), the reconciliation check `closed_periods_unchanged`, tenant isolation and
//! scopes.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::accruals::accrual_body;
use crate::fees::fee_body;
use crate::helpers::{
    Answer, Caller, TestApp, assert_keys, assert_verify_passes, created, disbursement_body, key,
    minor, now, run_verify, spawn_app, text, uuid,
};
use crate::payments::{assert_problem, entry, ledger_state, lines_of, payment_body};

/// The lock date most tests close through, and the days around it.
const LOCK: &str = "2026-03-31";
const DAY_BEFORE_LOCK: &str = "2026-03-30";
const EARLY_IN_PERIOD: &str = "2026-02-01";
const FIRST_OPEN_DAY: &str = "2026-04-01";

/// The chart (SPEC §8), in code order, with each account's normal side.
const CHART: [(&str, &str); 10] = [
    ("1000", "debit"),
    ("1100", "debit"),
    ("1200", "debit"),
    ("1300", "debit"),
    ("2000", "credit"),
    ("2100", "credit"),
    ("4000", "credit"),
    ("4100", "credit"),
    ("4200", "credit"),
    ("5000", "debit"),
];

const CLOSE_KEYS: [&str; 4] = [
    "period_close_id",
    "through_date",
    "closed_at",
    "trial_balance",
];
const LISTED_CLOSE_KEYS: [&str; 3] = ["period_close_id", "through_date", "closed_at"];
const TRIAL_BALANCE_KEYS: [&str; 6] = [
    "as_of_date",
    "currency",
    "accounts",
    "dr_total_minor",
    "cr_total_minor",
    "balanced",
];
const TRIAL_BALANCE_ACCOUNT_KEYS: [&str; 6] = [
    "account_code",
    "account_name",
    "normal_balance",
    "dr_total_minor",
    "cr_total_minor",
    "balance_minor",
];

// ---------------------------------------------------------------------------------------------
// Dates.

/// A date as `YYYY-MM-DD`.
fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Today (UTC) as the service sees it.
fn today() -> time::Date {
    let secs = i64::try_from(now()).expect("seconds fit i64");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .expect("valid timestamp")
        .date()
}

// ---------------------------------------------------------------------------------------------
// Answers.

/// Asserts a refusal: status, `code` and exactly these `errors[].field`s.
fn assert_refused(a: &Answer, status: u16, code: &str, fields: &[&str]) {
    assert_problem(a, status, code);
    assert_eq!(a.error_fields(), fields, "{}", a.text);
}

/// Asserts a lowercase version-7 UUID.
fn assert_v7(v: &Value, field: &str) {
    let id = text(v, field);
    let parsed = Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{field} ({e}): {v}"));
    assert_eq!(parsed.get_version_num(), 7, "{field}: {v}");
    assert_eq!(id, id.to_lowercase(), "{field}: {v}");
}

/// Asserts an RFC 3339 UTC timestamp with a `Z` suffix.
fn assert_timestamp(v: &Value, field: &str) {
    let t = text(v, field);
    assert!(t.contains('T') && t.ends_with('Z'), "{field}: {v}");
}

// ---------------------------------------------------------------------------------------------
// Closes and trial balances.

fn close_body(through_date: &str) -> Value {
    json!({ "through_date": through_date, "metadata": { "period": "month-end" } })
}

/// Closes through `through_date` (asserting 201); returns the body.
async fn close(c: &Caller<'_>, through_date: &str) -> Value {
    let body = created(
        &c.post_period_close(&key("close"), &close_body(through_date))
            .await,
    );
    assert_eq!(body["through_date"], through_date, "{body}");
    body
}

/// `GET /v1/period-closes` (asserting 200).
async fn closes(c: &Caller<'_>) -> Value {
    let a = c.get("/v1/period-closes").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_keys(&body, &["lock_date", "items"]);
    body
}

/// The tenant's lock date (`None` if never closed).
async fn lock_date(c: &Caller<'_>) -> Option<String> {
    closes(c).await["lock_date"].as_str().map(str::to_owned)
}

/// `GET /v1/trial-balance` (asserting 200 and its shape).
async fn trial_balance(c: &Caller<'_>, currency: &str, as_of: Option<&str>) -> Value {
    let a = c.get_trial_balance(currency, as_of).await;
    assert_eq!(a.status, 200, "{currency} {as_of:?}: {}", a.text);
    let tb = a.json();
    assert_keys(&tb, &TRIAL_BALANCE_KEYS);
    assert_eq!(tb["currency"], currency, "{tb}");
    if let Some(date) = as_of {
        assert_eq!(tb["as_of_date"], date, "{tb}");
    }
    tb
}

/// A trial balance's `(account_code, balance_minor)` pairs, in the order given.
fn tb_balances(tb: &Value) -> Vec<(String, i64)> {
    tb["accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no accounts: {tb}"))
        .iter()
        .map(|a| (text(a, "account_code"), minor(a, "balance_minor")))
        .collect()
}

/// A trial balance's `(account_code, dr_total, cr_total)`, in the order given.
fn tb_totals(tb: &Value) -> Vec<(String, i64, i64)> {
    tb["accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no accounts: {tb}"))
        .iter()
        .map(|a| {
            (
                text(a, "account_code"),
                minor(a, "dr_total_minor"),
                minor(a, "cr_total_minor"),
            )
        })
        .collect()
}

/// The currencies of a close's stored trial balance, in the order given.
fn stored_currencies(close: &Value) -> Vec<String> {
    close["trial_balance"]
        .as_array()
        .unwrap_or_else(|| panic!("no trial_balance: {close}"))
        .iter()
        .map(|item| text(item, "currency"))
        .collect()
}

/// A close's stored `(account_code, balance_minor)` pairs for `currency`, asserting the item's
/// and every account's exact keys.
fn stored_balances(close: &Value, currency: &str) -> Vec<(String, i64)> {
    let item = close["trial_balance"]
        .as_array()
        .unwrap_or_else(|| panic!("no trial_balance: {close}"))
        .iter()
        .find(|item| item["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} in {close}"));
    assert_keys(item, &["currency", "accounts"]);
    let accounts = item["accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no accounts: {item}"));
    for account in accounts {
        assert_keys(account, &["account_code", "balance_minor"]);
    }
    tb_balances(item)
}

/// Every chart account's `(code, balance)` with these non-zero balances, in code order.
fn chart_with(non_zero: &[(&str, i64)]) -> Vec<(String, i64)> {
    CHART
        .iter()
        .map(|(code, _)| {
            let amount = non_zero
                .iter()
                .find(|(c, _)| c == code)
                .map_or(0, |(_, m)| *m);
            ((*code).to_owned(), amount)
        })
        .collect()
}

/// The chart's codes in code order.
fn chart_codes() -> Vec<String> {
    CHART.iter().map(|(c, _)| (*c).to_owned()).collect()
}

/// Asserts a trial balance balances: the accounts' debits and credits sum to the top-level
/// totals, which are equal, `balanced` is true, and each balance is its totals on its normal
/// side.
fn assert_balanced(tb: &Value) {
    let totals = tb_totals(tb);
    let dr: i64 = totals.iter().map(|(_, dr, _)| dr).sum();
    let cr: i64 = totals.iter().map(|(_, _, cr)| cr).sum();
    assert_eq!(minor(tb, "dr_total_minor"), dr, "{tb}");
    assert_eq!(minor(tb, "cr_total_minor"), cr, "{tb}");
    assert_eq!(dr, cr, "{tb}");
    assert_eq!(tb["balanced"], true, "{tb}");
    for account in tb["accounts"].as_array().expect("accounts") {
        let (dr, cr) = (
            minor(account, "dr_total_minor"),
            minor(account, "cr_total_minor"),
        );
        let expected = if account["normal_balance"] == "debit" {
            dr - cr
        } else {
            cr - dr
        };
        assert_eq!(minor(account, "balance_minor"), expected, "{account}");
    }
}

/// Asserts every account of a trial balance shows the totals `GET
/// /v1/accounts/{code}/balance` shows for the same currency and date.
async fn assert_matches_account_balances(c: &Caller<'_>, tb: &Value) {
    let currency = text(tb, "currency");
    let as_of = text(tb, "as_of_date");
    for account in tb["accounts"].as_array().expect("accounts") {
        let code = text(account, "account_code");
        let a = c
            .get(&format!(
                "/v1/accounts/{code}/balance?currency={currency}&as_of_date={as_of}"
            ))
            .await;
        assert_eq!(a.status, 200, "{code}: {}", a.text);
        let b = a.json();
        assert_eq!(b["as_of_date"], as_of.as_str(), "{b}");
        assert_eq!(b["account_name"], account["account_name"], "{code}: {b}");
        assert_eq!(
            minor(&b, "dr_balance_minor"),
            minor(account, "dr_total_minor"),
            "{code} {currency} as of {as_of}: {b} vs {account}"
        );
        assert_eq!(
            minor(&b, "cr_balance_minor"),
            minor(account, "cr_total_minor"),
            "{code} {currency} as of {as_of}: {b} vs {account}"
        );
        assert_eq!(
            minor(&b, "normal_balance_minor"),
            minor(account, "balance_minor"),
            "{code} {currency} as of {as_of}: {b} vs {account}"
        );
    }
}

/// Asserts a close's stored trial balance equals `GET /v1/trial-balance` as of its
/// `through_date`, currency by currency.
async fn assert_stored_equals_recomputed(c: &Caller<'_>, close: &Value) {
    let through = text(close, "through_date");
    for currency in stored_currencies(close) {
        let tb = trial_balance(c, &currency, Some(&through)).await;
        assert_eq!(
            stored_balances(close, &currency),
            tb_balances(&tb),
            "{currency} through {through}"
        );
    }
}

/// The `closed_periods_unchanged` check of the tenant's reconciliation, asserting every check
/// and the ledger integrity are ok.
async fn assert_reconciled_with_closes(c: &Caller<'_>) -> Value {
    let a = c.get("/v1/reconciliation/status").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let report = a.json();
    assert_eq!(report["ledger_integrity"]["status"], "ok", "{report}");
    let checks = report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {report}"));
    for check in checks {
        assert_eq!(check["status"], "ok", "{check}");
    }
    checks
        .iter()
        .find(|c| c["name"] == "closed_periods_unchanged")
        .unwrap_or_else(|| panic!("no closed_periods_unchanged check: {report}"))
        .clone()
}

/// Row counts of everything a close must not write: entries, lines, events, webhooks.
fn postings(app: &TestApp) -> [i64; 4] {
    [
        app.count("journal_entries"),
        app.count("journal_lines"),
        app.count("events"),
        app.count("webhook_outbox"),
    ]
}

// ---------------------------------------------------------------------------------------------
// Set-up: a loan whose January lies in the period that gets closed.

/// A USD loan: disbursed 100 000 on 2026-01-05, paid 20 000 (all principal) on 2026-01-08,
/// charged a 1 500 late fee on 2026-01-10 (still owed).
struct January {
    loan: Uuid,
    borrower: Uuid,
    disbursement: Value,
    payment: Value,
    fee: Value,
}

fn dated(mut body: Value, date: &str) -> Value {
    body["effective_at"] = json!(date);
    body
}

async fn january(c: &Caller<'_>) -> January {
    let (loan, borrower) = (uuid(), uuid());
    let disbursement = created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(loan, borrower, "100000"), "2026-01-05"),
        )
        .await,
    );
    let payment = created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(loan, borrower, "20000"), "2026-01-08"),
        )
        .await,
    );
    assert_eq!(
        payment["allocation"]["principal_minor"], "20000",
        "{payment}"
    );
    let fee = created(
        &c.post_fee(&key("fee"), &dated(fee_body(loan, "1500"), "2026-01-10"))
            .await,
    );
    January {
        loan,
        borrower,
        disbursement,
        payment,
        fee,
    }
}

/// A January loan, then the period closed through [`LOCK`].
async fn january_closed(c: &Caller<'_>) -> January {
    let j = january(c).await;
    close(c, LOCK).await;
    j
}

/// Posts `body(date)` to `path` dated on the lock date, the day before and early in the
/// closed period — each 422 `period_closed` naming exactly `field`, writing nothing — then
/// dated the first open day: 201, its journal entry dated that day.
async fn assert_locked_until_the_first_open_day(
    app: &TestApp,
    c: &Caller<'_>,
    path: &str,
    field: &str,
    body: impl Fn(&str) -> Value,
) -> Value {
    let before = ledger_state(app);
    for date in [LOCK, DAY_BEFORE_LOCK, EARLY_IN_PERIOD] {
        let a = c.post(path, &key("locked"), &body(date)).await;

        assert_refused(&a, 422, "period_closed", &[field]);
        assert_eq!(ledger_state(app), before, "{path} dated {date}");
    }

    let accepted = created(&c.post(path, &key("open"), &body(FIRST_OPEN_DAY)).await);

    let posted = entry(c, &text(&accepted, "journal_entry_id")).await;
    assert_eq!(posted["effective_at"], FIRST_OPEN_DAY, "{path}: {posted}");
    accepted
}

// ---------------------------------------------------------------------------------------------
// The lock, write type by write type.

#[tokio::test]
async fn disbursements_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;

    // A new loan's first disbursement.
    assert_locked_until_the_first_open_day(&app, &c, "/v1/disbursements", "effective_at", |d| {
        dated(disbursement_body(uuid(), uuid(), "5000"), d)
    })
    .await;
    // A further disbursement on the January loan.
    assert_locked_until_the_first_open_day(&app, &c, "/v1/disbursements", "effective_at", |d| {
        dated(disbursement_body(j.loan, j.borrower, "5000"), d)
    })
    .await;
}

#[tokio::test]
async fn payments_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;

    assert_locked_until_the_first_open_day(&app, &c, "/v1/payments", "effective_at", |d| {
        dated(payment_body(j.loan, j.borrower, "2500"), d)
    })
    .await;
}

#[tokio::test]
async fn fees_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;

    assert_locked_until_the_first_open_day(&app, &c, "/v1/fees", "effective_at", |d| {
        dated(fee_body(j.loan, "700"), d)
    })
    .await;
}

#[tokio::test]
async fn accrual_batches_dated_on_or_before_the_lock_date_are_refused_naming_accrual_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;

    assert_locked_until_the_first_open_day(&app, &c, "/v1/accruals/batch", "accrual_date", |d| {
        accrual_body(d, &[(j.loan, 80_000, 22)])
    })
    .await;
}

#[tokio::test]
async fn reversals_with_an_effective_at_on_or_before_the_lock_date_are_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    let fee_entry = text(&j.fee, "journal_entry_id");

    let reversal =
        assert_locked_until_the_first_open_day(&app, &c, "/v1/reversals", "effective_at", |d| {
            json!({
                "reverses_entry_id": fee_entry,
                "reason_code": "error_correction",
                "reason_description": "fee charged in error",
                "effective_at": d,
            })
        })
        .await;

    assert_eq!(
        reversal["reverses_entry_id"],
        fee_entry.as_str(),
        "{reversal}"
    );
}

#[tokio::test]
async fn settlements_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    let disbursement_event = text(&j.disbursement, "disbursement_event_id");

    assert_locked_until_the_first_open_day(
        &app,
        &c,
        "/v1/disbursement-settlements",
        "effective_at",
        |d| {
            json!({
                "disbursement_event_id": disbursement_event,
                "effective_at": d,
                "bank_account_ref": "bank:operating-01",
            })
        },
    )
    .await;
}

#[tokio::test]
async fn payment_returns_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    let payment_event = text(&j.payment, "payment_event_id");

    assert_locked_until_the_first_open_day(&app, &c, "/v1/payment-returns", "effective_at", |d| {
        json!({
            "payment_event_id": payment_event,
            "return_reason": "insufficient_funds",
            "return_code": "R01",
            "effective_at": d,
            "nsf_fee_minor": "2500",
        })
    })
    .await;
}

#[tokio::test]
async fn fee_waivers_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    let fee_event = text(&j.fee, "fee_event_id");

    assert_locked_until_the_first_open_day(&app, &c, "/v1/fee-waivers", "effective_at", |d| {
        json!({
            "fee_event_id": fee_event,
            "reason": "goodwill",
            "effective_at": d,
        })
    })
    .await;
}

#[tokio::test]
async fn charge_offs_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;

    assert_locked_until_the_first_open_day(&app, &c, "/v1/charge-offs", "effective_at", |d| {
        json!({
            "loan_id": j.loan.to_string(),
            "effective_at": d,
            "reason_code": "delinquency",
        })
    })
    .await;
}

#[tokio::test]
async fn adjustments_dated_on_or_before_the_lock_date_are_refused_and_the_next_day_is_open() {
    let app = spawn_app().await;
    let c = app.tenant();
    january_closed(&c).await;

    assert_locked_until_the_first_open_day(&app, &c, "/v1/adjustments", "effective_at", |d| {
        json!({
            "effective_at": d,
            "description": "bank charges",
            "lines": [
                { "account_code": "5000", "direction": "DR", "amount_minor": "250", "currency": "USD" },
                { "account_code": "1000", "direction": "CR", "amount_minor": "250", "currency": "USD" },
            ],
        })
    })
    .await;
}

#[tokio::test]
async fn a_write_refused_by_the_lock_does_not_consume_its_idempotency_key() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    let k = key("fee");

    let refused = c.post_fee(&k, &dated(fee_body(j.loan, "700"), LOCK)).await;
    assert_refused(&refused, 422, "period_closed", &["effective_at"]);

    let accepted = c
        .post_fee(&k, &dated(fee_body(j.loan, "700"), FIRST_OPEN_DAY))
        .await;
    created(&accepted);
}

#[tokio::test]
async fn the_lock_holds_for_every_currency_of_the_tenant_not_just_those_it_closed() {
    let app = spawn_app().await;
    let c = app.tenant();
    // Only USD has been posted when the period closes.
    january_closed(&c).await;
    let mut jpy = dated(disbursement_body(uuid(), uuid(), "50000"), LOCK);
    jpy["currency"] = json!("JPY");

    let a = c.post_disbursement(&key("disb"), &jpy).await;

    assert_refused(&a, 422, "period_closed", &["effective_at"]);
}

#[tokio::test]
async fn a_later_close_moves_the_lock_forward() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january_closed(&c).await;
    created(
        &c.post_fee(&key("fee"), &dated(fee_body(j.loan, "300"), "2026-05-15"))
            .await,
    );
    assert_eq!(lock_date(&c).await.as_deref(), Some(LOCK));

    close(&c, "2026-06-30").await;

    assert_eq!(lock_date(&c).await.as_deref(), Some("2026-06-30"));
    for date in ["2026-05-15", "2026-06-30"] {
        let a = c
            .post_fee(&key("fee"), &dated(fee_body(j.loan, "300"), date))
            .await;
        assert_refused(&a, 422, "period_closed", &["effective_at"]);
    }
    created(
        &c.post_fee(&key("fee"), &dated(fee_body(j.loan, "300"), "2026-07-01"))
            .await,
    );
    // What was posted in May before the second close stays in its books.
    let tb = trial_balance(&c, "USD", Some("2026-06-30")).await;
    assert!(
        tb_balances(&tb).contains(&("1300".to_owned(), 1800)),
        "{tb}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reversals without an effective_at.

#[tokio::test]
async fn a_reversal_without_effective_at_of_an_entry_in_a_closed_period_is_dated_the_first_open_day()
 {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january(&c).await;
    let on_lock_day = created(
        &c.post_fee(&key("fee"), &dated(fee_body(j.loan, "400"), LOCK))
            .await,
    );
    let after_lock = created(
        &c.post_fee(&key("fee"), &dated(fee_body(j.loan, "600"), "2026-05-10"))
            .await,
    );
    let closed = close(&c, LOCK).await;

    for (original, expected_date) in [
        (&j.fee, FIRST_OPEN_DAY),
        (&on_lock_day, FIRST_OPEN_DAY),
        (&after_lock, "2026-05-10"),
    ] {
        let original_entry = text(original, "journal_entry_id");
        let a = c
            .post_reversal(
                &key("rev"),
                &json!({
                    "reverses_entry_id": original_entry,
                    "reason_code": "error_correction",
                    "reason_description": "fee charged in error",
                }),
            )
            .await;

        let reversal = created(&a);
        let posted = entry(&c, &text(&reversal, "journal_entry_id")).await;
        assert_eq!(posted["effective_at"], expected_date, "{posted}");
        assert_eq!(
            posted["reverses_entry_id"],
            original_entry.as_str(),
            "{posted}"
        );
        let mirrored: Vec<(String, String, String)> = {
            let mut lines: Vec<(String, String, String)> =
                lines_of(&entry(&c, &original_entry).await)
                    .into_iter()
                    .map(|(a, d, m)| (a, if d == "DR" { "CR" } else { "DR" }.to_owned(), m))
                    .collect();
            lines.sort();
            lines
        };
        assert_eq!(lines_of(&posted), mirrored, "{posted}");
    }

    // The closed period keeps both January-to-March fees; the first open day has them reversed.
    let at_close = trial_balance(&c, "USD", Some(LOCK)).await;
    assert_eq!(tb_balances(&at_close), stored_balances(&closed, "USD"));
    assert!(
        tb_balances(&at_close).contains(&("1300".to_owned(), 1900)),
        "{at_close}"
    );
    let reopened = trial_balance(&c, "USD", Some(FIRST_OPEN_DAY)).await;
    assert!(
        tb_balances(&reopened).contains(&("1300".to_owned(), 0)),
        "{reopened}"
    );
    let as_of_close = c
        .get(&format!("/v1/loans/{}/balance?as_of_date={LOCK}", j.loan))
        .await;
    assert_eq!(as_of_close.status, 200, "{}", as_of_close.text);
    assert_eq!(
        as_of_close.json()["fees_receivable_minor"],
        "1900",
        "{}",
        as_of_close.text
    );
}

// ---------------------------------------------------------------------------------------------
// Close refusals and validation.

#[tokio::test]
async fn a_close_through_today_or_a_later_day_is_refused_as_not_past() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;
    let today = today();
    let tomorrow = today.next_day().expect("tomorrow");
    let yesterday = today.previous_day().expect("yesterday");
    let before = postings(&app);

    for date in [iso(today), iso(tomorrow), "2030-01-01".to_owned()] {
        let a = c.post_period_close(&key("close"), &close_body(&date)).await;

        assert_refused(&a, 422, "close_date_not_past", &["through_date"]);
    }
    assert_eq!(closes(&c).await, json!({ "lock_date": null, "items": [] }));
    assert_eq!(postings(&app), before);

    close(&c, &iso(yesterday)).await;
    assert_eq!(lock_date(&c).await, Some(iso(yesterday)));
}

#[tokio::test]
async fn a_close_on_or_before_the_lock_date_is_refused_as_already_closed() {
    let app = spawn_app().await;
    let c = app.tenant();
    january_closed(&c).await;

    for date in [LOCK, DAY_BEFORE_LOCK, "2026-01-31", "2025-12-31"] {
        let a = c.post_period_close(&key("close"), &close_body(date)).await;

        assert_refused(&a, 409, "period_already_closed", &["through_date"]);
    }
    let listed = closes(&c).await;
    assert_eq!(listed["lock_date"], LOCK, "{listed}");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // The day after the lock can be closed, and a refused close did not consume its key.
    let k = key("close");
    let refused = c.post_period_close(&k, &close_body(LOCK)).await;
    assert_refused(&refused, 409, "period_already_closed", &["through_date"]);
    created(&c.post_period_close(&k, &close_body(FIRST_OPEN_DAY)).await);
    assert_eq!(lock_date(&c).await.as_deref(), Some(FIRST_OPEN_DAY));
}

#[tokio::test]
async fn a_close_body_needs_a_real_through_date_and_nothing_unknown() {
    let app = spawn_app().await;
    let c = app.tenant();

    for (body, field) in [
        (json!({}), "through_date"),
        (json!({ "through_date": "2026-02-30" }), "through_date"),
        (json!({ "through_date": "2026/03/31" }), "through_date"),
        (json!({ "through_date": 20_260_331 }), "through_date"),
        (json!({ "through_date": LOCK, "lock": true }), "lock"),
        (json!({ "through_date": LOCK, "metadata": "x" }), "metadata"),
    ] {
        let a = c.post_period_close(&key("close"), &body).await;

        assert_refused(&a, 400, "validation_failed", &[field]);
    }
    assert_eq!(lock_date(&c).await, None);
}

#[tokio::test]
async fn a_close_without_an_idempotency_key_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();

    let a = Answer::from(
        app.post_raw("/v1/period-closes", Some(&c.token), None, &close_body(LOCK))
            .await,
    )
    .await;

    assert_problem(&a, 400, "idempotency_key_missing");
    assert_eq!(lock_date(&c).await, None);
}

// ---------------------------------------------------------------------------------------------
// The close's answer, replay and listing.

#[tokio::test]
async fn a_close_answers_its_id_date_time_and_the_trial_balance_of_every_currency_it_has_posted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january(&c).await;
    // JPY in the period; USD activity after the through date (posted before the close);
    // EUR only after the through date.
    let (jpy_loan, jpy_borrower) = (uuid(), uuid());
    let mut jpy = dated(
        disbursement_body(jpy_loan, jpy_borrower, "50000"),
        "2026-02-03",
    );
    jpy["currency"] = json!("JPY");
    created(&c.post_disbursement(&key("disb"), &jpy).await);
    let mut jpy_fee = dated(fee_body(jpy_loan, "300"), "2026-02-04");
    jpy_fee["currency"] = json!("JPY");
    created(&c.post_fee(&key("fee"), &jpy_fee).await);
    created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(j.loan, j.borrower, "9000"), "2026-04-02"),
        )
        .await,
    );
    let mut eur = dated(disbursement_body(uuid(), uuid(), "70000"), "2026-04-03");
    eur["currency"] = json!("EUR");
    created(&c.post_disbursement(&key("disb"), &eur).await);
    let before = postings(&app);

    let body = close(&c, LOCK).await;

    assert_keys(&body, &CLOSE_KEYS);
    assert_v7(&body, "period_close_id");
    assert_timestamp(&body, "closed_at");
    assert_eq!(stored_currencies(&body), ["EUR", "JPY", "USD"], "{body}");
    for currency in ["EUR", "JPY", "USD"] {
        let codes: Vec<String> = stored_balances(&body, currency)
            .into_iter()
            .map(|(code, _)| code)
            .collect();
        assert_eq!(codes, chart_codes(), "{currency}: {body}");
    }
    assert_eq!(
        stored_balances(&body, "USD"),
        chart_with(&[
            ("1000", 20_000),
            ("1100", 80_000),
            ("1300", 1_500),
            ("2000", 100_000),
            ("4100", 1_500),
        ]),
        "{body}"
    );
    assert_eq!(
        stored_balances(&body, "JPY"),
        chart_with(&[
            ("1100", 50_000),
            ("1300", 300),
            ("2000", 50_000),
            ("4100", 300)
        ]),
        "{body}"
    );
    assert_eq!(stored_balances(&body, "EUR"), chart_with(&[]), "{body}");
    assert_stored_equals_recomputed(&c, &body).await;
    // It posts no journal entry, event or webhook.
    assert_eq!(postings(&app), before);
}

#[tokio::test]
async fn a_close_of_a_tenant_that_never_posted_stores_an_empty_trial_balance() {
    let app = spawn_app().await;
    let c = app.tenant();

    let body = close(&c, LOCK).await;

    assert_eq!(body["trial_balance"], json!([]), "{body}");
    assert_eq!(lock_date(&c).await.as_deref(), Some(LOCK));
}

#[tokio::test]
async fn replaying_a_close_answers_200_with_the_identical_body_and_closes_nothing_new() {
    let app = spawn_app().await;
    let c = app.tenant();
    let j = january(&c).await;
    let k = key("close");
    let first = c.post_period_close(&k, &close_body(LOCK)).await;
    let original = created(&first);
    // The books move on after the close.
    created(
        &c.post_fee(&key("fee"), &dated(fee_body(j.loan, "800"), FIRST_OPEN_DAY))
            .await,
    );
    let before = postings(&app);

    let replay = c.post_period_close(&k, &close_body(LOCK)).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
    assert_eq!(postings(&app), before);
    let listed = closes(&c).await;
    assert_eq!(
        listed["items"],
        json!([{
            "period_close_id": original["period_close_id"],
            "through_date": LOCK,
            "closed_at": original["closed_at"],
        }]),
        "{listed}"
    );
    let mismatch = c.post_period_close(&k, &close_body("2026-04-30")).await;
    assert_problem(&mismatch, 422, "idempotency_mismatch");
    assert_eq!(lock_date(&c).await.as_deref(), Some(LOCK));
}

#[tokio::test]
async fn closes_are_listed_newest_first_with_the_lock_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    assert_eq!(closes(&c).await, json!({ "lock_date": null, "items": [] }));
    january(&c).await;

    let mut made = Vec::new();
    for date in ["2026-01-31", "2026-02-28", LOCK] {
        made.push(close(&c, date).await);
    }

    let listed = closes(&c).await;
    assert_eq!(listed["lock_date"], LOCK, "{listed}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{listed}");
    for (item, made) in items.iter().zip(made.iter().rev()) {
        assert_keys(item, &LISTED_CLOSE_KEYS);
        assert_eq!(item["period_close_id"], made["period_close_id"], "{listed}");
        assert_eq!(item["through_date"], made["through_date"], "{listed}");
        assert_eq!(item["closed_at"], made["closed_at"], "{listed}");
    }
    let closed_at: Vec<String> = items.iter().map(|i| text(i, "closed_at")).collect();
    let mut newest_first = closed_at.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(closed_at, newest_first);
}

// ---------------------------------------------------------------------------------------------
// Closed periods stay closed (invariant 7).

/// A busy February–March in USD on two loans, touching every write type: disbursements, a
/// settlement, fees, an accrual, payments, a return with an NSF fee, a waiver, an adjustment,
/// a reversal, a charge-off and a recovery. Returns the adjustment's receipt (dated 2026-03-07).
async fn busy_quarter(c: &Caller<'_>) -> Value {
    let (a, a_borrower) = (uuid(), uuid());
    let disbursed = created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(a, a_borrower, "100000"), "2026-02-02"),
        )
        .await,
    );
    created(
        &c.post_settlement(
            &key("settle"),
            &json!({
                "disbursement_event_id": disbursed["disbursement_event_id"],
                "effective_at": "2026-02-03",
            }),
        )
        .await,
    );
    let fee = created(
        &c.post_fee(&key("fee"), &dated(fee_body(a, "1500"), "2026-02-10"))
            .await,
    );
    created(
        &c.post_accruals(
            &key("accrual"),
            &accrual_body("2026-02-14", &[(a, 100_000, 27)]),
        )
        .await,
    );
    let payment = created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(a, a_borrower, "30000"), "2026-03-01"),
        )
        .await,
    );
    created(
        &c.post_payment_return(
            &key("return"),
            &json!({
                "payment_event_id": payment["payment_event_id"],
                "return_reason": "insufficient_funds",
                "effective_at": "2026-03-05",
                "nsf_fee_minor": "2500",
            }),
        )
        .await,
    );
    created(
        &c.post_fee_waiver(
            &key("waive"),
            &json!({
                "fee_event_id": fee["fee_event_id"],
                "amount_minor": "500",
                "reason": "goodwill",
                "effective_at": "2026-03-06",
            }),
        )
        .await,
    );
    let adjustment = created(
        &c.post_adjustment(
            &key("adjust"),
            &json!({
                "effective_at": "2026-03-07",
                "description": "bank charges",
                "lines": [
                    { "account_code": "5000", "direction": "DR", "amount_minor": "300", "currency": "USD" },
                    { "account_code": "1000", "direction": "CR", "amount_minor": "300", "currency": "USD" },
                ],
            }),
        )
        .await,
    );
    let mistaken = created(
        &c.post_fee(&key("fee"), &dated(fee_body(a, "700"), "2026-03-08"))
            .await,
    );
    created(
        &c.post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": mistaken["journal_entry_id"],
                "reason_code": "duplicate",
                "reason_description": "charged twice",
                "effective_at": "2026-03-09",
            }),
        )
        .await,
    );
    charged_off_and_recovered(c).await;
    adjustment
}

/// Loan B of [`busy_quarter`]: disbursed 50 000 on 2026-02-05, charged off on 2026-03-10,
/// 10 000 recovered on 2026-03-20.
async fn charged_off_and_recovered(c: &Caller<'_>) {
    let (b, b_borrower) = (uuid(), uuid());
    created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(b, b_borrower, "50000"), "2026-02-05"),
        )
        .await,
    );
    created(
        &c.post_charge_off(
            &key("chargeoff"),
            &json!({
                "loan_id": b.to_string(),
                "effective_at": "2026-03-10",
                "reason_code": "bankruptcy",
            }),
        )
        .await,
    );
    let recovery = created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(b, b_borrower, "10000"), "2026-03-20"),
        )
        .await,
    );
    assert_eq!(recovery["recovery_minor"], "10000", "{recovery}");
}

/// After the closes through February and March: a new USD loan, a payment, a new currency
/// (JPY), and a default-dated reversal of the March adjustment (so dated the first open day).
async fn after_the_closes(c: &Caller<'_>, adjustment: &Value) {
    let (loan, borrower) = (uuid(), uuid());
    created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(loan, borrower, "40000"), "2026-04-02"),
        )
        .await,
    );
    created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(loan, borrower, "1000"), "2026-04-03"),
        )
        .await,
    );
    let mut jpy = dated(disbursement_body(uuid(), uuid(), "90000"), "2026-04-04");
    jpy["currency"] = json!("JPY");
    created(&c.post_disbursement(&key("disb"), &jpy).await);
    let reversal = created(
        &c.post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": adjustment["journal_entry_id"],
                "reason_code": "error_correction",
                "reason_description": "charges refunded by the bank",
            }),
        )
        .await,
    );
    let posted = entry(c, &text(&reversal, "journal_entry_id")).await;
    assert_eq!(posted["effective_at"], FIRST_OPEN_DAY, "{posted}");
}

#[tokio::test]
async fn a_closes_stored_trial_balance_still_equals_the_one_recomputed_after_later_writes() {
    let app = spawn_app().await;
    let c = app.tenant();
    let adjustment = busy_quarter(&c).await;
    let february = close(&c, "2026-02-28").await;
    let march = close(&c, LOCK).await;
    assert_eq!(stored_currencies(&march), ["USD"], "{march}");
    assert_stored_equals_recomputed(&c, &february).await;
    assert_stored_equals_recomputed(&c, &march).await;
    assert_ne!(
        stored_balances(&february, "USD"),
        stored_balances(&march, "USD")
    );

    after_the_closes(&c, &adjustment).await;

    assert_stored_equals_recomputed(&c, &february).await;
    assert_stored_equals_recomputed(&c, &march).await;
    // The open period did move: the reversed bank charges are back in cash, and more.
    let current = trial_balance(&c, "USD", None).await;
    assert_ne!(
        tb_balances(&current),
        stored_balances(&march, "USD"),
        "{current}"
    );
}

#[tokio::test]
async fn reconciliation_reports_closed_periods_unchanged_ok_after_closes_and_later_writes() {
    let app = spawn_app().await;
    let c = app.tenant();
    let adjustment = busy_quarter(&c).await;
    let check = assert_reconciled_with_closes(&c).await;
    assert_eq!(check["status"], "ok", "{check}");

    close(&c, "2026-02-28").await;
    close(&c, LOCK).await;
    let check = assert_reconciled_with_closes(&c).await;
    assert_eq!(check["status"], "ok", "{check}");

    after_the_closes(&c, &adjustment).await;

    let check = assert_reconciled_with_closes(&c).await;
    assert_eq!(check["status"], "ok", "{check}");
    assert_verify_passes(&app, "after the closes");
}

#[tokio::test]
async fn reconciliation_flags_a_stored_close_that_no_longer_recomputes() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;
    close(&c, LOCK).await;
    let check = assert_reconciled_with_closes(&c).await;
    assert_eq!(check["status"], "ok", "{check}");

    // Tamper with the stored principal (80 000) behind the service's back.
    let db = rusqlite::Connection::open(&app.db_path).expect("open db read-write");
    db.execute_batch(
        "DROP TRIGGER period_closes_no_update; \
         UPDATE period_closes SET trial_balance = replace(trial_balance, '\"80000\"', '\"80001\"');",
    )
    .expect("tamper");
    let stored: String = db
        .query_row("SELECT trial_balance FROM period_closes", [], |r| r.get(0))
        .expect("stored");
    assert!(stored.contains("\"80001\""), "{stored}");
    drop(db);

    let a = c.get("/v1/reconciliation/status").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let report = a.json();
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "closed_periods_unchanged")
        .unwrap_or_else(|| panic!("no closed_periods_unchanged check: {report}"))
        .clone();
    assert_ne!(check["status"], "ok", "{check}");
    let out = run_verify(&app);
    assert_ne!(
        out.status.code(),
        Some(0),
        "hpts verify passed a tampered close"
    );
}

// ---------------------------------------------------------------------------------------------
// GET /v1/trial-balance.

#[tokio::test]
async fn a_trial_balance_lists_every_chart_account_in_code_order_with_its_name_and_normal_side() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;

    let tb = trial_balance(&c, "USD", Some(LOCK)).await;

    let accounts = tb["accounts"].as_array().expect("accounts");
    let listed: Vec<(String, String)> = accounts
        .iter()
        .map(|a| (text(a, "account_code"), text(a, "normal_balance")))
        .collect();
    let chart: Vec<(String, String)> = CHART
        .iter()
        .map(|(code, side)| ((*code).to_owned(), (*side).to_owned()))
        .collect();
    assert_eq!(listed, chart, "{tb}");
    for account in accounts {
        assert_keys(account, &TRIAL_BALANCE_ACCOUNT_KEYS);
        assert!(!text(account, "account_name").is_empty(), "{account}");
    }
    // Zero balances are listed too.
    assert_eq!(
        tb_balances(&tb),
        chart_with(&[
            ("1000", 20_000),
            ("1100", 80_000),
            ("1300", 1_500),
            ("2000", 100_000),
            ("4100", 1_500),
        ]),
        "{tb}"
    );
    assert_balanced(&tb);
    assert_matches_account_balances(&c, &tb).await;
}

#[tokio::test]
async fn a_trial_balance_of_every_write_type_balances_and_matches_each_account_balance() {
    let app = spawn_app().await;
    let c = app.tenant();
    let adjustment = busy_quarter(&c).await;
    close(&c, "2026-02-28").await;
    close(&c, LOCK).await;
    after_the_closes(&c, &adjustment).await;

    for as_of in [
        Some("2026-02-02"),
        Some("2026-02-14"),
        Some("2026-03-05"),
        Some("2026-03-09"),
        Some(LOCK),
        Some(FIRST_OPEN_DAY),
        None,
    ] {
        let tb = trial_balance(&c, "USD", as_of).await;

        assert_eq!(
            tb_totals(&tb)
                .into_iter()
                .map(|(code, _, _)| code)
                .collect::<Vec<_>>(),
            chart_codes(),
            "{tb}"
        );
        assert_balanced(&tb);
        assert_matches_account_balances(&c, &tb).await;
    }
}

#[tokio::test]
async fn a_trial_balance_excludes_entries_dated_after_its_as_of_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(loan, borrower, "100000"), "2026-02-01"),
        )
        .await,
    );
    created(
        &c.post_fee(&key("fee"), &dated(fee_body(loan, "1500"), "2026-02-10"))
            .await,
    );
    created(
        &c.post_payment(
            &key("pay"),
            &dated(payment_body(loan, borrower, "20000"), "2026-03-01"),
        )
        .await,
    );

    let before_anything = trial_balance(&c, "USD", Some("2026-01-31")).await;
    let disbursed = trial_balance(&c, "USD", Some("2026-02-09")).await;
    let fee_day = trial_balance(&c, "USD", Some("2026-02-10")).await;
    let paid = trial_balance(&c, "USD", Some("2026-03-01")).await;

    assert_eq!(tb_balances(&before_anything), chart_with(&[]));
    assert_eq!(minor(&before_anything, "dr_total_minor"), 0);
    assert_eq!(before_anything["balanced"], true);
    assert_eq!(
        tb_balances(&disbursed),
        chart_with(&[("1100", 100_000), ("2000", 100_000)])
    );
    assert_eq!(minor(&disbursed, "dr_total_minor"), 100_000);
    assert_eq!(
        tb_balances(&fee_day),
        chart_with(&[
            ("1100", 100_000),
            ("1300", 1_500),
            ("2000", 100_000),
            ("4100", 1_500)
        ])
    );
    assert_eq!(
        tb_balances(&paid),
        chart_with(&[
            ("1000", 20_000),
            ("1100", 81_500),
            ("2000", 100_000),
            ("4100", 1_500)
        ])
    );
    assert_eq!(minor(&paid, "dr_total_minor"), 121_500);
    assert_eq!(minor(&paid, "cr_total_minor"), 121_500);
    for tb in [&before_anything, &disbursed, &fee_day, &paid] {
        assert_balanced(tb);
        assert_matches_account_balances(&c, tb).await;
    }
}

#[tokio::test]
async fn a_trial_balance_without_as_of_date_is_as_of_today() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;

    let tb = trial_balance(&c, "USD", None).await;

    assert_eq!(tb["as_of_date"], iso(today()).as_str(), "{tb}");
    assert_eq!(
        tb_balances(&tb),
        tb_balances(&trial_balance(&c, "USD", Some(&iso(today()))).await)
    );
    assert_balanced(&tb);
}

#[tokio::test]
async fn each_currency_has_its_own_balanced_trial_balance_in_its_own_minor_units() {
    let app = spawn_app().await;
    let c = app.tenant();
    created(
        &c.post_disbursement(
            &key("disb"),
            &dated(disbursement_body(uuid(), uuid(), "100000"), "2026-04-01"),
        )
        .await,
    );
    let jpy_loan = uuid();
    let mut jpy = dated(disbursement_body(jpy_loan, uuid(), "50000"), "2026-04-02");
    jpy["currency"] = json!("JPY");
    created(&c.post_disbursement(&key("disb"), &jpy).await);
    let mut jpy_fee = dated(fee_body(jpy_loan, "300"), "2026-04-03");
    jpy_fee["currency"] = json!("JPY");
    created(&c.post_fee(&key("fee"), &jpy_fee).await);
    let mut eur = dated(disbursement_body(uuid(), uuid(), "70000"), "2026-04-04");
    eur["currency"] = json!("EUR");
    created(&c.post_disbursement(&key("disb"), &eur).await);
    // One adjustment in two currencies: each balances on its own.
    created(
        &c.post_adjustment(
            &key("adjust"),
            &json!({
                "effective_at": "2026-04-05",
                "description": "bank charges in two currencies",
                "lines": [
                    { "account_code": "5000", "direction": "DR", "amount_minor": "120", "currency": "USD" },
                    { "account_code": "1000", "direction": "CR", "amount_minor": "120", "currency": "USD" },
                    { "account_code": "5000", "direction": "DR", "amount_minor": "15", "currency": "JPY" },
                    { "account_code": "1000", "direction": "CR", "amount_minor": "15", "currency": "JPY" },
                ],
            }),
        )
        .await,
    );

    let usd = trial_balance(&c, "USD", Some("2026-04-30")).await;
    let jpy = trial_balance(&c, "JPY", Some("2026-04-30")).await;
    let eur = trial_balance(&c, "EUR", Some("2026-04-30")).await;

    assert_eq!(
        tb_balances(&usd),
        chart_with(&[
            ("1000", -120),
            ("1100", 100_000),
            ("2000", 100_000),
            ("5000", 120)
        ])
    );
    assert_eq!(
        tb_balances(&jpy),
        chart_with(&[
            ("1000", -15),
            ("1100", 50_000),
            ("1300", 300),
            ("2000", 50_000),
            ("4100", 300),
            ("5000", 15),
        ])
    );
    assert_eq!(minor(&jpy, "dr_total_minor"), 50_315);
    assert_eq!(minor(&jpy, "cr_total_minor"), 50_315);
    assert_eq!(
        tb_balances(&eur),
        chart_with(&[("1100", 70_000), ("2000", 70_000)])
    );
    for tb in [&usd, &jpy, &eur] {
        assert_balanced(tb);
        assert_matches_account_balances(&c, tb).await;
    }
    // A close stores all three, in code order, equal to these.
    let closed = close(&c, "2026-04-30").await;
    assert_eq!(stored_currencies(&closed), ["EUR", "JPY", "USD"]);
    assert_eq!(stored_balances(&closed, "USD"), tb_balances(&usd));
    assert_eq!(stored_balances(&closed, "JPY"), tb_balances(&jpy));
    assert_eq!(stored_balances(&closed, "EUR"), tb_balances(&eur));
}

#[tokio::test]
async fn a_trial_balance_in_a_currency_never_posted_lists_every_account_at_zero() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;

    let tb = trial_balance(&c, "GBP", Some(LOCK)).await;

    assert_eq!(tb_balances(&tb), chart_with(&[]), "{tb}");
    assert_eq!(tb_totals(&tb).iter().map(|(_, d, c)| d + c).sum::<i64>(), 0);
    assert_balanced(&tb);
}

#[tokio::test]
async fn a_trial_balance_needs_a_known_currency_and_a_real_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    january(&c).await;

    for (query, field) in [
        ("", "currency"),
        ("?as_of_date=2026-03-31", "currency"),
        ("?currency=", "currency"),
        ("?currency=usd", "currency"),
        ("?currency=US", "currency"),
        ("?currency=ABC", "currency"),
        ("?currency=USD&as_of_date=2026-02-30", "as_of_date"),
        ("?currency=USD&as_of_date=2026-3-31", "as_of_date"),
        ("?currency=USD&as_of_date=yesterday", "as_of_date"),
    ] {
        let a = c.get(&format!("/v1/trial-balance{query}")).await;

        assert_problem(&a, 400, "validation_failed");
        assert_eq!(a.error_fields(), [field], "{query}: {}", a.text);
    }
    let unknown = c.get("/v1/trial-balance?currency=ABC").await;
    let codes: Vec<Value> = unknown.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["code"].clone())
        .collect();
    assert_eq!(codes, [json!("unknown_currency")], "{}", unknown.text);
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation and scopes.

#[tokio::test]
async fn another_tenants_closes_never_lock_or_show_in_a_tenants_books() {
    let app = spawn_app().await;
    let a = app.tenant();
    let b = app.tenant();
    january(&a).await;
    let a_close = close(&a, LOCK).await;

    // B writes inside A's closed period, in a currency A never used.
    let mut jpy = dated(disbursement_body(uuid(), uuid(), "50000"), "2026-03-15");
    jpy["currency"] = json!("JPY");
    created(&b.post_disbursement(&key("disb"), &jpy).await);
    assert_eq!(closes(&b).await, json!({ "lock_date": null, "items": [] }));
    // B can close a day before A's lock date, with the key A used for its own close.
    let shared_key = key("close");
    created(
        &a.post_period_close(&shared_key, &close_body("2026-04-30"))
            .await,
    );
    let b_close = created(
        &b.post_period_close(&shared_key, &close_body("2026-02-28"))
            .await,
    );
    assert_eq!(stored_currencies(&b_close), ["JPY"], "{b_close}");
    assert_eq!(stored_balances(&b_close, "JPY"), chart_with(&[]));
    assert_eq!(lock_date(&b).await.as_deref(), Some("2026-02-28"));
    assert_eq!(lock_date(&a).await.as_deref(), Some("2026-04-30"));
    // B's lock is its own: B may still post on 2026-03-10, A may not.
    let mut b_fee = dated(disbursement_body(uuid(), uuid(), "10000"), "2026-03-10");
    b_fee["currency"] = json!("JPY");
    created(&b.post_disbursement(&key("disb"), &b_fee).await);
    let refused = a
        .post_disbursement(
            &key("disb"),
            &dated(disbursement_body(uuid(), uuid(), "10000"), "2026-03-10"),
        )
        .await;
    assert_refused(&refused, 422, "period_closed", &["effective_at"]);
    // Neither sees the other's money in its trial balance or its closes.
    assert_eq!(stored_currencies(&a_close), ["USD"], "{a_close}");
    assert_eq!(
        tb_balances(&trial_balance(&b, "USD", None).await),
        chart_with(&[])
    );
    assert_eq!(
        tb_balances(&trial_balance(&a, "JPY", None).await),
        chart_with(&[])
    );
    assert_eq!(
        tb_balances(&trial_balance(&b, "JPY", None).await),
        chart_with(&[("1100", 60_000), ("2000", 60_000)])
    );
    let a_items = closes(&a).await["items"].clone();
    let b_items = closes(&b).await["items"].clone();
    assert_eq!(a_items.as_array().map(Vec::len), Some(2), "{a_items}");
    assert_eq!(b_items.as_array().map(Vec::len), Some(1), "{b_items}");
    assert_eq!(b_items[0]["period_close_id"], b_close["period_close_id"]);
    let check = assert_reconciled_with_closes(&b).await;
    assert_eq!(check["status"], "ok", "{check}");
}

#[tokio::test]
async fn closing_needs_the_periods_write_scope_and_a_refused_close_locks_nothing() {
    let app = spawn_app().await;
    let tenant = uuid();
    let everything_else = crate::payments::scopes_without("hpts:periods:write");
    let without = app.caller(tenant, &everything_else);
    january(&without).await;

    let a = without
        .post_period_close(&key("close"), &close_body(LOCK))
        .await;

    assert_problem(&a, 403, "insufficient_scope");
    assert_eq!(lock_date(&without).await, None);
    let only = app.caller(tenant, &["hpts:periods:write"]);
    created(
        &only
            .post_period_close(&key("close"), &close_body(LOCK))
            .await,
    );
    assert_eq!(lock_date(&without).await.as_deref(), Some(LOCK));
}

#[tokio::test]
async fn listing_closes_needs_ledger_read_and_the_trial_balance_needs_balances_read() {
    let app = spawn_app().await;
    let tenant = uuid();
    let c = app.caller(tenant, crate::helpers::ALL_SCOPES);
    january(&c).await;
    close(&c, LOCK).await;

    for (path, scope) in [
        ("/v1/period-closes", "hpts:ledger:read"),
        ("/v1/trial-balance?currency=USD", "hpts:balances:read"),
    ] {
        let without = app.caller(tenant, &crate::payments::scopes_without(scope));
        let a = without.get(path).await;
        assert_problem(&a, 403, "insufficient_scope");

        let only = app.caller(tenant, &[scope]);
        let a = only.get(path).await;
        assert_eq!(a.status, 200, "{path} with only {scope}: {}", a.text);

        let anonymous = Answer::from(app.get_raw(path, None).await).await;
        assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.text);
    }
    let anonymous = Answer::from(
        app.post_raw(
            "/v1/period-closes",
            None,
            Some(&key("close")),
            &close_body("2026-04-30"),
        )
        .await,
    )
    .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(lock_date(&c).await.as_deref(), Some(LOCK));
}
