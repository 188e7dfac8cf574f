//! What a handler may fail with: an [`HttpException`] (sent as is) or any other error (logged
//! with its detail; the client gets a bare 500).

use super::exceptions::HttpException;
use super::response::{IntoResponse, Response};

/// A handler's error. Any `std::error::Error` converts into it with `?`; an
/// [`HttpException`] keeps its status, anything else becomes a 500 whose detail goes only to
/// the log, never to the client.
///
/// ```
/// use kettle::web::{self, Request, Response};
///
/// async fn user(req: Request) -> Result<Response, web::Error> {
///     let id: u32 = req.match_info().get("id").unwrap_or("").parse()
///         .map_err(|_| web::HTTPBadRequest().with_text("id must be a number"))?;
///     if id == 0 {
///         return Err(web::HTTPNotFound().into());
///     }
///     Ok(Response::text(format!("user {id}")))
/// }
/// ```
pub struct Error {
    // Boxed: an HttpException carries a HeaderMap, and a large `Err` would make every
    // handler's `Result` large on the success path too.
    inner: Box<Inner>,
}

enum Inner {
    Http(HttpException),
    Other(Box<dyn std::error::Error>),
}

impl Error {
    /// The HTTP exception this error carries, if it is one.
    pub fn as_http(&self) -> Option<&HttpException> {
        match &*self.inner {
            Inner::Http(e) => Some(e),
            Inner::Other(_) => None,
        }
    }

    /// The status the client will get.
    pub fn status(&self) -> http::StatusCode {
        match &*self.inner {
            Inner::Http(e) => e.status(),
            Inner::Other(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(e: E) -> Error {
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        let inner = match boxed.downcast::<HttpException>() {
            Ok(http) => Inner::Http(*http),
            Err(other) => Inner::Other(other),
        };
        Error {
            inner: Box::new(inner),
        }
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Http(e) => std::fmt::Debug::fmt(e, f),
            Inner::Other(e) => std::fmt::Debug::fmt(e, f),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Http(e) => std::fmt::Display::fmt(e, f),
            Inner::Other(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match *self.inner {
            Inner::Http(e) => e.into_response(),
            Inner::Other(e) => {
                tracing::error!(error = %e, detail = ?e, "error handling request");
                internal_error()
            }
        }
    }
}

/// The 500 a client gets when a handler fails or panics: no detail, as aiohttp does.
pub(crate) fn internal_error() -> Response {
    HttpException::new(http::StatusCode::INTERNAL_SERVER_ERROR)
        .with_text("500 Internal Server Error\n\nServer got itself in trouble")
        .into_response()
}
