//! Google's error body: `{"error":{"code":N,"message":"...","status":"..."}}`.

use serde_json::{json, Value};

/// An API error as Google reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, status: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
        }
    }

    /// 400 `INVALID_ARGUMENT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_ARGUMENT", message)
    }

    /// 404 `NOT_FOUND`, Google's wording.
    pub fn not_found() -> Self {
        Self::new(404, "NOT_FOUND", "Requested entity was not found.")
    }

    /// 401 `UNAUTHENTICATED`, Google's wording.
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
    }

    /// 403 `PERMISSION_DENIED`, Google's wording.
    pub fn permission_denied() -> Self {
        Self::new(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        )
    }

    /// 403 for a token without a Sheets write scope.
    pub fn insufficient_scopes() -> Self {
        Self::new(
            403,
            "PERMISSION_DENIED",
            "Request had insufficient authentication scopes.",
        )
    }

    /// 429 `RESOURCE_EXHAUSTED` for a per-minute-per-user quota.
    pub fn quota(kind: &str, limit: u32) -> Self {
        Self::new(
            429,
            "RESOURCE_EXHAUSTED",
            format!(
                "Quota exceeded for quota metric '{kind} requests' and limit '{kind} requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:0'. (limit: {limit})"
            ),
        )
    }

    /// The JSON body Google sends.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "status": self.status}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
