//! `TestClient` (aiohttp's `aiohttp.test_utils.TestClient`): runs an application in-process
//! on an ephemeral port of 127.0.0.1 and talks real HTTP/1.1 to it over a keep-alive
//! connection.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::app::Application;
use super::runner::{AppRunner, ServerOptions};
use crate::http::decode::{Decoder, Step};
use crate::http::head::Framing;
use crate::http::response_head::{self, ResponseFraming, ResponseLimits};
use crate::net::TcpStream;

/// An application served for a test, and a client for it.
///
/// ```
/// use kettle::web::{Application, Request, Response, TestClient};
///
/// kettle::run(async {
///     let mut app = Application::new();
///     app.router().add_get("/hello/{name}", |req: Request| async move {
///         Response::text(format!("hello, {}", req.match_info().get("name").unwrap()))
///     });
///     let client = TestClient::new(app).await.unwrap();
///     let resp = client.get("/hello/kettle").await.unwrap();
///     assert_eq!(resp.status(), 200);
///     assert_eq!(resp.text(), "hello, kettle");
///     client.close().await;
/// });
/// ```
pub struct TestClient {
    runner: AppRunner,
    addr: SocketAddr,
    conn: RefCell<Option<(TcpStream, BytesMut)>>,
}

impl TestClient {
    /// Starts `app` on 127.0.0.1 with a free port.
    pub async fn new(app: Application) -> io::Result<TestClient> {
        TestClient::with_options(app, ServerOptions::default()).await
    }

    /// Opens a WebSocket to `path` on the test server (aiohttp's `client.ws_connect`).
    ///
    /// ```
    /// use kettle::web::{self, Application, Request, TestClient, WebSocketResponse};
    ///
    /// async fn shout(req: Request) -> Result<WebSocketResponse, web::Error> {
    ///     let ws = WebSocketResponse::new();
    ///     ws.prepare(&req).await?;
    ///     let text = ws.receive_str().await?;
    ///     ws.send_str(&text.to_uppercase()).await?;
    ///     ws.close(1000, "").await?;
    ///     Ok(ws)
    /// }
    ///
    /// kettle::run(async {
    ///     let mut app = Application::new();
    ///     app.router().add_get("/ws", shout);
    ///     let client = TestClient::new(app).await.unwrap();
    ///     let ws = client.ws_connect("/ws").await.unwrap();
    ///     ws.send_str("hello").await.unwrap();
    ///     assert_eq!(ws.receive_str().await.unwrap(), "HELLO");
    ///     client.close().await;
    /// });
    /// ```
    pub async fn ws_connect(&self, path: &str) -> crate::Result<crate::ws::WebSocket> {
        // The WebSocket leaves the session's pool after the handshake, so the session
        // can go.
        let session = crate::client::ClientSession::new();
        session
            .ws_connect(&format!("ws://{}{}", self.addr, path))
            .await
    }

    /// Starts `app` with server options (short timeouts for timeout tests, say).
    pub async fn with_options(app: Application, options: ServerOptions) -> io::Result<TestClient> {
        let runner = AppRunner::start_with(app, "127.0.0.1", 0, options).await?;
        let addr = runner.addrs()[0];
        Ok(TestClient {
            runner,
            addr,
            conn: RefCell::new(None),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running server (for its app and connection count).
    pub fn runner(&self) -> &AppRunner {
        &self.runner
    }

    /// A request to build and send.
    pub fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method,
            path: path.to_string(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> io::Result<TestResponse> {
        self.request(Method::GET, path).send().await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> io::Result<TestResponse> {
        self.request(Method::POST, path).body(body).send().await
    }

    /// Shuts the server down gracefully.
    pub async fn close(self) {
        drop(self.conn.take());
        self.runner.shutdown().await;
    }

    async fn roundtrip(&self, req: &TestRequest<'_>) -> io::Result<TestResponse> {
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
        if !req.headers.contains_key(http::header::HOST) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in &req.headers {
            head.push_str(k.as_str());
            head.push_str(": ");
            head.push_str(&String::from_utf8_lossy(v.as_bytes()));
            head.push_str("\r\n");
        }
        // A length (or chunked framing) the test set by hand is sent as given: adding ours
        // would repeat Content-Length, which the server rightly refuses.
        let framed = req.headers.contains_key(http::header::CONTENT_LENGTH)
            || req.headers.contains_key(http::header::TRANSFER_ENCODING);
        if !framed
            && (!req.body.is_empty()
                || matches!(req.method, Method::POST | Method::PUT | Method::PATCH))
        {
            head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(&req.body);

        let head_request = req.method == Method::HEAD;
        let taken = self.conn.borrow_mut().take();
        if let Some((stream, mut buf)) = taken {
            let mut answered = false;
            match exchange(&stream, &mut buf, &wire, head_request, &mut answered).await {
                Ok((resp, keep)) => {
                    if keep {
                        *self.conn.borrow_mut() = Some((stream, buf));
                    }
                    return Ok(resp);
                }
                // The server closed the idle keep-alive connection (its keep-alive timeout)
                // before it saw this request: not an answer, so send it again on a new
                // connection, as HTTP clients do.
                Err(e) if !answered && is_disconnect(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let stream = TcpStream::connect(self.addr).await?;
        let mut buf = BytesMut::new();
        let (resp, keep) = exchange(&stream, &mut buf, &wire, head_request, &mut false).await?;
        if keep {
            *self.conn.borrow_mut() = Some((stream, buf));
        }
        Ok(resp)
    }
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A request being built by [`TestClient::request`].
#[derive(Debug)]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl TestRequest<'_> {
    /// Adds a header; an invalid name or value is a test bug and panics.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = HeaderValue::from_str(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Sets the body (sent with `Content-Length`).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and reads the whole response.
    pub async fn send(self) -> io::Result<TestResponse> {
        self.client.roundtrip(&self).await
    }
}

/// A response read by the test client.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text (`None` if missing or not text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

/// Sends a request and reads its response; `answered` is set once any byte of a response
/// has arrived.
async fn exchange(
    stream: &TcpStream,
    buf: &mut BytesMut,
    wire: &[u8],
    head_request: bool,
    answered: &mut bool,
) -> io::Result<(TestResponse, bool)> {
    stream.write_all(wire).await?;
    read_response(stream, buf, head_request, answered).await
}

/// Errors that mean the peer had closed the connection.
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one response (skipping interim ones) with the client role of the codec
/// (`http::response_head`, the body `Decoder`); returns it and whether the connection can be
/// reused.
async fn read_response(
    stream: &TcpStream,
    buf: &mut BytesMut,
    head_request: bool,
    answered: &mut bool,
) -> io::Result<(TestResponse, bool)> {
    *answered |= !buf.is_empty();
    let method = if head_request {
        Method::HEAD
    } else {
        Method::GET
    };
    let limits = ResponseLimits::default();
    let head = loop {
        match response_head::parse(buf, &limits, &method).map_err(invalid)? {
            Some((head, len)) => {
                let _ = buf.split_to(len);
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                break head;
            }
            None => {
                if stream.read_buf(buf, 8192).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *answered = true;
            }
        }
    };
    let mut decoder = match head.framing {
        ResponseFraming::Empty => Decoder::new(Framing::Length(0)),
        ResponseFraming::Length(n) => Decoder::new(Framing::Length(n)),
        ResponseFraming::Chunked => Decoder::new(Framing::Chunked),
        ResponseFraming::UntilClose => Decoder::until_close(),
    };
    let mut body = BytesMut::new();
    loop {
        match decoder
            .decode(buf, usize::MAX)
            .map_err(|e| invalid(e.to_string()))?
        {
            Step::Data(b) => body.extend_from_slice(&b),
            Step::Done => break,
            Step::NeedMore => {
                if stream.read_buf(buf, 8192).await? == 0 {
                    if decoder.ends_at_close() {
                        break;
                    }
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
    let response = TestResponse {
        status: head.status,
        headers: head.headers,
        body: body.freeze(),
    };
    Ok((response, head.keep_alive))
}
