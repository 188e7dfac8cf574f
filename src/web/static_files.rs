//! Files from disk: [`FileResponse`] (aiohttp's `web.FileResponse`) and the handler behind
//! `Router::add_static`.
//!
//! A file response carries `Last-Modified` and an `ETag`, answers conditional requests with
//! 304, serves `Range` requests with 206 (or 416 when the range is outside the file), and
//! sends the data with `sendfile(2)`. The static handler maps the rest of the URL path onto a
//! directory and refuses every way out of it: `..` components, absolute paths, NUL bytes,
//! and symlinks whose target lies outside the directory.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::exceptions::{HTTPForbidden, HTTPNotFound};
use super::handler::{Handler, LocalBoxFuture};
use super::request::Request;
use super::response::{IntoResponse, Response};

/// A file sent as the response, with conditional and range handling for the request it
/// answers.
///
/// ```no_run
/// use kettle::web::{FileResponse, Request};
///
/// async fn report(req: Request) -> FileResponse {
///     FileResponse::new(&req, "/var/reports/latest.pdf")
/// }
/// ```
#[derive(Debug)]
pub struct FileResponse {
    path: PathBuf,
    conditions: Conditions,
    content_type: Option<String>,
}

/// The request headers a file response depends on.
#[derive(Debug, Clone, Default)]
struct Conditions {
    if_none_match: Option<String>,
    if_modified_since: Option<SystemTime>,
    range: Option<String>,
    if_range: Option<String>,
}

impl Conditions {
    fn of(req: &Request) -> Conditions {
        let text = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Conditions {
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE)
                .and_then(|t| httpdate::parse_http_date(&t).ok()),
            range: text(header::RANGE),
            if_range: text(header::IF_RANGE),
        }
    }
}

impl FileResponse {
    /// The file at `path`, answering `req` (whose conditional and `Range` headers apply).
    pub fn new(req: &Request, path: impl Into<PathBuf>) -> FileResponse {
        FileResponse {
            path: path.into(),
            conditions: Conditions::of(req),
            content_type: None,
        }
    }

    /// Overrides the content type guessed from the extension.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> FileResponse {
        self.content_type = Some(content_type.into());
        self
    }

    fn respond(self) -> Response {
        // O_NONBLOCK: opening a FIFO for reading otherwise blocks until a writer appears, and
        // this runs on the loop's thread, so one request for a named pipe froze every
        // connection of the loop. With it the open returns at once and the check below
        // refuses anything that is not a regular file. It changes nothing for regular files
        // (reads and sendfile from them never block on it). O_NOCTTY keeps a terminal device
        // from becoming the process's controlling terminal.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path);
        let file = match opened {
            Ok(f) => f,
            Err(e) => return open_error(&e),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return open_error(&e),
        };
        if !meta.is_file() {
            return HTTPForbidden().into_response();
        }
        let content_type = self.content_type.clone().unwrap_or_else(|| {
            mime_guess::from_path(&self.path)
                .first_raw()
                .unwrap_or("application/octet-stream")
                .to_string()
        });
        file_response(file, &meta, content_type, &self.conditions)
    }
}

impl IntoResponse for FileResponse {
    fn into_response(self) -> Response {
        self.respond()
    }
}

fn open_error(e: &io::Error) -> Response {
    match e.kind() {
        io::ErrorKind::NotFound => HTTPNotFound().into_response(),
        io::ErrorKind::PermissionDenied => HTTPForbidden().into_response(),
        _ => {
            tracing::error!(error = %e, "cannot open file");
            super::error::internal_error()
        }
    }
}

/// `"<mtime in ns, hex>-<size, hex>"`: changes whenever the file is rewritten or resized.
fn etag(meta: &Metadata) -> String {
    let mtime_ns = (meta.mtime() as i128) * 1_000_000_000 + meta.mtime_nsec() as i128;
    format!("\"{mtime_ns:x}-{:x}\"", meta.len())
}

fn modified(meta: &Metadata) -> SystemTime {
    // HTTP dates have whole seconds; compare at that precision.
    let secs = meta.mtime().max(0) as u64;
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn etag_matches(list: &str, tag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == tag
    })
}

fn file_response(file: File, meta: &Metadata, content_type: String, cond: &Conditions) -> Response {
    let size = meta.len();
    let tag = etag(meta);
    let last_modified = modified(meta);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(last_modified)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    // RFC 9110 §13.2.2: If-None-Match takes precedence over If-Modified-Since.
    let not_modified = match (&cond.if_none_match, cond.if_modified_since) {
        (Some(list), _) => etag_matches(list, &tag),
        (None, Some(since)) => last_modified <= since,
        (None, None) => false,
    };
    if not_modified {
        let mut r = Response::new().with_status(StatusCode::NOT_MODIFIED);
        *r.headers_mut() = headers;
        return r;
    }

    let range_applies = match &cond.if_range {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == &tag,
        Some(date) => httpdate::parse_http_date(date).is_ok_and(|d| d >= last_modified),
    };
    let (status, offset, len) = match cond.range.as_deref().filter(|_| range_applies) {
        None => (StatusCode::OK, 0, size),
        Some(range) => match parse_range(range, size) {
            RangeResult::Whole => (StatusCode::OK, 0, size),
            RangeResult::Part(start, end) => {
                let v = format!("bytes {start}-{end}/{size}");
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeResult::Unsatisfiable => {
                let mut r = Response::new().with_status(StatusCode::RANGE_NOT_SATISFIABLE);
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}"))
                        .unwrap_or(HeaderValue::from_static("bytes */0")),
                );
                *r.headers_mut() = headers;
                return r;
            }
        },
    };
    let mut r = Response::from_file(file, offset, len).with_status(status);
    *r.headers_mut() = headers;
    // A HEAD request gets the same head; the protocol drops the body.
    r.set_content_type(content_type);
    r
}

enum RangeResult {
    /// No usable range: send everything (a malformed header is ignored, RFC 9110 §14.2).
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range; several ranges are answered with the whole file (allowed, and
/// it avoids multipart/byteranges).
fn parse_range(value: &str, size: u64) -> RangeResult {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeResult::Whole;
    };
    if spec.contains(',') {
        return RangeResult::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeResult::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (start.trim(), end.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeResult::Unsatisfiable,
            Some(_) if size == 0 => RangeResult::Unsatisfiable,
            Some(n) => RangeResult::Part(size.saturating_sub(n), size - 1),
            None => RangeResult::Whole,
        },
        (s, "") => match num(s) {
            Some(s) if s < size => RangeResult::Part(s, size - 1),
            Some(_) => RangeResult::Unsatisfiable,
            None => RangeResult::Whole,
        },
        (s, e) => match (num(s), num(e)) {
            (Some(s), Some(e)) if s > e => RangeResult::Whole,
            (Some(s), Some(_)) if s >= size => RangeResult::Unsatisfiable,
            (Some(s), Some(e)) => RangeResult::Part(s, e.min(size - 1)),
            _ => RangeResult::Whole,
        },
    }
}

/// Why a static path is not served.
enum Refused {
    /// An attempt to leave the root, a directory or a special file.
    Forbidden,
    NotFound,
}

/// The handler `Router::add_static` installs.
pub(crate) struct StaticHandler {
    root: PathBuf,
}

impl StaticHandler {
    pub(crate) fn new(root: PathBuf) -> StaticHandler {
        StaticHandler { root }
    }

    /// Maps the decoded URL tail onto a file under the root, or says why not.
    fn resolve(&self, tail: &str) -> Result<PathBuf, Refused> {
        if tail.contains('\0') || tail.contains('\\') {
            return Err(Refused::Forbidden);
        }
        let rel = Path::new(tail.trim_start_matches('/'));
        let mut clean = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                // `..`, a root or a prefix: an attempt to leave the directory.
                _ => return Err(Refused::Forbidden),
            }
        }
        let root = self.root.canonicalize().map_err(|_| Refused::NotFound)?;
        let full = root.join(&clean);
        // Symlinks are followed, but the real path must still be inside the root.
        let real = full.canonicalize().map_err(|_| Refused::NotFound)?;
        if !real.starts_with(&root) {
            return Err(Refused::Forbidden);
        }
        // Directories, and special files (FIFOs, sockets, devices) that are not content and
        // that must not even be opened.
        let meta = std::fs::metadata(&real).map_err(|_| Refused::NotFound)?;
        if !meta.is_file() {
            return Err(Refused::Forbidden);
        }
        Ok(real)
    }
}

impl Handler for StaticHandler {
    fn call(&self, req: Request) -> LocalBoxFuture<Response> {
        let tail = req.match_info().get("filename").unwrap_or("").to_string();
        let response = match self.resolve(&tail) {
            Ok(path) => FileResponse::new(&req, path).respond(),
            Err(Refused::Forbidden) => HTTPForbidden().into_response(),
            Err(Refused::NotFound) => HTTPNotFound().into_response(),
        };
        Box::pin(async move { response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: &str, size: u64) -> Option<(u64, u64)> {
        match parse_range(v, size) {
            RangeResult::Part(a, b) => Some((a, b)),
            _ => None,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(part("bytes=0-4", 10), Some((0, 4)));
        assert_eq!(part("bytes=5-", 10), Some((5, 9)));
        assert_eq!(part("bytes=-3", 10), Some((7, 9)));
        assert_eq!(part("bytes=-30", 10), Some((0, 9)));
        assert_eq!(part("bytes=8-100", 10), Some((8, 9)));
        assert!(matches!(
            parse_range("bytes=10-", 10),
            RangeResult::Unsatisfiable
        ));
        assert!(matches!(
            parse_range("bytes=20-30", 10),
            RangeResult::Unsatisfiable
        ));
        assert!(matches!(parse_range("bytes=5-1", 10), RangeResult::Whole));
        assert!(matches!(
            parse_range("bytes=0-1,3-4", 10),
            RangeResult::Whole
        ));
        assert!(matches!(parse_range("items=0-1", 10), RangeResult::Whole));
        assert!(matches!(parse_range("bytes=a-b", 10), RangeResult::Whole));
    }

    #[test]
    fn etags_match_lists_and_weak_forms() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"c\"", "\"b\""));
    }
}
