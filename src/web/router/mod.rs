//! The URL dispatcher (aiohttp's `app.router`): routes from a method and a path pattern to a
//! handler; `pattern` parses `{name}`, `{name:regex}` patterns, `table` resolves requests in
//! registration order.
//!
//! An unknown path resolves to a 404 handler; a known path with another method to a 405
//! handler listing the allowed methods in `Allow`. Both are ordinary handlers, so
//! middlewares see those responses too.

pub mod pattern;
mod prefix;
pub mod table;

use std::path::PathBuf;
use std::rc::Rc;

use http::Method;

use super::exceptions::{HTTPMethodNotAllowed, HTTPNotFound};
use super::handler::Handler;
use super::request::{MatchInfo, Request};
pub use pattern::{Params, PatternError, UrlForError};
pub(crate) use prefix::Prefix;
pub use table::{MethodFilter, RouteError};

/// One entry of a route table for [`Router::add_routes`], made by [`get`], [`post`], ...,
/// [`route`] (aiohttp's `web.get(...)` and friends).
#[must_use = "a route definition does nothing until it is added with add_routes"]
pub struct RouteDef {
    method: MethodFilter,
    path: String,
    name: Option<String>,
    handler: Rc<dyn Handler>,
}

impl RouteDef {
    /// Names the route, for [`Router::url_for`].
    pub fn name(mut self, name: &str) -> RouteDef {
        self.name = Some(name.to_string());
        self
    }
}

impl std::fmt::Debug for RouteDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteDef")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("name", &self.name)
            .finish()
    }
}

/// A route for `method` (`"*"` for any) at `path`.
///
/// # Panics
/// If `method` is not a valid method name, as [`Router::add_route`] does.
pub fn route(method: &str, path: &str, handler: impl Handler) -> RouteDef {
    RouteDef {
        method: method_filter(method),
        path: path.to_string(),
        name: None,
        handler: Rc::new(handler),
    }
}

/// A `GET` route (which also answers `HEAD`).
pub fn get(path: &str, handler: impl Handler) -> RouteDef {
    route("GET", path, handler)
}

/// A `POST` route.
pub fn post(path: &str, handler: impl Handler) -> RouteDef {
    route("POST", path, handler)
}

/// A `PUT` route.
pub fn put(path: &str, handler: impl Handler) -> RouteDef {
    route("PUT", path, handler)
}

/// A `PATCH` route.
pub fn patch(path: &str, handler: impl Handler) -> RouteDef {
    route("PATCH", path, handler)
}

/// A `DELETE` route.
pub fn delete(path: &str, handler: impl Handler) -> RouteDef {
    route("DELETE", path, handler)
}

/// A `HEAD` route (replacing the one a `GET` route on the same path adds).
pub fn head(path: &str, handler: impl Handler) -> RouteDef {
    route("HEAD", path, handler)
}
use table::{Resolved, RouteTable};

/// Routes requests to handlers.
///
/// ```
/// use kettle::web::{Application, Request, Response};
///
/// async fn user(req: Request) -> Response {
///     Response::text(format!("user {}", req.match_info().get("id").unwrap()))
/// }
///
/// let mut app = Application::new();
/// app.router()
///     .add_get(r"/users/{id:\d+}", user)
///     .add_route_named("DELETE", r"/users/{id:\d+}", "delete-user", user);
/// ```
pub struct Router {
    table: RouteTable<Rc<dyn Handler>>,
    not_found: Rc<dyn Handler>,
    /// Patterns whose HEAD route was added implicitly by their GET route.
    implicit_head: std::collections::HashSet<String>,
}

impl Default for Router {
    fn default() -> Router {
        Router::new()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router {
            table: RouteTable::new(),
            not_found: Rc::new(|_req: Request| async { HTTPNotFound() }),
            implicit_head: std::collections::HashSet::new(),
        }
    }

    /// Adds a route for `method` (`"GET"`, `"POST"`, ... or `"*"` for any method) and a path
    /// pattern.
    ///
    /// # Panics
    /// On an invalid method or pattern, or a route that duplicates one already added: these
    /// are programming errors, found when the application is built. [`try_add_route`]
    /// returns pattern and duplicate errors instead.
    ///
    /// [`try_add_route`]: Router::try_add_route
    pub fn add_route(&mut self, method: &str, path: &str, handler: impl Handler) -> &mut Router {
        let filter = method_filter(method);
        if let Err(e) = self.try_add_route(filter, path, None, handler) {
            panic!("cannot add route {method} {path}: {e}");
        }
        self
    }

    /// [`add_route`](Self::add_route) with a name for [`url_for`](Self::url_for).
    pub fn add_route_named(
        &mut self,
        method: &str,
        path: &str,
        name: &str,
        handler: impl Handler,
    ) -> &mut Router {
        let filter = method_filter(method);
        if let Err(e) = self.try_add_route(filter, path, Some(name), handler) {
            panic!("cannot add route {method} {path}: {e}");
        }
        self
    }

    /// Adds a route, returning what is wrong with it instead of panicking.
    pub fn try_add_route(
        &mut self,
        method: MethodFilter,
        path: &str,
        name: Option<&str>,
        handler: impl Handler,
    ) -> Result<(), RouteError> {
        self.add_shared(method, path, name, Rc::new(handler))
    }

    fn add_shared(
        &mut self,
        method: MethodFilter,
        path: &str,
        name: Option<&str>,
        handler: Rc<dyn Handler>,
    ) -> Result<(), RouteError> {
        let head = MethodFilter::Only(Method::HEAD);
        if method == head && self.implicit_head.contains(path) {
            // The HEAD route a GET route added for this path gives way to the explicit one.
            self.implicit_head.remove(path);
            self.table.replace(&Method::HEAD, path, handler);
            return Ok(());
        }
        let is_get = method == MethodFilter::Only(Method::GET);
        self.table.add(method, path, name, handler.clone())?;
        // RFC 9110 §9.1: a server that answers GET answers HEAD too (the protocol layer sends
        // the head and no body). An explicit HEAD route added earlier keeps its place.
        if is_get && self.table.add(head, path, None, handler).is_ok() {
            self.implicit_head.insert(path.to_string());
        }
        Ok(())
    }

    /// Adds a table of routes at once (aiohttp's `app.add_routes([web.get(..), ...])`),
    /// built with [`web::get`](super::get), [`web::post`](super::post), ...,
    /// [`web::route`](super::route).
    ///
    /// ```
    /// use kettle::web::{self, Application, Request};
    ///
    /// async fn index(_req: Request) -> &'static str { "index" }
    /// async fn save(_req: Request) -> &'static str { "saved" }
    ///
    /// let mut app = Application::new();
    /// app.router().add_routes([
    ///     web::get("/", index),
    ///     web::post("/save", save).name("save"),
    ///     web::route("PURGE", "/cache", index),
    /// ]);
    /// assert_eq!(app.router().url_for("save", &[]).unwrap(), "/save");
    /// ```
    ///
    /// # Panics
    /// If a route cannot be added (see [`try_add_routes`](Self::try_add_routes)).
    pub fn add_routes(&mut self, routes: impl IntoIterator<Item = RouteDef>) -> &mut Router {
        if let Err(e) = self.try_add_routes(routes) {
            panic!("cannot add routes: {e}");
        }
        self
    }

    /// [`add_routes`](Self::add_routes) that reports the first route that cannot be added
    /// (routes before it stay added).
    pub fn try_add_routes(
        &mut self,
        routes: impl IntoIterator<Item = RouteDef>,
    ) -> Result<(), RouteError> {
        for r in routes {
            self.add_shared(r.method, &r.path, r.name.as_deref(), r.handler)?;
        }
        Ok(())
    }

    /// `GET` route that also answers `HEAD` (with the same headers and no body), as aiohttp's
    /// `add_get` does. Every `GET` route does; this is `add_route("GET", path, handler)`.
    pub fn add_get(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        if let Err(e) = self.try_add_route(MethodFilter::Only(Method::GET), path, None, handler) {
            panic!("cannot add route GET {path}: {e}");
        }
        self
    }

    /// `POST` route.
    pub fn add_post(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        self.add_route("POST", path, handler)
    }

    /// `PUT` route.
    pub fn add_put(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        self.add_route("PUT", path, handler)
    }

    /// `PATCH` route.
    pub fn add_patch(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        self.add_route("PATCH", path, handler)
    }

    /// `DELETE` route.
    pub fn add_delete(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        self.add_route("DELETE", path, handler)
    }

    /// `HEAD` route.
    pub fn add_head(&mut self, path: &str, handler: impl Handler) -> &mut Router {
        self.add_route("HEAD", path, handler)
    }

    /// Serves the files under `dir` at `prefix` (`GET` and `HEAD`): `add_static("/static",
    /// "./files")` answers `/static/css/a.css` with `./files/css/a.css`. Conditional
    /// requests (`If-Modified-Since`, `If-None-Match`) and `Range` are honoured; nothing
    /// outside `dir` is ever served (`..`, encoded slashes and symlinks that leave it get a
    /// 403 or 404).
    ///
    /// # Panics
    /// If `prefix` is not a valid path prefix (it must start with `/`).
    pub fn add_static(&mut self, prefix: &str, dir: impl Into<PathBuf>) -> &mut Router {
        let prefix = prefix.trim_end_matches('/');
        let handler = super::static_files::StaticHandler::new(dir.into());
        let pattern = format!("{prefix}/{{filename:.*}}");
        self.add_get(&pattern, handler)
    }

    /// The path of the route named `name` with `params` filled in.
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, UrlForError> {
        self.table.url_for(name, params)
    }

    /// Where the next new pattern goes in resolution order: a sub-application mounted now
    /// comes after the resources registered so far.
    pub(crate) fn resource_count(&self) -> usize {
        self.table.resource_count()
    }

    /// Puts `prefix` in front of every pattern, when the application this router belongs to
    /// is mounted as a sub-application (aiohttp prefixes the sub-application's resources
    /// the same way, so its `url_for` gives full paths).
    pub(crate) fn add_prefix(&mut self, prefix: &Prefix) -> Result<(), RouteError> {
        let table = std::mem::take(&mut self.table);
        self.table = table.with_prefix(prefix.as_str())?;
        self.implicit_head = self
            .implicit_head
            .drain()
            .map(|path| format!("{}{path}", prefix.as_str()))
            .collect();
        Ok(())
    }

    /// The route for a request if one of the first `before` resources accepts it: those were
    /// registered ahead of a sub-application whose prefix covers the path, so they win over
    /// it. `None` leaves the request to the sub-application, 404 and 405 included, as
    /// aiohttp's resolution in registration order does.
    pub(crate) fn resolve_before(
        &self,
        method: &Method,
        raw_path: &str,
        before: usize,
    ) -> Option<(Rc<dyn Handler>, MatchInfo)> {
        if before == 0 {
            return None;
        }
        match self.table.resolve(method, raw_path) {
            Resolved::Found {
                handler,
                params,
                route,
            } if route.resource < before => Some((
                handler.clone(),
                MatchInfo::new(params, route.name.map(Rc::from)),
            )),
            _ => None,
        }
    }

    /// The handler for a request, with its path parameters.
    pub(crate) fn resolve(&self, method: &Method, raw_path: &str) -> (Rc<dyn Handler>, MatchInfo) {
        match self.table.resolve(method, raw_path) {
            Resolved::Found {
                handler,
                params,
                route,
            } => (
                handler.clone(),
                MatchInfo::new(params, route.name.map(Rc::from)),
            ),
            Resolved::MethodNotAllowed { allowed } => {
                let method = method.clone();
                let handler: Rc<dyn Handler> = Rc::new(move |_req: Request| {
                    let e = HTTPMethodNotAllowed(&method, &allowed);
                    async move { e }
                });
                (handler, MatchInfo::default())
            }
            Resolved::NotFound => (self.not_found.clone(), MatchInfo::default()),
        }
    }
}

/// `"GET"`, `"get"` or `"*"`.
///
/// # Panics
/// On a string that is not a method token (a programming error in route setup).
fn method_filter(method: &str) -> MethodFilter {
    match method.parse() {
        Ok(m) => m,
        Err(_) => panic!("invalid HTTP method {method:?} in a route"),
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.table.len())
            .finish()
    }
}
