//! Handlers and middlewares: plain async functions, stored type-erased.
//!
//! A handler is any `Fn(Request) -> impl Future<Output = impl IntoResponse>`; a middleware is
//! any `Fn(Request, Next) -> impl Future<Output = impl IntoResponse>`. Middlewares run
//! outermost first, as in aiohttp: the first one added sees the request first and the
//! response last.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::app::App;
use super::request::Request;
use super::response::{IntoResponse, Response};

/// A boxed, non-`Send` future: handlers run on their connection's loop thread.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A request handler. Implemented for every `async fn(Request) -> impl IntoResponse` and for
/// closures of that shape.
pub trait Handler: 'static {
    /// Handles one request.
    fn call(&self, req: Request) -> LocalBoxFuture<Response>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> LocalBoxFuture<Response> {
        let fut = self(req);
        Box::pin(async move { fut.await.into_response() })
    }
}

/// A middleware: sees each request before the handler and its response after.
pub trait Middleware: 'static {
    /// Handles one request, usually by calling `next.run(req)` somewhere inside.
    fn call(&self, req: Request, next: Next) -> LocalBoxFuture<Response>;
}

impl<F, Fut, R> Middleware for F
where
    F: Fn(Request, Next) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request, next: Next) -> LocalBoxFuture<Response> {
        let fut = self(req, next);
        Box::pin(async move { fut.await.into_response() })
    }
}

/// The rest of the chain after a middleware: the inner middlewares, then the handler.
///
/// ```
/// use kettle::web::{Next, Request, Response};
///
/// async fn server_header(req: Request, next: Next) -> Response {
///     let mut resp = next.run(req).await;
///     resp.headers_mut().insert("server", "kettle".parse().unwrap());
///     resp
/// }
/// ```
pub struct Next {
    pub(crate) chain: Rc<[Rc<dyn Middleware>]>,
    pub(crate) index: usize,
    pub(crate) handler: Rc<dyn Handler>,
    /// The sub-application that matched, for a request routed into one: each middleware then
    /// sees its own application as `req.app()` and the handler the matched one (aiohttp's
    /// `current_app`). `None` leaves `req.app()` alone, which is all a request to an
    /// application without sub-applications needs.
    pub(crate) matched: Option<App>,
}

impl Next {
    /// Runs the rest of the chain for `req`.
    pub async fn run(self, mut req: Request) -> Response {
        match self.chain.get(self.index).cloned() {
            Some(mw) => {
                if let Some(matched) = &self.matched {
                    req.set_app(matched.owner_of(self.index));
                }
                let next = Next {
                    chain: self.chain,
                    index: self.index + 1,
                    handler: self.handler,
                    matched: self.matched,
                };
                mw.call(req, next).await
            }
            None => {
                if let Some(matched) = self.matched {
                    req.set_app(matched);
                }
                self.handler.call(req).await
            }
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining_middlewares", &(self.chain.len() - self.index))
            .finish()
    }
}
