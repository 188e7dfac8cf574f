//! greenlet: explicit switches between coroutines of one thread (seed 002).
//!
//! A [`Greenlet`] runs a function on its own stack. [`Greenlet::switch`] transfers control
//! (and a value) to any greenlet of the thread, which continues where it last switched away;
//! the value it eventually gets back is whatever the next switch *to* the caller carries.
//! When a greenlet's function returns, control and the return value go to its parent (the
//! greenlet that was running when it was created; the thread's main greenlet by default).
//!
//! ```
//! use kettle::greenlet::{self, Greenlet};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! let log = Rc::new(RefCell::new(Vec::new()));
//! let l = log.clone();
//! let main = greenlet::getcurrent().cast::<i32>();
//! let gr = Greenlet::new(move |x: i32| {
//!     l.borrow_mut().push(x);
//!     let y = main.switch(x + 1).unwrap(); // back to main, with 2
//!     l.borrow_mut().push(y);
//!     y * 10                               // returns to the parent (main)
//! });
//! assert_eq!(gr.switch(1).unwrap(), 2);
//! assert_eq!(gr.switch(3).unwrap(), 30);
//! assert!(gr.dead());
//! assert!(gr.switch(4).is_err()); // a finished greenlet cannot be switched to
//! assert_eq!(*log.borrow(), [1, 3]);
//! ```
//!
//! # Values and types
//!
//! Python's switches carry any object. Here a `Greenlet<V>` is switched to with a `V`, and
//! `switch` returns the `V` the caller is switched back with; a greenlet switched back with a
//! value of another type gets an [`InvalidState`](crate::ErrorKind::InvalidState) error, and
//! starting a greenlet with a value of another type than its function takes is refused with
//! one.
//!
//! # Dropping
//!
//! Dropping the last handle of a suspended greenlet unwinds its stack (its destructors run,
//! as Python raises `GreenletExit` in a collected greenlet) and gives the stack back to the
//! pool. Handles stored in each other's closures form a cycle that keeps both alive: break it.
//!
//! # Panics
//!
//! A panic in a greenlet finishes it and is raised again in its parent, at the `switch` that
//! the parent is suspended in (Python raises the exception in the parent the same way).
//!
//! # Greenlets and green threads
//!
//! Greenlets switch synchronously and never wait on the event loop: calling a
//! [`green`](crate::green) function from a greenlet's stack panics with a clear message. A
//! green thread may create and switch greenlets; it is then their main greenlet.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::coro::stack::PooledStack;
use crate::coro::suspend::Suspender;
use crate::coro::DEFAULT_STACK_SIZE;
use crate::error::{Error, Result};

type Coro = Coroutine<(), Rc<Inner>, (), PooledStack>;

/// One greenlet; the main greenlet of a thread has no coroutine.
struct Inner {
    id: u64,
    /// `None` for the main greenlet, and once the function has returned.
    coroutine: RefCell<Option<Coro>>,
    /// Where control goes when the function returns (`None`: the main greenlet).
    parent: Option<Rc<Inner>>,
    started: Cell<bool>,
    finished: Cell<bool>,
    /// The type its function takes: an unstarted greenlet can only be switched to with that.
    takes: TypeId,
    /// Its yielder, published when it starts; valid while it is not finished.
    yielder: Cell<*const Yielder<(), Rc<Inner>>>,
    /// Its stack, `[bottom, top)`: a switch from another stack (a generator inside it) is
    /// refused rather than suspending the wrong coroutine.
    bottom: usize,
    top: usize,
    /// The value the next switch to it carries: an `Option<V>` allocated on the first switch
    /// and reused by every later one of the same type, so switching does not allocate.
    inbox: RefCell<Option<Box<dyn Any>>>,
    /// A panic of a finished child, to raise again when it resumes here.
    raise: RefCell<Option<Box<dyn Any + Send>>>,
}

impl Inner {
    fn is_main(&self) -> bool {
        self.id == 0
    }
}

thread_local! {
    /// The running greenlet, `None` while the main greenlet runs.
    static CURRENT: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
    static MAIN: Rc<Inner> = Rc::new(Inner {
        id: 0,
        coroutine: RefCell::new(None),
        parent: None,
        started: Cell::new(true),
        finished: Cell::new(false),
        takes: TypeId::of::<()>(),
        yielder: Cell::new(std::ptr::null()),
        bottom: 0,
        top: 0,
        inbox: RefCell::new(None),
        raise: RefCell::new(None),
    });
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

fn current_inner() -> Rc<Inner> {
    CURRENT
        .with(|c| c.borrow().clone())
        .unwrap_or_else(|| MAIN.with(Rc::clone))
}

/// A coroutine switched to explicitly; `V` is the type of the values its switches carry.
pub struct Greenlet<V: 'static = ()> {
    inner: Rc<Inner>,
    _values: PhantomData<fn(V) -> V>,
}

impl<V: 'static> Clone for Greenlet<V> {
    fn clone(&self) -> Self {
        Greenlet {
            inner: self.inner.clone(),
            _values: PhantomData,
        }
    }
}

/// The running greenlet: the thread's main greenlet when no other runs (greenlet's
/// `getcurrent()`). Use [`Greenlet::cast`] to switch it with values other than `()`.
pub fn getcurrent() -> Greenlet<()> {
    Greenlet {
        inner: current_inner(),
        _values: PhantomData,
    }
}

impl<V: 'static> Greenlet<V> {
    /// A greenlet that will run `body` with the value of the first switch to it. Its parent is
    /// the greenlet running now. It gets a [`DEFAULT_STACK_SIZE`] stack.
    ///
    /// [`DEFAULT_STACK_SIZE`]: crate::green::DEFAULT_STACK_SIZE
    ///
    /// # Panics
    ///
    /// If no stack can be had; [`try_with_stack_size`](Self::try_with_stack_size) returns
    /// that as an error.
    pub fn new<F>(body: F) -> Greenlet<V>
    where
        F: FnOnce(V) -> V + 'static,
    {
        Self::with_stack_size(DEFAULT_STACK_SIZE, body)
    }

    /// [`new`](Self::new) with a stack of at least `size` bytes.
    pub fn with_stack_size<F>(size: usize, body: F) -> Greenlet<V>
    where
        F: FnOnce(V) -> V + 'static,
    {
        match Self::try_with_stack_size(size, body) {
            Ok(g) => g,
            Err(e) => panic!("kettle::greenlet::Greenlet: {e}"),
        }
    }

    /// [`with_stack_size`](Self::with_stack_size), returning a failure to get a stack.
    pub fn try_with_stack_size<F>(size: usize, body: F) -> std::io::Result<Greenlet<V>>
    where
        F: FnOnce(V) -> V + 'static,
    {
        let stack = PooledStack::new(size)?;
        let (bottom, top) = (stack.bottom(), stack.top());
        let coroutine: Coro = Coroutine::with_stack(stack, move |yielder, ()| {
            // No handle to ourselves may stay on our own stack: it would keep the greenlet
            // alive forever once suspended (a cycle through the coroutine).
            // Only a weak one, to tell below whether it was dropped.
            let me = {
                let me = current_inner();
                me.yielder.set(yielder);
                Rc::downgrade(&me)
            };
            // A statement of its own: a temporary handle in the `match` below would live, on
            // our own stack, for as long as the body runs.
            let first = receive::<V>(&current_inner());
            let outcome = match first {
                Ok(first) => catch_unwind(AssertUnwindSafe(move || body(first))),
                Err(e) => Err(Box::new(e) as Box<dyn Any + Send>),
            };
            if me.strong_count() == 0 {
                // Its last handle was dropped while it was suspended: this is corosensei's
                // forced unwind of the stack, not a result or a panic for an ancestor.
                if let Err(payload) = outcome {
                    resume_unwind(payload);
                }
                return;
            }
            // The value (or panic) goes where the trampoline sends control next.
            let heir = live_ancestor(&current_inner());
            match outcome {
                Ok(value) => deliver(&heir, value),
                Err(payload) => *heir.raise.borrow_mut() = Some(payload),
            }
        });
        let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
        let parent = Some(current_inner());
        Ok(Greenlet {
            inner: Rc::new(Inner {
                id,
                coroutine: RefCell::new(Some(coroutine)),
                parent,
                started: Cell::new(false),
                finished: Cell::new(false),
                takes: TypeId::of::<V>(),
                yielder: Cell::new(std::ptr::null()),
                bottom,
                top,
                inbox: RefCell::new(None),
                raise: RefCell::new(None),
            }),
            _values: PhantomData,
        })
    }

    /// Switches to this greenlet, handing it `value`: it starts (receiving `value` as its
    /// function's argument) or continues from its own last `switch` (which returns `value`).
    /// Returns the value that the calling greenlet is later switched back with, or its child's
    /// return value when a child finishes.
    ///
    /// Switching to the running greenlet returns `value` at once. Switching to a finished
    /// greenlet is an [`InvalidState`](crate::ErrorKind::InvalidState) error.
    ///
    /// # Panics
    ///
    /// Raises again a panic of a child greenlet that finished by panicking while this one was
    /// its parent. Panics if called from a generator running inside a greenlet.
    pub fn switch(&self, value: V) -> Result<V> {
        let target = self.inner.clone();
        if target.finished.get() {
            return Err(Error::invalid_state(format!(
                "cannot switch to greenlet {}: it has finished",
                target.id
            )));
        }
        if !target.started.get() && target.takes != TypeId::of::<V>() {
            // Refused before switching: the greenlet stays unstarted, and the caller gets the
            // error rather than the greenlet failing and raising it in its parent.
            return Err(Error::invalid_state(format!(
                "cannot start greenlet {} with a value of another type than its function takes",
                target.id
            )));
        }
        let me = current_inner();
        if Rc::ptr_eq(&me, &target) {
            return Ok(value);
        }
        deliver(&target, value);
        if me.is_main() {
            trampoline(target);
        } else {
            let suspender = Suspender::new(me.yielder.get(), me.bottom, me.top);
            // Holding `me` across the suspension would keep this greenlet alive through its
            // own stack; dropped, a greenlet nobody refers to is unwound and freed.
            drop(me);
            suspender.suspend("kettle::greenlet::Greenlet::switch", target);
        }
        // Resumed: whoever switched here left the value in our inbox.
        receive::<V>(&current_inner())
    }

    /// The same greenlet, switched with values of type `W`.
    pub fn cast<W: 'static>(&self) -> Greenlet<W> {
        Greenlet {
            inner: self.inner.clone(),
            _values: PhantomData,
        }
    }

    /// Whether its function has returned (or panicked).
    pub fn dead(&self) -> bool {
        self.inner.finished.get()
    }

    /// Whether it has been switched to at least once (the main greenlet always has).
    pub fn started(&self) -> bool {
        self.inner.started.get()
    }

    /// Whether this is the thread's main greenlet.
    pub fn is_main(&self) -> bool {
        self.inner.is_main()
    }

    /// The greenlet control goes to when this one's function returns.
    pub fn parent(&self) -> Option<Greenlet<V>> {
        self.inner.parent.as_ref().map(|p| Greenlet {
            inner: p.clone(),
            _values: PhantomData,
        })
    }

    /// A number identifying it on its thread (0 for the main greenlet).
    pub fn id(&self) -> u64 {
        self.inner.id
    }
}

impl<V: 'static> PartialEq for Greenlet<V> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<V: 'static> fmt::Debug for Greenlet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.inner.is_main() {
            "main"
        } else if self.dead() {
            "dead"
        } else if self.started() {
            "started"
        } else {
            "not started"
        };
        write!(f, "<greenlet {} ({state})>", self.inner.id)
    }
}

/// Leaves `value` in `to`'s inbox for its next resume.
fn deliver<V: 'static>(to: &Inner, value: V) {
    let mut inbox = to.inbox.borrow_mut();
    match inbox.as_mut().and_then(|b| b.downcast_mut::<Option<V>>()) {
        Some(slot) => *slot = Some(value),
        None => *inbox = Some(Box::new(Some(value))),
    }
}

/// Takes the value a switch delivered to `me` (the running greenlet), or raises the panic of
/// a child that finished by panicking.
fn receive<V: 'static>(me: &Inner) -> Result<V> {
    if let Some(payload) = me.raise.borrow_mut().take() {
        resume_unwind(payload);
    }
    let mut inbox = me.inbox.borrow_mut();
    if let Some(value) = inbox
        .as_mut()
        .and_then(|b| b.downcast_mut::<Option<V>>())
        .and_then(Option::take)
    {
        return Ok(value);
    }
    // A value of another type (or none): drop it, so it cannot surface at a later switch.
    *inbox = None;
    Err(Error::invalid_state(
        "switched to with a value of another type than the greenlet takes",
    ))
}

/// Where control and the return value of `finished` go: its first unfinished ancestor, or
/// the main greenlet.
fn live_ancestor(finished: &Inner) -> Rc<Inner> {
    let mut parent = finished.parent.clone();
    while let Some(p) = parent {
        if !p.finished.get() {
            return p;
        }
        parent = p.parent.clone();
    }
    MAIN.with(Rc::clone)
}

/// Runs greenlets from the main greenlet until control comes back to it. Every switch between
/// greenlets goes through here: a greenlet suspends to the trampoline naming its target, and
/// the trampoline resumes the target. A finished greenlet hands over to its first unfinished
/// ancestor.
fn trampoline(mut next: Rc<Inner>) {
    loop {
        CURRENT.with(|c| *c.borrow_mut() = Some(next.clone()));
        next.started.set(true);
        let mut coroutine = next
            .coroutine
            .borrow_mut()
            .take()
            .expect("an unfinished greenlet has its coroutine");
        let result = coroutine.resume(());
        CURRENT.with(|c| *c.borrow_mut() = None);
        match result {
            CoroutineResult::Yield(target) => {
                *next.coroutine.borrow_mut() = Some(coroutine);
                if target.is_main() {
                    return;
                }
                next = target;
            }
            CoroutineResult::Return(()) => {
                // The stack goes back to the pool now; the value is in the heir's inbox.
                drop(coroutine);
                next.finished.set(true);
                let heir = live_ancestor(&next);
                if heir.is_main() {
                    return;
                }
                next = heir;
            }
        }
    }
}
