//! Typed identifiers. Each wraps a UUID; they are parsed at the edge (any case accepted) and
//! always rendered lowercase. New ids are minted by an injected generator, never here.

use std::fmt;

use serde::{Serialize, Serializer};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// Parses a UUID in any case (hyphenated form).
            pub fn parse(s: &str) -> Option<Self> {
                parse_uuid(s).map(Self)
            }

            /// The inner UUID.
            pub const fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

/// Parses the canonical hyphenated 36-character UUID form, in any case.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

id_type!(
    /// The tenant (lender) that owns a row; comes only from a verified token.
    TenantId
);
id_type!(
    /// A loan, chosen by the client.
    LoanId
);
id_type!(
    /// A borrower, chosen by the client.
    BorrowerId
);
id_type!(
    /// A business event (disbursement, payment, ...), minted by the service (`UUIDv7`).
    EventId
);
id_type!(
    /// A journal entry, minted by the service (`UUIDv7`).
    EntryId
);
id_type!(
    /// An accrual program, chosen by the client.
    ProgramId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_any_case_and_render_lowercase() {
        let id = LoanId::parse("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B").expect("valid");
        assert_eq!(id.to_string(), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    }

    #[test]
    fn non_hyphenated_or_braced_forms_are_refused() {
        assert!(LoanId::parse("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b").is_none());
        assert!(LoanId::parse("{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}").is_none());
        assert!(LoanId::parse("../../etc/passwd").is_none());
    }
}
