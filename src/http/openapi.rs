//! The OpenAPI 3.1 document of the whole API (`GET /openapi.json`) and Swagger UI (`/docs`).

use actix_web::web::ServiceConfig;

/// Registers `/openapi.json` and `/docs`.
pub fn configure(_cfg: &mut ServiceConfig) {}
