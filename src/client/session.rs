//! `ClientSession`: configuration, the pool, the cookie jar, and the request loop (one
//! exchange, the one safe retry, redirects).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use url::Url;

use super::conn::Connection;
use super::content::Content;
use super::cookie_jar::CookieJar;
use super::decompress::{Decompressor, ACCEPT_ENCODING};
use super::error::{io_error, is_disconnect, timeout_error};
use super::pool::{AcquireError, Pool, PoolConfig, PoolKey};
use super::request::{Body, RequestBuilder};
use super::response::{status_error, ClientResponse};
use super::timeout::{until, ClientTimeout, Deadlines};
use crate::error::{Error, ErrorKind, Result};
use crate::http::decode::Decoder;
use crate::http::encode::{chunk_header, CHUNK_END, LAST_CHUNK};
use crate::http::head::Framing;
use crate::http::request_encode::{end_head, field, request_line, RequestFraming};
use crate::http::response_head::{ResponseFraming, ResponseLimits};
use crate::tls::TlsConnector;

/// Bodies up to this size are written in the same `write` as the head.
const COALESCE_BODY: usize = 16 * 1024;
/// A redirect's body is read and dropped (so its connection can be reused) up to this size.
const REDIRECT_DRAIN: usize = 64 * 1024;

const USER_AGENT: &str = concat!("kettle/", env!("CARGO_PKG_VERSION"));

/// An HTTP client session (aiohttp's `ClientSession`): a connection pool, a cookie jar and
/// defaults shared by its requests.
///
/// Create one per application (not per request: the pool is what makes keep-alive work) and
/// [`close`](ClientSession::close) it when done. Handles are cheap clones of one session.
///
/// ```no_run
/// // Seed 003's client: print the status, then the body.
/// # kettle::run(async {
/// let session = kettle::client::ClientSession::new();
/// let mut res = session.get("http://127.0.0.1:8000/").send().await?;
/// println!("{}", res.status());
/// println!("{}", res.text().await?);
/// session.close().await;
/// # kettle::Result::<()>::Ok(()) });
/// ```
#[derive(Clone)]
pub struct ClientSession {
    inner: Rc<Inner>,
}

struct Inner {
    base_url: Option<Url>,
    headers: HeaderMap,
    timeout: ClientTimeout,
    pool: Rc<Pool>,
    jar: CookieJar,
    raise_for_status: bool,
    auto_decompress: bool,
    max_redirects: usize,
    max_body_size: usize,
    tls: TlsConnector,
    limits: ResponseLimits,
    closed: Cell<bool>,
    /// The last request's URL string and its parse, for the common loop over one URL.
    last_url: RefCell<Option<(String, Url)>>,
    /// The last request's pool key.
    last_key: RefCell<Option<PoolKey>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.get() && self.pool.busy() + self.pool.idle() > 0 {
            tracing::warn!(
                "Unclosed client session: call ClientSession::close().await when done with it"
            );
        }
        self.pool.close();
    }
}

/// A request checked and resolved by [`ClientSession::prepare`], as the request loop needs it.
pub(crate) struct Prepared {
    session: ClientSession,
    deadlines: Deadlines,
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Body,
    max_redirects: usize,
    raise: bool,
    allow_redirects: bool,
}

/// Counts of a session's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorStats {
    /// Connections carrying a request or holding an unread response body.
    pub busy: usize,
    /// Keep-alive connections waiting in the pool.
    pub idle: usize,
    /// Connections opened since the session was created.
    pub opened: u64,
}

impl Default for ClientSession {
    fn default() -> ClientSession {
        ClientSession::new()
    }
}

impl ClientSession {
    /// A session with aiohttp's defaults: at most 100 connections, no per-host limit, 15 s
    /// keep-alive, 5 minute total timeout, a cookie jar, automatic decompression, up to 10
    /// redirects.
    pub fn new() -> ClientSession {
        ClientSession::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder for a session with other settings.
    pub fn builder() -> ClientSessionBuilder {
        ClientSessionBuilder::default()
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// An `OPTIONS` request.
    pub fn options(&self, url: &str) -> RequestBuilder {
        self.request(Method::OPTIONS, url)
    }

    /// A request with any method. `url` is absolute, or relative to the session's base URL.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// The session's cookie jar.
    pub fn cookie_jar(&self) -> &CookieJar {
        &self.inner.jar
    }

    /// The default headers sent with every request.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The session's default timeouts.
    pub fn timeout(&self) -> ClientTimeout {
        self.inner.timeout
    }

    /// How many connections are busy, idle and were ever opened.
    pub fn connector_stats(&self) -> ConnectorStats {
        let pool = &self.inner.pool;
        ConnectorStats {
            busy: pool.busy(),
            idle: pool.idle(),
            opened: pool.opened(),
        }
    }

    /// Whether [`close`](ClientSession::close) was called.
    pub fn closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the idle connections and refuses new requests. Responses still being read keep
    /// their connections until they are done; their connections are then closed.
    pub async fn close(&self) {
        self.inner.closed.set(true);
        self.inner.pool.close();
    }

    /// Checks and resolves a built request before anything is sent: its URL, merged
    /// headers and deadlines. Done outside the request's future so that the future carries
    /// only what the exchange needs, not the whole builder.
    pub(crate) fn prepare(&self, req: RequestBuilder) -> Result<Prepared> {
        let inner = &*self.inner;
        if let Some(e) = req.error {
            return Err(e);
        }
        if inner.closed.get() || inner.pool.is_closed() {
            return Err(Error::invalid_state("the client session is closed"));
        }
        let deadlines = Deadlines::start(req.timeout.unwrap_or(inner.timeout));
        let url = self.make_url(&req.url, &req.query)?;
        // The session's defaults are merged in once, here, so that a redirect to another
        // origin drops a default `Authorization` as it drops the request's own. A name the
        // request sets replaces the default with all of the request's values.
        let mut headers = inner.headers.clone();
        for name in req.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in req.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        Ok(Prepared {
            session: req.session,
            deadlines,
            url,
            method: req.method,
            headers,
            body: req.body,
            max_redirects: req.max_redirects.unwrap_or(inner.max_redirects),
            raise: req.raise_for_status.unwrap_or(inner.raise_for_status),
            allow_redirects: req.allow_redirects,
        })
    }

    /// Runs a prepared request: the exchange, the retry, redirects, cookies.
    pub(crate) async fn run(p: &mut Prepared) -> Result<ClientResponse> {
        let this = &p.session;
        let mut history: Vec<ClientResponse> = Vec::new();
        loop {
            let streamed = !p.body.is_replayable();
            let mut resp = this
                .exchange(&p.method, &p.url, &p.headers, &mut p.body, &p.deadlines)
                .await?;
            let status = resp.status;
            let location = resp
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
            let (Some(location), true, true) = (location, redirect, p.allow_redirects) else {
                resp.history = history;
                if p.raise && !resp.ok() {
                    resp.release();
                    return Err(status_error(resp.status, &resp.reason, &resp.url));
                }
                return Ok(resp);
            };
            let keeps_method = matches!(status.as_u16(), 307 | 308);
            if keeps_method && streamed {
                // The body was a one-shot stream: it cannot be sent to the new location, so
                // the redirect is the answer.
                resp.history = history;
                return Ok(resp);
            }
            let url = &p.url;
            if history.len() >= p.max_redirects {
                resp.release();
                return Err(Error::with_message(
                    ErrorKind::TooManyRedirects,
                    format!(
                        "more than {} redirects, the last from {url} to {location}",
                        p.max_redirects
                    ),
                ));
            }
            let next = url.join(&location).map_err(|e| {
                Error::with_message(
                    ErrorKind::InvalidUrl,
                    format!("invalid redirect location {location:?} from {url}: {e}"),
                )
            })?;
            check_scheme(&next)?;
            if !keeps_method
                && (status == StatusCode::SEE_OTHER && p.method != Method::HEAD
                    || !matches!(p.method, Method::GET | Method::HEAD))
            {
                p.method = Method::GET;
                p.body = Body::Empty;
                p.headers.remove(header::CONTENT_TYPE);
            } else if let Some(b) = p.body.replay() {
                p.body = b;
            }
            if next.origin() != url.origin() {
                // Credentials were meant for the first origin only.
                p.headers.remove(header::AUTHORIZATION);
                p.headers.remove(header::COOKIE);
            }
            // Boxed, like the connect below: rare paths should not grow every request's future.
            Box::pin(resp.content.drain(REDIRECT_DRAIN)).await;
            resp.content.release(true);
            history.push(resp);
            p.url = next;
        }
    }

    /// One request on one connection, retried once on a fresh connection when a pooled one
    /// turns out to have been closed by the server and resending is safe.
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        user_headers: &HeaderMap,
        body: &mut Body,
        deadlines: &Deadlines,
    ) -> Result<ClientResponse> {
        let inner = &*self.inner;
        let key = pool_key(url, &inner.last_key)?;
        let mut head = Vec::with_capacity(256);
        let framing = match body {
            Body::Empty if matches!(*method, Method::POST | Method::PUT | Method::PATCH) => {
                RequestFraming::Length(0)
            }
            Body::Empty => RequestFraming::None,
            Body::Bytes(b) => RequestFraming::Length(b.len() as u64),
            Body::Stream(_) => RequestFraming::Chunked,
        };
        self.write_head(&mut head, method, url, user_headers, framing)?;
        if let Body::Bytes(b) = body {
            if b.len() <= COALESCE_BODY {
                head.extend_from_slice(b);
            }
        }
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        );
        let mut retried = false;
        loop {
            let connect_deadline = deadlines.connect();
            let mut lease = match until(connect_deadline, inner.pool.acquire(&key)).await {
                Ok(Ok(lease)) => lease,
                Ok(Err(AcquireError::Closed)) => {
                    return Err(Error::invalid_state("the client session is closed"))
                }
                Err(()) => {
                    return Err(timeout_error(
                        deadlines,
                        connect_deadline,
                        &format!("waiting for a free connection to {key}"),
                    ))
                }
            };
            if retried {
                drop(lease.detach());
            }
            let reused = lease.conn().is_some();
            if !reused {
                let deadline = deadlines.sock_connect(connect_deadline);
                // Boxed: connecting (resolver, TCP, TLS handshake) is a large future that runs
                // once per connection, not once per request.
                let conn =
                    Box::pin(Connection::open(&key, &inner.tls, deadline, deadlines)).await?;
                lease.attach(conn);
            }
            let conn = lease.conn().expect("attached above");
            let sent = send_request(conn, &head, body, deadlines).await;
            let result = match sent {
                Ok(()) => conn.read_head(method, &inner.limits, deadlines).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(resp_head) => {
                    let decoder = match resp_head.framing {
                        ResponseFraming::Empty => Decoder::new(Framing::Length(0)),
                        ResponseFraming::Length(n) => Decoder::new(Framing::Length(n)),
                        ResponseFraming::Chunked => Decoder::new(Framing::Chunked),
                        ResponseFraming::UntilClose => Decoder::until_close(),
                    };
                    let decompress =
                        if inner.auto_decompress && resp_head.framing != ResponseFraming::Empty {
                            resp_head
                                .headers
                                .get(header::CONTENT_ENCODING)
                                .and_then(|v| v.to_str().ok())
                                .and_then(Decompressor::for_encoding)
                                .map(Box::new)
                        } else {
                            None
                        };
                    let set_cookies: Vec<&str> = resp_head
                        .headers
                        .get_all(header::SET_COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    inner.jar.update_from_set_cookie(&set_cookies, url);
                    let cookies = set_cookies
                        .iter()
                        .filter_map(|c| {
                            let pair = c.split(';').next()?;
                            let (n, v) = pair.split_once('=')?;
                            Some((n.trim().to_string(), v.trim().to_string()))
                        })
                        .collect();
                    // After a 101 the connection is the new protocol's (a WebSocket's): out
                    // of the pool for good, and out of the body reader, which would close it.
                    let upgraded = if resp_head.status == StatusCode::SWITCHING_PROTOCOLS {
                        lease.detach()
                    } else {
                        None
                    };
                    let content = Content::new(
                        lease,
                        decoder,
                        decompress,
                        *deadlines,
                        resp_head.keep_alive,
                        url.to_string(),
                    );
                    return Ok(ClientResponse {
                        method: method.clone(),
                        status: resp_head.status,
                        reason: resp_head.reason,
                        version: resp_head.version,
                        headers: resp_head.headers,
                        url: url.clone(),
                        history: Vec::new(),
                        cookies,
                        content,
                        body: None,
                        max_body_size: inner.max_body_size,
                        upgraded,
                    });
                }
                Err(e) => {
                    let nothing_back = lease.conn().is_some_and(|c| !c.received);
                    drop(lease);
                    if reused
                        && !retried
                        && idempotent
                        && body.is_replayable()
                        && nothing_back
                        && is_disconnect(&e)
                    {
                        tracing::debug!(%url, "pooled connection was closed by the server; retrying on a new one");
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Writes the request head: the request line, `Host` and the client's built-in defaults
    /// unless `user` (the session's defaults with the request's own over them) has them,
    /// then `user`, the jar's cookies added to any `Cookie` given, and the framing, which only
    /// the client sets. Written straight into the buffer: no header map per request.
    fn write_head(
        &self,
        out: &mut Vec<u8>,
        method: &Method,
        url: &Url,
        user: &HeaderMap,
        framing: RequestFraming,
    ) -> Result<()> {
        let inner = &*self.inner;
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        request_line(out, method, target)
            .map_err(|e| Error::with_message(ErrorKind::InvalidUrl, format!("{e}: {url}")))?;
        let given = |name: &HeaderName| user.contains_key(name);
        if !given(&header::HOST) {
            let host = &url[url::Position::BeforeHost..url::Position::BeforePath];
            field(out, b"Host", host.as_bytes());
        }
        if !given(&header::USER_AGENT) {
            field(out, b"User-Agent", USER_AGENT.as_bytes());
        }
        if !given(&header::ACCEPT) {
            field(out, b"Accept", b"*/*");
        }
        if inner.auto_decompress && !given(&header::ACCEPT_ENCODING) {
            field(out, b"Accept-Encoding", ACCEPT_ENCODING.as_bytes());
        }
        let owned = |name: &HeaderName| {
            name == header::CONTENT_LENGTH
                || name == header::TRANSFER_ENCODING
                || name == header::COOKIE
        };
        for (name, value) in user.iter() {
            if !owned(name) {
                field(out, name.as_str().as_bytes(), value.as_bytes());
            }
        }
        let given_cookie = user.get(header::COOKIE);
        let jar_cookies = inner.jar.filter_cookies(url);
        if given_cookie.is_some() || !jar_cookies.is_empty() {
            let mut line = given_cookie.map_or(Vec::new(), |v| v.as_bytes().to_vec());
            for (name, value) in jar_cookies {
                if !line.is_empty() {
                    line.extend_from_slice(b"; ");
                }
                line.extend_from_slice(name.as_bytes());
                line.push(b'=');
                line.extend_from_slice(value.as_bytes());
            }
            // The jar only keeps cookies without control characters, so the line is a valid
            // field value.
            field(out, b"Cookie", &line);
        }
        end_head(out, framing);
        Ok(())
    }

    /// The URL of a request: relative to the base URL if there is one, with extra query
    /// parameters appended.
    fn make_url(&self, raw: &str, query: &[(String, String)]) -> Result<Url> {
        if query.is_empty() {
            if let Some((last, url)) = self.inner.last_url.borrow().as_ref() {
                if last == raw {
                    return Ok(url.clone());
                }
            }
        }
        let parsed = match &self.inner.base_url {
            Some(base) if Url::parse(raw).is_err() => base.join(raw),
            _ => Url::parse(raw),
        };
        let mut url = parsed
            .map_err(|e| Error::with_message(ErrorKind::InvalidUrl, format!("{raw:?}: {e}")))?;
        check_scheme(&url)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        } else {
            *self.inner.last_url.borrow_mut() = Some((raw.to_string(), url.clone()));
        }
        Ok(url)
    }
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("base_url", &self.inner.base_url.as_ref().map(Url::as_str))
            .field("closed", &self.inner.closed.get())
            .field("connections", &self.connector_stats())
            .finish()
    }
}

/// The web PKI roots, verification on, offering `http/1.1` by ALPN.
fn default_tls() -> Result<TlsConnector> {
    TlsConnector::builder()
        .alpn_protocols(&[b"http/1.1"])
        .build()
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Tls,
                "cannot build the default TLS configuration",
                e,
            )
        })
}

/// Only http and https URLs with a host can be requested.
fn check_scheme(url: &Url) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::with_message(
            ErrorKind::InvalidUrl,
            format!("unsupported URL scheme {:?} in {url}", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::with_message(
            ErrorKind::InvalidUrl,
            format!("no host in {url}"),
        ));
    }
    Ok(())
}

/// The pool key of `url`, reusing `last` (the previous request's) when it is the same
/// origin: a request loop against one server then allocates no key.
fn pool_key(url: &Url, last: &RefCell<Option<PoolKey>>) -> Result<PoolKey> {
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::with_message(ErrorKind::InvalidUrl, format!("no port for {url}")))?;
    let tls = url.scheme() == "https";
    let mut last = last.borrow_mut();
    if let Some(k) = last.as_ref() {
        if k.tls == tls && k.port == port && &*k.host == host {
            return Ok(k.clone());
        }
    }
    let key = PoolKey {
        tls,
        host: Rc::from(host),
        port,
    };
    *last = Some(key.clone());
    Ok(key)
}

/// Writes the head (with a small body already appended) and the rest of the body.
async fn send_request(
    conn: &Connection,
    head: &[u8],
    body: &mut Body,
    deadlines: &Deadlines,
) -> Result<()> {
    let deadline = deadlines.total;
    match body {
        Body::Empty => conn.write_all(&[head], deadline, deadlines).await,
        Body::Bytes(b) if b.len() <= COALESCE_BODY => {
            conn.write_all(&[head], deadline, deadlines).await
        }
        Body::Bytes(b) => conn.write_all(&[head, b], deadline, deadlines).await,
        Body::Stream(stream) => {
            conn.write_all(&[head], deadline, deadlines).await?;
            let mut framing = Vec::with_capacity(20);
            loop {
                let next = until(deadline, poll_fn(|cx| stream.as_mut().poll_next(cx)))
                    .await
                    .map_err(|()| {
                        timeout_error(deadlines, deadline, "waiting for the request body stream")
                    })?;
                match next {
                    None => break,
                    Some(Err(e)) => return Err(io_error("reading the request body stream", e)),
                    Some(Ok(piece)) if piece.is_empty() => {}
                    Some(Ok(piece)) => {
                        framing.clear();
                        chunk_header(&mut framing, piece.len());
                        conn.write_all(&[&framing, &piece, CHUNK_END], deadline, deadlines)
                            .await?;
                    }
                }
            }
            conn.write_all(&[LAST_CHUNK], deadline, deadlines).await
        }
    }
}

/// Settings for a [`ClientSession`].
///
/// ```
/// use std::time::Duration;
/// use kettle::client::{ClientSession, ClientTimeout};
///
/// let session = ClientSession::builder()
///     .base_url("http://127.0.0.1:8000")
///     .header("Authorization", "Bearer tea")
///     .timeout(ClientTimeout::default().total(Duration::from_secs(30)))
///     .limit(20)
///     .limit_per_host(5)
///     .raise_for_status(true)
///     .build()
///     .unwrap();
/// assert_eq!(session.headers()["authorization"], "Bearer tea");
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct ClientSessionBuilder {
    base_url: Option<String>,
    headers: HeaderMap,
    timeout: ClientTimeout,
    limit: usize,
    limit_per_host: usize,
    keepalive_timeout: Duration,
    jar: Option<CookieJar>,
    raise_for_status: bool,
    auto_decompress: bool,
    max_redirects: usize,
    max_body_size: usize,
    tls: Option<TlsConnector>,
    limits: ResponseLimits,
    error: Option<Error>,
}

impl Default for ClientSessionBuilder {
    fn default() -> ClientSessionBuilder {
        ClientSessionBuilder {
            base_url: None,
            headers: HeaderMap::new(),
            timeout: ClientTimeout::default(),
            limit: 100,
            limit_per_host: 0,
            keepalive_timeout: Duration::from_secs(15),
            jar: None,
            raise_for_status: false,
            auto_decompress: true,
            max_redirects: 10,
            max_body_size: 1 << 30,
            tls: None,
            limits: ResponseLimits::default(),
            error: None,
        }
    }
}

impl ClientSessionBuilder {
    /// Requests with relative URLs (`/path`) go to this base.
    pub fn base_url(mut self, url: &str) -> ClientSessionBuilder {
        self.base_url = Some(url.to_string());
        self
    }

    /// A header sent with every request (a request's own header of the same name wins).
    pub fn header(mut self, name: &str, value: &str) -> ClientSessionBuilder {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            _ => {
                self.error.get_or_insert(Error::with_message(
                    ErrorKind::InvalidState,
                    format!("invalid header {name:?}: {value:?}"),
                ));
            }
        }
        self
    }

    /// The default timeouts (aiohttp's `ClientTimeout`).
    pub fn timeout(mut self, timeout: ClientTimeout) -> ClientSessionBuilder {
        self.timeout = timeout;
        self
    }

    /// The most connections open at once, busy or idle (default 100; 0: no limit).
    pub fn limit(mut self, n: usize) -> ClientSessionBuilder {
        self.limit = n;
        self
    }

    /// The most connections to one origin (default 0: no limit beyond `limit`).
    pub fn limit_per_host(mut self, n: usize) -> ClientSessionBuilder {
        self.limit_per_host = n;
        self
    }

    /// How long an idle keep-alive connection is kept (default 15 s, as aiohttp).
    pub fn keepalive_timeout(mut self, d: Duration) -> ClientSessionBuilder {
        self.keepalive_timeout = d;
        self
    }

    /// The cookie jar; [`CookieJar::dummy`] keeps no cookies.
    pub fn cookie_jar(mut self, jar: CookieJar) -> ClientSessionBuilder {
        self.jar = Some(jar);
        self
    }

    /// Whether every 4xx/5xx response is an [`ErrorKind::Status`] error (default false).
    pub fn raise_for_status(mut self, on: bool) -> ClientSessionBuilder {
        self.raise_for_status = on;
        self
    }

    /// Whether to ask for and undo gzip, deflate and br encodings (default true).
    pub fn auto_decompress(mut self, on: bool) -> ClientSessionBuilder {
        self.auto_decompress = on;
        self
    }

    /// The most redirects a request follows (default 10).
    pub fn max_redirects(mut self, n: usize) -> ClientSessionBuilder {
        self.max_redirects = n;
        self
    }

    /// The largest body `bytes`, `text` and `json` will hold in memory (default 1 GiB); larger
    /// bodies must be streamed through `content()`.
    pub fn max_body_size(mut self, bytes: usize) -> ClientSessionBuilder {
        self.max_body_size = bytes;
        self
    }

    /// The longest status line or header line a response may have (default 8190).
    pub fn max_line_size(mut self, bytes: usize) -> ClientSessionBuilder {
        self.limits.max_line = bytes;
        self
    }

    /// The largest response head (default 64 KiB).
    pub fn max_head_size(mut self, bytes: usize) -> ClientSessionBuilder {
        self.limits.max_head = bytes;
        self
    }

    /// The TLS configuration for https URLs (default: the web PKI roots, verification on,
    /// ALPN `http/1.1`). Give a connector built with
    /// [`TlsConnector::builder`](crate::tls::TlsConnector::builder) to trust a private CA or,
    /// for tests only, to accept any certificate; set its ALPN to `http/1.1` too.
    pub fn tls(mut self, connector: TlsConnector) -> ClientSessionBuilder {
        self.tls = Some(connector);
        self
    }

    /// Builds the session.
    pub fn build(self) -> Result<ClientSession> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let base_url = match self.base_url {
            Some(raw) => {
                let url = Url::parse(&raw).map_err(|e| {
                    Error::with_message(ErrorKind::InvalidUrl, format!("base URL {raw:?}: {e}"))
                })?;
                check_scheme(&url)?;
                Some(url)
            }
            None => None,
        };
        let pool = Pool::new(PoolConfig {
            limit: self.limit,
            limit_per_host: self.limit_per_host,
            keepalive_timeout: self.keepalive_timeout,
        });
        Ok(ClientSession {
            inner: Rc::new(Inner {
                base_url,
                headers: self.headers,
                timeout: self.timeout,
                pool,
                jar: self.jar.unwrap_or_default(),
                raise_for_status: self.raise_for_status,
                auto_decompress: self.auto_decompress,
                max_redirects: self.max_redirects,
                max_body_size: self.max_body_size,
                tls: match self.tls {
                    Some(tls) => tls,
                    None => default_tls()?,
                },
                limits: self.limits,
                closed: Cell::new(false),
                last_url: RefCell::new(None),
                last_key: RefCell::new(None),
            }),
        })
    }
}

impl std::fmt::Debug for ClientSessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSessionBuilder")
            .field("base_url", &self.base_url)
            .field("limit", &self.limit)
            .field("limit_per_host", &self.limit_per_host)
            .finish()
    }
}
