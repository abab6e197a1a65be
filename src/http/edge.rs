//! Rules on the request head, applied once for every route before routing (so before
//! authentication, and for unknown paths too):
//!
//! - `Authorization`, `Idempotency-Key` and `Content-Type` may appear at most once: a repeated
//!   one is 400 `duplicate_header` naming each repeated header in `errors[]`, never "the first
//!   one wins" (two proxies or libraries disagreeing about which copy counts is how a request
//!   gets authenticated as one caller and processed as another).
//! - `HEAD` is served as `GET`: every `GET` route (the API, health, `/metrics`, the `OpenAPI`
//!   document) answers it with the same status and headers, `Content-Length` included. The
//!   HTTP codec remembers that the request was a `HEAD` and sends no body.
//! - A method that is not one of RFC 9110's (plus `PATCH`) is renamed [`OTHER_METHOD`] before
//!   anything records it, so the metrics' `method` label has a fixed set of values however many
//!   invented methods arrive. No route answers it: the answer is still 405 (known path) or 404.
//!
//! The request has not been cloned yet at this point (routing itself needs it unshared), which
//! is what makes rewriting its method possible.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::http::problem::{ApiError, Code, FieldError};

/// Headers that must not be repeated, with the spelling used in `errors[].field`.
pub static SINGLETON_HEADERS: [(HeaderName, &str); 3] = [
    (header::AUTHORIZATION, "Authorization"),
    (
        HeaderName::from_static("idempotency-key"),
        "Idempotency-Key",
    ),
    (header::CONTENT_TYPE, "Content-Type"),
];

/// The one name every unrecognised method is recorded (and routed) under.
pub const OTHER_METHOD: &str = "OTHER";

/// The methods kept as they are.
const KNOWN_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// 400 `duplicate_header` for every singleton header the request repeats, if any.
pub fn duplicate_headers(headers: &header::HeaderMap) -> Option<ApiError> {
    let errors: Vec<FieldError> = SINGLETON_HEADERS
        .iter()
        .filter(|(name, _)| headers.get_all(name).nth(1).is_some())
        .map(|(_, field)| {
            FieldError::new(
                *field,
                "duplicate_header",
                format!("{field} must appear at most once"),
            )
        })
        .collect();
    if errors.is_empty() {
        return None;
    }
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let detail = format!(
        "{} appear(s) more than once; send each exactly once",
        names.join(", ")
    );
    Some(ApiError::new(Code::DuplicateHeader, detail).with_errors(errors))
}

/// The method the rest of the stack sees: `GET` for `HEAD`, [`OTHER_METHOD`] for an unknown one.
pub fn effective_method(method: &Method) -> Method {
    if *method == Method::HEAD {
        Method::GET
    } else if KNOWN_METHODS.contains(method) {
        method.clone()
    } else {
        Method::from_bytes(OTHER_METHOD.as_bytes()).expect("a valid method token")
    }
}

/// Middleware: refuse repeated singleton headers, then normalise the method.
pub async fn request_rules(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(problem) = duplicate_headers(req.headers()) {
        return Ok(req
            .into_response(problem.error_response())
            .map_into_boxed_body());
    }
    let method = effective_method(req.method());
    if method != *req.method() {
        req.head_mut().method = method;
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_of_each_singleton_header_is_fine() {
        let mut headers = header::HeaderMap::new();
        for (name, _) in &SINGLETON_HEADERS {
            headers.insert(name.clone(), "x".parse().expect("value"));
        }
        headers.append(header::ACCEPT, "a".parse().expect("value"));
        headers.append(header::ACCEPT, "b".parse().expect("value"));
        assert!(duplicate_headers(&headers).is_none());
    }

    #[test]
    fn every_repeated_singleton_header_is_named() {
        let mut headers = header::HeaderMap::new();
        headers.append(header::AUTHORIZATION, "Bearer a".parse().expect("value"));
        headers.append(header::AUTHORIZATION, "Bearer a".parse().expect("value"));
        headers.append(
            HeaderName::from_static("idempotency-key"),
            "k1".parse().expect("value"),
        );
        headers.append(
            HeaderName::from_static("idempotency-key"),
            "k2".parse().expect("value"),
        );
        headers.append(
            header::CONTENT_TYPE,
            "application/json".parse().expect("value"),
        );
        let problem = duplicate_headers(&headers).expect("refused");
        assert_eq!(problem.code, Code::DuplicateHeader);
        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["Authorization", "Idempotency-Key"]);
    }

    #[test]
    fn head_is_served_as_get_and_unknown_methods_share_one_name() {
        assert_eq!(effective_method(&Method::HEAD), Method::GET);
        for known in &KNOWN_METHODS[2..] {
            assert_eq!(effective_method(known), *known);
        }
        for invented in ["Mabc123", "FOO", "get", "PROPFIND", "BREW"] {
            let m = Method::from_bytes(invented.as_bytes()).expect("method token");
            assert_eq!(effective_method(&m).as_str(), OTHER_METHOD, "{invented}");
        }
    }
}
