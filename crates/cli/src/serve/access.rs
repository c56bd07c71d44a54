//! Who may call the server: an optional bearer key (constant-time compare), JSON bodies only,
//! and no requests from web pages or rebound host names unless allowed — so a page open in the
//! user's browser cannot drive a server on localhost.
//!
//! Must not know: any endpoint's body or the model.

use super::api::ApiError;
use super::state::Shared;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The access rules of one server.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Requests must carry `Authorization: Bearer <key>` (all routes but `GET /health`).
    pub api_key: Option<String>,
    /// `Origin` values allowed (`*`: any). Requests with any other `Origin` header — sent by
    /// browsers — are refused.
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides the loopback names, when the server listens on loopback
    /// (against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// The server listens on a loopback address: check the `Host` header.
    pub loopback: bool,
}

/// Whether `host` (as given to `--host`) is a loopback address or name.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Most header bytes (names + values) and header lines a request may carry; more is a JSON 431.
/// hyper's own limits (`lifecycle`) sit above these, so only requests past those get hyper's
/// bare 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADERS: usize = 100;

/// Equal contents, in time that depends only on the lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host name of a `Host` header value (without port; IPv6 brackets kept off).
fn host_name(value: &str) -> &str {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    v.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(v, |(h, _)| h)
}

impl Access {
    /// `Ok` when the request may go on; otherwise the error answer.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &header::HeaderMap,
    ) -> Result<(), ApiError> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let bytes: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "request headers too large: {} lines, {bytes} bytes (at most {MAX_HEADERS} lines and {MAX_HEADER_BYTES} bytes)",
                    headers.len()
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("requests from web pages (Origin {origin:?}) are refused; start the server with --allow-origin {origin} to allow them"),
                ));
            }
        }
        if self.loopback {
            if let Some(host) = text(header::HOST) {
                let name = host_name(host);
                if !is_loopback(name)
                    && !self
                        .allowed_hosts
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(name))
                {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!("Host {name:?} is not this loopback server's; start it with --allow-host {name} to allow it"),
                    ));
                }
            }
        }
        if let Some(key) = &self.api_key {
            let open = method == Method::GET && path == "/health";
            let given = text(header::AUTHORIZATION)
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if !open && !given.is_some_and(|g| ct_eq(g.as_bytes(), key.as_bytes())) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong API key: send Authorization: Bearer <key>",
                ));
            }
        }
        if method == Method::POST {
            let json = text(header::CONTENT_TYPE)
                .and_then(|v| v.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "request bodies must be JSON with Content-Type: application/json",
                ));
            }
        }
        Ok(())
    }
}

/// The middleware: every request passes [`Access::check`] before its handler.
pub(super) async fn guard(State(s): State<Shared>, req: Request, next: Next) -> Response {
    match s
        .access
        .check(req.method(), req.uri().path(), req.headers())
    {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let unauthorized = e.status == StatusCode::UNAUTHORIZED;
            let mut r = e.into_response();
            if unauthorized {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            r
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn host_names_and_loopback() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("[::1]"));
        assert!(is_loopback("LOCALHOST") && !is_loopback("0.0.0.0") && !is_loopback("10.0.0.1"));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"abcd"));
    }
}
