//! The wire rules of the `OpenAPI` document, each written once: the patterns of money, currency
//! codes, account codes, `Idempotency-Key`, `traceparent` and `metadata` keys as constants, a
//! schema type per rule for the derived request and response schemas to name, and the schema of
//! every closed enum, built from the enum's one list of wire names (`WIRE`, declared with the
//! enum by `wire_enum!` in `src/ledger`), so the document lists exactly what the parser accepts.
//!
//! | what | rule |
//! |---|---|
//! | money in a request, and non-negative money in a response ([`MinorUnits`]) | [`MONEY_PATTERN`], a string |
//! | money that may be negative: account balances, reconciliation ([`SignedMinorUnits`]) | [`SIGNED_MONEY_PATTERN`] |
//! | currency ([`CurrencyCode`]) | [`CURRENCY_PATTERN`] and an active ISO 4217 code (else `unknown_currency`) |
//! | account code ([`AccountCode`]) | [`ACCOUNT_CODE_PATTERN`] |
//! | `Idempotency-Key` | [`IDEMPOTENCY_KEY_PATTERN`] |
//! | `traceparent` | [`TRACEPARENT_PATTERN`] |
//! | `metadata` keys ([`Metadata`]) | [`METADATA_KEY_PATTERN`], the object at most 2048 bytes serialised |

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::ledger::accounts::{Direction, Layer};
use crate::ledger::accrual::DayCount;
use crate::ledger::commands::{
    ChargeOffReason, DisbursementMethod, EventType, FeeType, PaymentMethod, ReasonCode,
    ReturnReason,
};
use crate::ledger::export::Format;
use crate::ledger::loan::LoanStatus;

/// Money in minor units that cannot be negative (every amount of a request).
pub const MONEY_PATTERN: &str = "^(0|[1-9][0-9]{0,18})$";
/// Money in minor units that may be negative (account balances, reconciliation).
pub const SIGNED_MONEY_PATTERN: &str = "^(0|-?[1-9][0-9]{0,18})$";
/// An ISO 4217 currency code.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// A code of the chart of accounts.
pub const ACCOUNT_CODE_PATTERN: &str = "^[0-9]{4}$";
/// The `Idempotency-Key` header.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{7,254}$";
/// The W3C `traceparent` header.
pub const TRACEPARENT_PATTERN: &str = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";
/// A key of a `metadata` object.
pub const METADATA_KEY_PATTERN: &str = "^[a-zA-Z][a-zA-Z0-9_]*$";

/// A string schema with a pattern, a description and an example.
fn pattern_schema(pattern: &str, description: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([serde_json::Value::from(example)])
        .into()
}

/// A string schema listing every value of a closed enum.
fn enum_schema<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// Implements `ToSchema` for a type whose schema [`PartialSchema`] gives, under `$name`.
macro_rules! named {
    ($($ty:ty => $name:literal;)*) => {$(
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )*};
}

/// Builds the schema of a ledger enum from its `WIRE` list.
macro_rules! wire_enum_schemas {
    ($($ty:ty => $name:literal, $description:literal;)*) => {$(
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                enum_schema($description, <$ty>::WIRE.iter().copied())
            }
        }

        named! { $ty => $name; }
    )*};
}

/// Money in minor units, never negative: a decimal string (`"150000"` is 1500.00 USD).
pub struct MinorUnits;

impl PartialSchema for MinorUnits {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            MONEY_PATTERN,
            "Money in minor units, never negative, as a decimal string: no sign, no leading \
             zeros, at most 9223372036854775807 (`\"150000\"` is 1500.00 USD).",
            "150000",
        )
    }
}

/// Money in minor units that may be negative (a balance on an account's normal side).
pub struct SignedMinorUnits;

impl PartialSchema for SignedMinorUnits {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            SIGNED_MONEY_PATTERN,
            "Money in minor units that may be negative, as a decimal string.",
            "-2500",
        )
    }
}

/// An ISO 4217 currency code.
pub struct CurrencyCode;

impl PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            CURRENCY_PATTERN,
            "An ISO 4217 code. In a request it must be an active one (else 400, `errors[].code` \
             `unknown_currency`).",
            "USD",
        )
    }
}

/// A code of the chart of accounts.
pub struct AccountCode;

impl PartialSchema for AccountCode {
    fn schema() -> RefOr<Schema> {
        pattern_schema(
            ACCOUNT_CODE_PATTERN,
            "A GL account of the chart of accounts: 1000, 1100, 1200, 1300, 2000, 2100, 4000, \
             4100, 4200 or 5000.",
            "1100",
        )
    }
}

/// Client data stored and returned verbatim, never used for financial logic.
pub struct Metadata;

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Free-form client data: a JSON object of at most 2048 bytes serialised, whose \
                 keys match `^[a-zA-Z][a-zA-Z0-9_]*$`. Stored and returned verbatim (key order \
                 kept); never used for financial logic.",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(METADATA_KEY_PATTERN))
                    .build(),
            ))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(true)))
            .examples([serde_json::json!({ "channel": "api", "batch": 7 })])
            .into()
    }
}

named! {
    MinorUnits => "MinorUnits";
    SignedMinorUnits => "SignedMinorUnits";
    CurrencyCode => "CurrencyCode";
    AccountCode => "AccountCode";
    Metadata => "Metadata";
}

wire_enum_schemas! {
    DisbursementMethod => "DisbursementMethod", "How a disbursement was paid out.";
    PaymentMethod => "PaymentMethod", "How a payment arrived.";
    FeeType => "FeeType", "Kind of fee.";
    ReasonCode => "ReasonCode", "Why an entry is reversed.";
    ReturnReason => "ReturnReason", "Why a payment came back.";
    ChargeOffReason => "ChargeOffReason", "Why a loan is charged off.";
    DayCount => "DayCountConvention", "Day-count convention.";
    Layer => "Layer", "Balance layer. Every posting today is `SETTLED`; the others exist for holds.";
    Direction => "Direction", "Debit or credit.";
    LoanStatus => "LoanStatus", "`charged_off` while `charged_off_minor` is above 0 (as of the \
        date asked); otherwise `active` while anything is owed, `paid_off` once everything \
        disbursed is repaid.";
    Format => "ExportFormat", "Plain-text accounting format of a journal export: Beancount 3 \
        (`bean-check`) or an hledger journal (`hledger check`).";
}

/// The event type of a journal entry: every type the ledger posts ([`EventType::WIRE`]), then
/// the ones the HPTS enum reserves ([`EventType::RESERVED`]).
impl PartialSchema for EventType {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            "Business event type of a journal entry. `payment_allocated`, `refinance` and \
             `restructure` are reserved by the HPTS enum and not posted yet.",
            EventType::WIRE.iter().chain(EventType::RESERVED).copied(),
        )
    }
}

named! { EventType => "EventType"; }

/// The value of an `Idempotency-Key` header.
pub struct IdempotencyKeyValue;

impl PartialSchema for IdempotencyKeyValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
            .min_length(Some(8))
            .max_length(Some(255))
            .examples([serde_json::Value::from(
                "disbursement:0192f0c1-6f3a-7c3e-9a51-2b1e1f7a8c90:1",
            )])
            .into()
    }
}

named! { IdempotencyKeyValue => "IdempotencyKeyValue"; }
