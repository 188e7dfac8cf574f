//! `Application` (aiohttp's `web.Application`): the router, middlewares, shared state,
//! lifecycle hooks, the request body limit and sub-applications. Once served it is frozen
//! into an [`App`], the cheap handle that requests and hooks see.
//!
//! # Sub-applications
//!
//! [`Application::add_subapp`] mounts an application under a path prefix, as aiohttp's
//! `app.add_subapp(prefix, subapp)` does. The invariants the code below keeps:
//!
//! - Mounting prefixes every pattern of the sub-application (and of its own
//!   sub-applications), so its router matches full paths and its `url_for` builds them.
//! - A mounted application takes its place in the parent's resolution order: it comes after
//!   the resources the parent had when it was mounted. A path under the prefix goes to the
//!   sub-application unless one of those earlier resources accepts it; the sub-application's
//!   answer, 404 and 405 included, is final.
//! - Frozen, each application holds its parents' middlewares followed by its own (`chain`),
//!   so a request costs no chain building, and a weak link to its parent (the parent owns
//!   its sub-applications; a strong link back would be a cycle that never frees).
//! - `req.app()` follows aiohttp's `current_app`: [`Next`] carries the matched application
//!   and sets, before each middleware, the application that added it, and before the
//!   handler the matched one. The matched one also rides in the match info, where
//!   `req.config()` starts its lookup.
//! - An application without sub-applications takes exactly the path it took before they
//!   existed: one emptiness check, no allocation.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::{Rc, Weak};

use http::Method;

use super::error::Error;
use super::handler::{Handler, LocalBoxFuture, Middleware, Next};
use super::request::{MatchInfo, Request};
use super::response::Response;
use super::router::pattern::normalize_path;
use super::router::{Prefix, RouteError, Router};

/// aiohttp's default `client_max_size`: 1 MiB.
pub const DEFAULT_CLIENT_MAX_SIZE: u64 = 1024 * 1024;

type Hook = Rc<dyn Fn(App) -> LocalBoxFuture<Result<(), Error>>>;

/// One entry of a lifecycle signal. A sub-application's hooks run where it was mounted among
/// the parent's own (aiohttp appends the sub-application's signal to the parent's), each
/// with the sub-application's own [`App`].
enum HookEntry {
    Own(Hook),
    /// Index into the application's sub-applications.
    Subapp(usize),
}

/// Which lifecycle signal runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    Startup,
    Shutdown,
    Cleanup,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Startup => "on_startup",
            Signal::Shutdown => "on_shutdown",
            Signal::Cleanup => "on_cleanup",
        }
    }
}

/// A sub-application and where it is mounted.
struct Mount<A> {
    /// The full prefix, including the prefixes of the applications above.
    prefix: Prefix,
    /// How many of the parent's resources come before it in resolution order.
    position: usize,
    app: A,
}

/// A web application: routes, middlewares, state and hooks.
///
/// ```
/// use kettle::web::{self, Application, Request, Response};
///
/// async fn index(_req: Request) -> Response {
///     Response::html("<h1>Index</h1>")
/// }
///
/// async fn hello(req: Request) -> Response {
///     let name = req.match_info().get("name").unwrap_or("world");
///     Response::html(format!("<h1>hello, {name}!</h1>"))
/// }
///
/// let mut app = Application::new();
/// app.router().add_get("/", index);
/// app.router().add_get("/hello/{name}", hello);
/// // web::run_app(app, "127.0.0.1", 8000) would serve it until Ctrl+C.
/// ```
pub struct Application {
    router: Router,
    middlewares: Vec<Rc<dyn Middleware>>,
    state: HashMap<TypeId, Rc<dyn Any>>,
    on_startup: Vec<HookEntry>,
    on_shutdown: Vec<HookEntry>,
    on_cleanup: Vec<HookEntry>,
    client_max_size: u64,
    /// Mounted applications, in registration order (the order they are tried in).
    subapps: Vec<Mount<Application>>,
}

impl Default for Application {
    fn default() -> Application {
        Application::new()
    }
}

impl Application {
    /// An application with no routes.
    pub fn new() -> Application {
        Application {
            router: Router::new(),
            middlewares: Vec::new(),
            state: HashMap::new(),
            on_startup: Vec::new(),
            on_shutdown: Vec::new(),
            on_cleanup: Vec::new(),
            client_max_size: DEFAULT_CLIENT_MAX_SIZE,
            subapps: Vec::new(),
        }
    }

    /// The URL dispatcher, to add routes (aiohttp's `app.router`).
    pub fn router(&mut self) -> &mut Router {
        &mut self.router
    }

    /// Adds a middleware; the first added is the outermost.
    pub fn add_middleware(&mut self, middleware: impl Middleware) -> &mut Application {
        self.middlewares.push(Rc::new(middleware));
        self
    }

    /// Stores shared state of type `T` (one value per type), reachable from every request
    /// this application answers as `req.state::<T>()`, and from the requests of its
    /// sub-applications as `req.config::<T>()`. Use a `Cell`/`RefCell` inside `T` for
    /// mutable state: one application runs on one thread.
    pub fn set_state<T: 'static>(&mut self, value: T) -> &mut Application {
        self.state.insert(TypeId::of::<T>(), Rc::new(value));
        self
    }

    /// The largest request body `read`/`text`/`json`/`post` accept, in bytes (default
    /// 1 MiB); a declared length above it is refused with 413 before the body is read.
    pub fn set_client_max_size(&mut self, bytes: u64) -> &mut Application {
        self.client_max_size = bytes;
        self
    }

    /// Runs `hook` when the server starts, before it accepts connections; an error aborts
    /// the start.
    pub fn on_startup<F, Fut>(&mut self, hook: F) -> &mut Application
    where
        F: Fn(App) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        self.on_startup
            .push(HookEntry::Own(Rc::new(move |app| Box::pin(hook(app)))));
        self
    }

    /// Runs `hook` when shutdown begins: listeners are closed, requests in flight still run.
    /// A failing hook is logged and the later ones still run.
    pub fn on_shutdown<F, Fut>(&mut self, hook: F) -> &mut Application
    where
        F: Fn(App) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        self.on_shutdown
            .push(HookEntry::Own(Rc::new(move |app| Box::pin(hook(app)))));
        self
    }

    /// Runs `hook` last, after every connection has ended (release resources here). A
    /// failing hook is logged and the later ones still run.
    pub fn on_cleanup<F, Fut>(&mut self, hook: F) -> &mut Application
    where
        F: Fn(App) -> Fut + 'static,
        Fut: Future<Output = Result<(), Error>> + 'static,
    {
        self.on_cleanup
            .push(HookEntry::Own(Rc::new(move |app| Box::pin(hook(app)))));
        self
    }

    /// Mounts `subapp` under `prefix` (aiohttp's `app.add_subapp(prefix, subapp)`): a request
    /// whose path is `prefix` or continues it with `/` is routed by `subapp`, whose routes
    /// are written without the prefix (`/users/{id}` under `/admin` serves
    /// `/admin/users/{id}`; a route `""` serves `/admin` itself).
    ///
    /// - **Middlewares**: this application's run first (outermost), then the
    ///   sub-application's, for its requests only.
    /// - **State**: in the sub-application's handlers [`Request::app`] and
    ///   [`Request::state`] are the sub-application's; [`Request::config`] looks in the
    ///   sub-application first, then in its parents (aiohttp's `request.config_dict`).
    /// - **Hooks**: the sub-application's `on_startup`/`on_shutdown`/`on_cleanup` hooks run
    ///   with this application's, at the point where it was mounted, each with its own
    ///   [`App`].
    /// - **Body limit**: the sub-application's `client_max_size` applies to its requests.
    /// - **Order**: as in aiohttp, resolution follows registration order. Routes of this
    ///   application registered *before* the mount win over the sub-application for paths
    ///   under the prefix; for those registered after, the sub-application answers (404 if
    ///   it has no route), so add them before mounting or to the sub-application.
    ///
    /// A trailing `/` is dropped; the prefix must start with `/`, must not be empty or `/`
    /// alone, and is literal text (no `{parameters}`).
    ///
    /// ```
    /// use kettle::web::{Application, Request, Response, TestClient};
    ///
    /// async fn user(req: Request) -> Response {
    ///     let id = req.match_info().get("id").unwrap();
    ///     let url = req.app().url_for("user", &[("id", id)]).unwrap();
    ///     Response::text(format!("user {id} at {url}"))
    /// }
    ///
    /// let mut admin = Application::new();
    /// admin.router().add_route_named("GET", "/users/{id}", "user", user);
    ///
    /// let mut app = Application::new();
    /// app.add_subapp("/admin", admin);
    ///
    /// kettle::run(async {
    ///     let client = TestClient::new(app).await.unwrap();
    ///     let resp = client.get("/admin/users/7").await.unwrap();
    ///     assert_eq!(resp.text(), "user 7 at /admin/users/7");
    ///     assert_eq!(client.get("/users/7").await.unwrap().status(), 404);
    ///     client.close().await;
    /// });
    /// ```
    ///
    /// # Panics
    /// On a bad prefix, or one an earlier sub-application's prefix covers (it could never
    /// be reached); [`try_add_subapp`](Self::try_add_subapp) returns these errors instead.
    pub fn add_subapp(&mut self, prefix: &str, subapp: Application) -> &mut Application {
        if let Err(e) = self.try_add_subapp(prefix, subapp) {
            panic!("cannot add sub-application at {prefix:?}: {e}");
        }
        self
    }

    /// [`add_subapp`](Self::add_subapp), returning what is wrong with the prefix instead of
    /// panicking ([`RouteError::InvalidPrefix`], [`RouteError::ShadowedPrefix`]).
    pub fn try_add_subapp(
        &mut self,
        prefix: &str,
        mut subapp: Application,
    ) -> Result<(), RouteError> {
        let prefix = Prefix::parse(prefix)?;
        if let Some(earlier) = self
            .subapps
            .iter()
            .find(|m| m.prefix.covers_prefix(&prefix))
        {
            return Err(RouteError::ShadowedPrefix {
                prefix: prefix.as_str().into(),
                by: earlier.prefix.as_str().into(),
            });
        }
        subapp.add_prefix(&prefix)?;
        let index = self.subapps.len();
        self.subapps.push(Mount {
            prefix,
            position: self.router.resource_count(),
            app: subapp,
        });
        self.on_startup.push(HookEntry::Subapp(index));
        self.on_shutdown.push(HookEntry::Subapp(index));
        self.on_cleanup.push(HookEntry::Subapp(index));
        Ok(())
    }

    /// Puts `prefix` in front of every route of this application and of the applications
    /// mounted on it.
    fn add_prefix(&mut self, prefix: &Prefix) -> Result<(), RouteError> {
        self.router.add_prefix(prefix)?;
        for mount in &mut self.subapps {
            mount.prefix = mount.prefix.under(prefix);
            mount.app.add_prefix(prefix)?;
        }
        Ok(())
    }

    /// Freezes the application for serving.
    pub(crate) fn freeze(self) -> App {
        self.freeze_under(Weak::new(), &[])
    }

    /// Freezes an application whose parents' middlewares are `inherited`.
    fn freeze_under(self, parent: Weak<AppInner>, inherited: &[Rc<dyn Middleware>]) -> App {
        let own_from = inherited.len();
        let chain: Rc<[Rc<dyn Middleware>]> =
            inherited.iter().cloned().chain(self.middlewares).collect();
        App(Rc::new_cyclic(|me| {
            let subapps: Box<[Mount<App>]> = self
                .subapps
                .into_iter()
                .map(|m| Mount {
                    prefix: m.prefix,
                    position: m.position,
                    app: m.app.freeze_under(me.clone(), &chain),
                })
                .collect();
            let body_limit = subapps
                .iter()
                .map(|m| m.app.0.body_limit)
                .fold(self.client_max_size, u64::max);
            AppInner {
                router: self.router,
                chain,
                own_from,
                state: RefCell::new(self.state),
                on_startup: self.on_startup,
                on_shutdown: self.on_shutdown,
                on_cleanup: self.on_cleanup,
                client_max_size: self.client_max_size,
                body_limit,
                subapps,
                parent,
            }
        }))
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("router", &self.router)
            .field("middlewares", &self.middlewares.len())
            .field("client_max_size", &self.client_max_size)
            .field(
                "subapps",
                &self
                    .subapps
                    .iter()
                    .map(|m| m.prefix.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

struct AppInner {
    router: Router,
    /// The middlewares of the applications above this one, outermost first, then its own:
    /// what a request this application answers runs through.
    chain: Rc<[Rc<dyn Middleware>]>,
    /// Where this application's own middlewares start in `chain`.
    own_from: usize,
    state: RefCell<HashMap<TypeId, Rc<dyn Any>>>,
    on_startup: Vec<HookEntry>,
    on_shutdown: Vec<HookEntry>,
    on_cleanup: Vec<HookEntry>,
    client_max_size: u64,
    /// The largest `client_max_size` here and below: the protocol refuses a declared body
    /// length above it before routing, when it cannot know which application will answer.
    body_limit: u64,
    subapps: Box<[Mount<App>]>,
    /// Empty for the top-level application.
    parent: Weak<AppInner>,
}

/// A running application: what hooks receive and `Request::app` returns. Cloning it is
/// cheap (a reference count).
#[derive(Clone)]
pub struct App(Rc<AppInner>);

impl App {
    /// The shared state of type `T`, if it was set on this application.
    pub fn state<T: 'static>(&self) -> Option<Rc<T>> {
        let any = self.0.state.borrow().get(&TypeId::of::<T>())?.clone();
        any.downcast::<T>().ok()
    }

    /// The state of type `T` of this application or, failing that, of the nearest
    /// application above it that has one (aiohttp's `config_dict` lookup). For a top-level
    /// application it is [`state`](Self::state).
    pub fn config<T: 'static>(&self) -> Option<Rc<T>> {
        if let Some(found) = self.state::<T>() {
            return Some(found);
        }
        let mut parent = self.0.parent.upgrade();
        while let Some(app) = parent {
            let app = App(app);
            if let Some(found) = app.state::<T>() {
                return Some(found);
            }
            parent = app.0.parent.upgrade();
        }
        None
    }

    /// The application this one is mounted on, if it is a sub-application (and the parent
    /// is still alive: a handle kept past the server's life loses it).
    pub fn parent(&self) -> Option<App> {
        self.0.parent.upgrade().map(App)
    }

    /// Sets shared state of type `T` (for `on_startup` hooks that create resources).
    pub fn set_state<T: 'static>(&self, value: T) {
        self.0
            .state
            .borrow_mut()
            .insert(TypeId::of::<T>(), Rc::new(value));
    }

    /// The largest accepted request body, in bytes.
    pub fn client_max_size(&self) -> u64 {
        self.0.client_max_size
    }

    /// The declared body length above which a request is refused before routing: the
    /// largest `client_max_size` of this application and its sub-applications.
    pub(crate) fn body_limit(&self) -> u64 {
        self.0.body_limit
    }

    /// The path of the route named `name` with `params` filled in (percent-encoded). For a
    /// sub-application the path includes its prefix.
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.0.router.url_for(name, params).map_err(Error::from)
    }

    /// Routes `req` and runs the middleware chain and the handler.
    pub(crate) fn handle(&self, mut req: Request) -> LocalBoxFuture<Response> {
        if !self.0.subapps.is_empty() {
            return self.handle_mounted(req);
        }
        let (handler, match_info) = self.0.router.resolve(req.method(), req.raw_path_only());
        req.set_match_info(match_info);
        if self.0.chain.is_empty() {
            return handler.call(req);
        }
        let next = Next {
            chain: self.0.chain.clone(),
            index: 0,
            handler,
            matched: None,
        };
        Box::pin(next.run(req))
    }

    /// [`handle`](Self::handle) for an application with sub-applications.
    fn handle_mounted(&self, mut req: Request) -> LocalBoxFuture<Response> {
        let (app, handler, mut match_info) = self.route(req.method(), req.raw_path_only());
        let nested = !Rc::ptr_eq(&app.0, &self.0);
        if nested {
            match_info.set_app(app.clone());
        }
        req.set_match_info(match_info);
        if app.0.chain.is_empty() {
            if nested {
                req.set_app(app);
            }
            return handler.call(req);
        }
        let next = Next {
            chain: app.0.chain.clone(),
            index: 0,
            handler,
            matched: nested.then_some(app),
        };
        Box::pin(next.run(req))
    }

    /// The application that answers a request, its handler and match info: down through the
    /// first sub-application whose prefix covers the path, unless a resource the parent
    /// registered before mounting it accepts the request.
    fn route(&self, method: &Method, raw_path: &str) -> (App, Rc<dyn Handler>, MatchInfo) {
        let path = normalize_path(raw_path);
        let mut app = self;
        loop {
            let inner = &*app.0;
            let Some(mount) = inner.subapps.iter().find(|m| m.prefix.covers(&path)) else {
                let (handler, match_info) = inner.router.resolve(method, raw_path);
                return (app.clone(), handler, match_info);
            };
            if let Some((handler, match_info)) =
                inner
                    .router
                    .resolve_before(method, raw_path, mount.position)
            {
                return (app.clone(), handler, match_info);
            }
            app = &mount.app;
        }
    }

    /// The application that added the middleware at `index` of this application's chain:
    /// this one or one above it.
    pub(crate) fn owner_of(&self, index: usize) -> App {
        let mut app = self.clone();
        while index < app.0.own_from {
            match app.0.parent.upgrade() {
                Some(parent) => app = App(parent),
                None => break,
            }
        }
        app
    }

    fn hooks(&self, signal: Signal) -> &[HookEntry] {
        match signal {
            Signal::Startup => &self.0.on_startup,
            Signal::Shutdown => &self.0.on_shutdown,
            Signal::Cleanup => &self.0.on_cleanup,
        }
    }

    /// Runs a signal's hooks, sub-applications' included (boxed: it recurses into them).
    /// `on_startup` stops at the first failure, which aborts the start. The others run every
    /// hook even when one fails: nobody can act on a shutdown or cleanup error, and stopping
    /// at the first one would silently skip the rest (a database pool never closed because
    /// a cache flush failed before it). Each failure is logged.
    fn send(&self, signal: Signal) -> LocalBoxFuture<Result<(), Error>> {
        let app = self.clone();
        Box::pin(async move {
            for entry in app.hooks(signal) {
                let result = match entry {
                    HookEntry::Own(hook) => {
                        let result = hook(app.clone()).await;
                        if let Err(e) = &result {
                            tracing::error!(error = %e, "{} hook failed", signal.name());
                        }
                        result
                    }
                    HookEntry::Subapp(index) => app.0.subapps[*index].app.send(signal).await,
                };
                if result.is_err() && signal == Signal::Startup {
                    return result;
                }
            }
            Ok(())
        })
    }

    pub(crate) async fn startup(&self) -> Result<(), Error> {
        self.send(Signal::Startup).await
    }

    pub(crate) async fn shutdown(&self) {
        let _ = self.send(Signal::Shutdown).await;
    }

    pub(crate) async fn cleanup(&self) {
        let _ = self.send(Signal::Cleanup).await;
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("router", &self.0.router)
            .field(
                "subapps",
                &self
                    .0
                    .subapps
                    .iter()
                    .map(|m| m.prefix.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
