//! `Application` (aiohttp's `web.Application`): the router, middlewares, shared state,
//! lifecycle hooks and the request body limit. Once served it is frozen into an [`App`], the
//! cheap handle that requests and hooks see.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use super::error::Error;
use super::handler::{LocalBoxFuture, Middleware, Next};
use super::request::Request;
use super::response::Response;
use super::router::Router;

/// aiohttp's default `client_max_size`: 1 MiB.
pub const DEFAULT_CLIENT_MAX_SIZE: u64 = 1024 * 1024;

type Hook = Rc<dyn Fn(App) -> LocalBoxFuture<Result<(), Error>>>;

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
    on_startup: Vec<Hook>,
    on_shutdown: Vec<Hook>,
    on_cleanup: Vec<Hook>,
    client_max_size: u64,
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
    /// as `req.state::<T>()`. Use a `Cell`/`RefCell` inside `T` for mutable state: one
    /// application runs on one thread.
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
            .push(Rc::new(move |app| Box::pin(hook(app))));
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
            .push(Rc::new(move |app| Box::pin(hook(app))));
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
            .push(Rc::new(move |app| Box::pin(hook(app))));
        self
    }

    /// Freezes the application for serving.
    pub(crate) fn freeze(self) -> App {
        App(Rc::new(AppInner {
            router: self.router,
            middlewares: self.middlewares.into(),
            state: RefCell::new(self.state),
            on_startup: self.on_startup,
            on_shutdown: self.on_shutdown,
            on_cleanup: self.on_cleanup,
            client_max_size: self.client_max_size,
        }))
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("router", &self.router)
            .field("middlewares", &self.middlewares.len())
            .field("client_max_size", &self.client_max_size)
            .finish_non_exhaustive()
    }
}

struct AppInner {
    router: Router,
    middlewares: Rc<[Rc<dyn Middleware>]>,
    state: RefCell<HashMap<TypeId, Rc<dyn Any>>>,
    on_startup: Vec<Hook>,
    on_shutdown: Vec<Hook>,
    on_cleanup: Vec<Hook>,
    client_max_size: u64,
}

/// A running application: what hooks receive and `Request::app` returns. Cloning it is
/// cheap (a reference count).
#[derive(Clone)]
pub struct App(Rc<AppInner>);

impl App {
    /// The shared state of type `T`, if it was set.
    pub fn state<T: 'static>(&self) -> Option<Rc<T>> {
        let any = self.0.state.borrow().get(&TypeId::of::<T>())?.clone();
        any.downcast::<T>().ok()
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

    /// The path of the route named `name` with `params` filled in (percent-encoded).
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.0.router.url_for(name, params).map_err(Error::from)
    }

    /// Routes `req` and runs the middleware chain and the handler.
    pub(crate) fn handle(&self, mut req: Request) -> LocalBoxFuture<Response> {
        let (handler, match_info) = self.0.router.resolve(req.method(), req.raw_path_only());
        req.set_match_info(match_info);
        if self.0.middlewares.is_empty() {
            return handler.call(req);
        }
        let next = Next {
            chain: self.0.middlewares.clone(),
            index: 0,
            handler,
        };
        Box::pin(next.run(req))
    }

    async fn run_hooks(&self, hooks: &[Hook], what: &str) -> Result<(), Error> {
        for hook in hooks {
            if let Err(e) = hook(self.clone()).await {
                tracing::error!(error = %e, "{what} hook failed");
                return Err(e);
            }
        }
        Ok(())
    }

    pub(crate) async fn startup(&self) -> Result<(), Error> {
        self.run_hooks(&self.0.on_startup, "on_startup").await
    }

    /// Runs every hook even when one fails: nobody can act on a shutdown or cleanup error,
    /// and stopping at the first one would silently skip the rest (a database pool never
    /// closed because a cache flush failed before it). Each failure is logged.
    async fn run_all_hooks(&self, hooks: &[Hook], what: &str) {
        for hook in hooks {
            if let Err(e) = hook(self.clone()).await {
                tracing::error!(error = %e, "{what} hook failed");
            }
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.run_all_hooks(&self.0.on_shutdown, "on_shutdown").await;
    }

    pub(crate) async fn cleanup(&self) {
        self.run_all_hooks(&self.0.on_cleanup, "on_cleanup").await;
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("router", &self.0.router)
            .finish_non_exhaustive()
    }
}
