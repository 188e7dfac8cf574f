//! Generators used as coroutines: Python's `n = yield r` / `c.send(n)` (seeds 000–002).
//!
//! A [`Generator`] runs a closure on its own stack. Inside, [`Yielder::suspend`] hands a value
//! out and pauses until the next [`Generator::send`], whose value it returns; that is Python's
//! `n = yield r`. The closure's return value ends the generator, as `return` does in Python.
//!
//! ```
//! use kettle::generator::{Generator, GeneratorState};
//!
//! // Seed 001's consumer: gets n, answers "200 OK"; None stops it.
//! let mut consumer = Generator::new(|co, _first: Option<u32>| {
//!     let mut r = "";
//!     loop {
//!         let Some(n) = co.suspend(r) else { return };
//!         println!("[CONSUMER] Consuming {n}...");
//!         r = "200 OK";
//!     }
//! });
//! consumer.send(None).unwrap(); // start it, as c.send(None) does
//! for n in 1..=2 {
//!     assert_eq!(consumer.send(Some(n)).unwrap(), GeneratorState::Yielded("200 OK"));
//! }
//! consumer.close(); // unwinds the consumer's stack, like Python's GeneratorExit
//! assert!(consumer.send(Some(3)).unwrap_err().is_stop_iteration());
//! ```
//!
//! Unlike Python, the first `send` may carry a value: the closure receives it as its second
//! argument (Python demands `send(None)` first). A generator that takes `()` is an
//! [`Iterator`] over what it yields. Generators are stackful, so `suspend` works from any
//! function the closure calls, and [`Yielder::yield_from`] delegates to a sub-generator
//! (`yield from`). A generator belongs to the thread that made it.

use std::fmt;

use corosensei::{Coroutine, CoroutineResult};

use crate::coro::stack::PooledStack;
use crate::coro::DEFAULT_STACK_SIZE;
use crate::error::{Error, ErrorKind, Result};

/// What [`Generator::send`] got back: a yielded value, or the closure's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneratorState<Y, R> {
    /// The generator suspended itself with this value (Python's `yield value`).
    Yielded(Y),
    /// The generator's closure returned this value; the generator is finished.
    Complete(R),
}

/// A coroutine that receives `S` values, yields `Y` values and finally returns `R`.
///
/// Dropping an unfinished generator unwinds its stack (its destructors run), as
/// [`close`](Self::close) does.
pub struct Generator<S: 'static, Y: 'static, R: 'static = ()> {
    coroutine: Coroutine<S, Y, R, PooledStack>,
    /// Whether `send` has resumed it. corosensei's `started()` also turns true when an
    /// unstarted coroutine is closed (it counts as finished), so it is not the answer here.
    started: bool,
}

/// The handle a generator's closure uses to yield (see [`Generator`]). It lives on the
/// generator's stack for as long as the generator runs.
pub struct Yielder<'a, S, Y> {
    inner: &'a corosensei::Yielder<S, Y>,
}

impl<S, Y> Yielder<'_, S, Y> {
    /// Hands `value` to the caller of [`Generator::send`] and pauses; returns the value of the
    /// next `send` (Python's `received = yield value`).
    ///
    /// When the generator is closed or dropped while paused here, this call unwinds instead of
    /// returning, so the generator's destructors run.
    pub fn suspend(&self, value: Y) -> S {
        self.inner.suspend(value)
    }

    /// Runs `sub` to completion as part of this generator (Python's `result = yield from sub`):
    /// what `sub` yields is yielded from here, what is sent here is sent on to `sub`, and
    /// `sub`'s return value is returned. `first` starts `sub` (Python starts it with `None`).
    ///
    /// ```
    /// use kettle::generator::Generator;
    ///
    /// let mut outer = Generator::new(|co, ()| {
    ///     let inner = Generator::new(|co, ()| {
    ///         co.suspend(1);
    ///         co.suspend(2);
    ///         "inner done"
    ///     });
    ///     let r = co.yield_from(inner, ());
    ///     co.suspend(3);
    ///     r
    /// });
    /// assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `sub` has already finished (there is no return value left to give).
    pub fn yield_from<R2>(&self, mut sub: Generator<S, Y, R2>, first: S) -> R2 {
        assert!(
            !sub.is_finished(),
            "Yielder::yield_from: the sub-generator has already finished"
        );
        let mut input = first;
        loop {
            match sub.coroutine.resume(input) {
                CoroutineResult::Yield(y) => input = self.suspend(y),
                CoroutineResult::Return(r) => return r,
            }
        }
    }
}

impl<S, Y, R> Generator<S, Y, R> {
    /// A generator that runs `body` on a stack of [`DEFAULT_STACK_SIZE`] the first time it is
    /// sent a value; `body` receives that value as its second argument.
    ///
    /// # Panics
    ///
    /// If no stack can be had (out of memory or memory mappings); [`try_with_stack_size`]
    /// returns that as an error instead.
    ///
    /// [`DEFAULT_STACK_SIZE`]: crate::green::DEFAULT_STACK_SIZE
    /// [`try_with_stack_size`]: Self::try_with_stack_size
    pub fn new<F>(body: F) -> Generator<S, Y, R>
    where
        F: FnOnce(&Yielder<'_, S, Y>, S) -> R + 'static,
    {
        Self::with_stack_size(DEFAULT_STACK_SIZE, body)
    }

    /// [`new`](Self::new) with a stack of at least `size` bytes.
    pub fn with_stack_size<F>(size: usize, body: F) -> Generator<S, Y, R>
    where
        F: FnOnce(&Yielder<'_, S, Y>, S) -> R + 'static,
    {
        match Self::try_with_stack_size(size, body) {
            Ok(g) => g,
            Err(e) => panic!("kettle::generator::Generator: {e}"),
        }
    }

    /// [`with_stack_size`](Self::with_stack_size), returning a failure to get a stack.
    pub fn try_with_stack_size<F>(size: usize, body: F) -> std::io::Result<Generator<S, Y, R>>
    where
        F: FnOnce(&Yielder<'_, S, Y>, S) -> R + 'static,
    {
        let stack = PooledStack::new(size)?;
        let coroutine = Coroutine::with_stack(stack, move |yielder, first| {
            body(&Yielder { inner: yielder }, first)
        });
        Ok(Generator {
            coroutine,
            started: false,
        })
    }

    /// Resumes the generator with `value` and runs it until it yields or returns.
    ///
    /// Sending to a finished generator is a [`StopIteration`](ErrorKind::StopIteration)
    /// error. A panic inside the generator continues in the caller of `send`, and the
    /// generator is finished afterwards.
    #[inline]
    pub fn send(&mut self, value: S) -> Result<GeneratorState<Y, R>> {
        if self.coroutine.done() {
            return Err(Error::with_message(
                ErrorKind::StopIteration,
                "the generator has finished",
            ));
        }
        self.started = true;
        Ok(match self.coroutine.resume(value) {
            CoroutineResult::Yield(y) => GeneratorState::Yielded(y),
            CoroutineResult::Return(r) => GeneratorState::Complete(r),
        })
    }

    /// Finishes the generator now: if it is paused, its stack unwinds from the `suspend` it is
    /// paused in, so its destructors run (Python's `close()` raising `GeneratorExit`). Does
    /// nothing to a finished generator.
    pub fn close(&mut self) {
        self.coroutine.force_unwind();
    }

    /// Whether the generator has been sent its first value.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Whether the generator has returned, panicked or been closed.
    pub fn is_finished(&self) -> bool {
        self.coroutine.done()
    }
}

/// Python's `next(gen)` / `for x in gen`: yielded values until the generator returns (its
/// return value is dropped; use [`Generator::send`] to see it).
impl<Y, R> Iterator for Generator<(), Y, R> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        match self.send(()) {
            Ok(GeneratorState::Yielded(y)) => Some(y),
            Ok(GeneratorState::Complete(_)) | Err(_) => None,
        }
    }
}

impl<S, Y, R> fmt::Debug for Generator<S, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_finished() {
            "finished"
        } else if self.is_started() {
            "suspended"
        } else {
            "created"
        };
        f.debug_struct("Generator").field("state", &state).finish()
    }
}
