//! `gather`: run awaitables concurrently, results in argument order (asyncio's `gather`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::join::Join;

/// Runs every future concurrently and resolves to their outputs in argument order, failing
/// fast: the first `Err` (in completion order) is returned at once and the other futures are
/// dropped (asyncio's `gather`).
///
/// Futures are polled in place, so they may borrow. Pass [`Task`](crate::Task)s to get
/// asyncio's exact behaviour, where the other awaitables keep running after a failure: dropping
/// a `Task` handle detaches the task rather than cancelling it. For mixed output types use the
/// [`gather!`](crate::gather!) macro.
///
/// ```
/// kettle::run(async {
///     let tasks: Vec<_> = (1..=3).map(|i| kettle::spawn(async move { i * 10 })).collect();
///     assert_eq!(kettle::gather(tasks).await.unwrap(), [10, 20, 30]);
///
///     let failing = vec![
///         Box::pin(async { Ok(1) }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<i32, &str>>>>,
///         Box::pin(async { Err("boom") }),
///     ];
///     assert_eq!(kettle::gather(failing).await, Err("boom"));
/// });
/// ```
pub fn gather<I, F, T, E>(futures: I) -> Gather<F>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>>,
{
    Gather {
        join: Join::new(futures),
    }
}

/// Like [`gather()`] but never fails fast: resolves to every output, errors included, in
/// argument order (asyncio's `gather(..., return_exceptions=True)`). Works for any output
/// type.
///
/// ```
/// kettle::run(async {
///     let a = kettle::spawn(async { 1 });
///     let b = kettle::spawn(async { panic!("oops") });
///     let out = kettle::gather_results(vec![a, b]).await;
///     assert_eq!(*out[0].as_ref().unwrap(), 1);
///     assert!(out[1].as_ref().unwrap_err().is_panic());
/// });
/// ```
pub fn gather_results<I, F>(futures: I) -> GatherResults<F>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    GatherResults {
        join: Join::new(futures),
    }
}

/// The future returned by [`gather()`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<F: Future> {
    join: Join<F>,
}

impl<F, T, E> Future for Gather<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let join = &mut self.get_mut().join;
        loop {
            match join.poll_next_index(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(i)) => {
                    if join.output_mut(i).is_some_and(|r| r.is_err()) {
                        if let Some(Err(e)) = join.take(i) {
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                Poll::Ready(None) => {
                    let mut out = Vec::with_capacity(join.len());
                    for i in 0..join.len() {
                        match join.take(i) {
                            Some(Ok(v)) => out.push(v),
                            Some(Err(e)) => return Poll::Ready(Err(e)),
                            None => panic!("Gather polled after completion"),
                        }
                    }
                    return Poll::Ready(Ok(out));
                }
            }
        }
    }
}

/// The future returned by [`gather_results`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherResults<F: Future> {
    join: Join<F>,
}

impl<F: Future> Future for GatherResults<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let join = &mut self.get_mut().join;
        loop {
            match join.poll_next_index(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => {
                    let out = (0..join.len())
                        .map(|i| join.take(i).expect("GatherResults polled after completion"))
                        .collect();
                    return Poll::Ready(out);
                }
            }
        }
    }
}

/// Runs futures of different types concurrently; resolves to `Ok((a, b, ...))` in argument
/// order, or to the first `Err` (the other futures are then dropped). Every future's output
/// must be a `Result` with the same error type, as [`Task`](crate::Task)s' are.
///
/// ```
/// kettle::run(async {
///     let n = kettle::spawn(async { 6 });
///     let s = kettle::spawn(async { "six" });
///     let (n, s) = kettle::gather!(n, s).await.unwrap();
///     assert_eq!((n, s), (6, "six"));
/// });
/// ```
#[macro_export]
macro_rules! gather {
    ($($fut:expr),+ $(,)?) => {
        $crate::__gather_impl!(@fail_fast () () $($fut,)+)
    };
}

/// Like [`gather!`](crate::gather!) but never fails fast: resolves to the tuple of every output, errors
/// included (asyncio's `return_exceptions=True`). Outputs may be of any type.
///
/// ```
/// kettle::run(async {
///     let (a, b) = kettle::gather_results!(async { 1 }, async { "two" }).await;
///     assert_eq!((a, b), (1, "two"));
/// });
/// ```
#[macro_export]
macro_rules! gather_results {
    ($($fut:expr),+ $(,)?) => {
        $crate::__gather_impl!(@collect () () $($fut,)+)
    };
}

/// Implementation detail of `gather!` and `gather_results!`: first gives each future a list of
/// `_` placeholders as long as its position, so that the final arm can destructure the tuple of
/// futures to reach each one by position.
#[doc(hidden)]
#[macro_export]
macro_rules! __gather_impl {
    (@$mode:ident ($($count:tt)*) ($($acc:tt)*) $next:expr, $($rest:expr,)*) => {
        $crate::__gather_impl!(@$mode ($($count)* _) ($($acc)* (($($count)*) $next)) $($rest,)*)
    };
    (@fail_fast ($($count:tt)*) ($( (($($skip:tt)*) $fut:expr) )*)) => {
        async move {
            let mut futures = ( $( $crate::__private::MaybeDone::new($fut), )* );
            // `futures` lives in this async block's state, which is pinned once polled.
            let futures = &mut futures;
            ::std::future::poll_fn(move |cx| {
                let mut pending = false;
                $(
                    let ( $($skip,)* fut, .. ) = &mut *futures;
                    // SAFETY: `fut` is never moved: it stays in the pinned async block state.
                    let mut fut = unsafe { ::std::pin::Pin::new_unchecked(fut) };
                    if fut.as_mut().poll_done(cx) {
                        if fut.as_mut().output_mut().is_some_and(|r| r.is_err()) {
                            if let Some(::std::result::Result::Err(e)) = fut.as_mut().take_output() {
                                return ::std::task::Poll::Ready(::std::result::Result::Err(e));
                            }
                        }
                    } else {
                        pending = true;
                    }
                )*
                if pending {
                    return ::std::task::Poll::Pending;
                }
                ::std::task::Poll::Ready(::std::result::Result::Ok(( $({
                    let ( $($skip,)* fut, .. ) = &mut *futures;
                    // SAFETY: as above.
                    let fut = unsafe { ::std::pin::Pin::new_unchecked(fut) };
                    match fut.take_output() {
                        ::std::option::Option::Some(::std::result::Result::Ok(v)) => v,
                        _ => unreachable!("gather! output taken twice"),
                    }
                }, )* )))
            }).await
        }
    };
    (@collect ($($count:tt)*) ($( (($($skip:tt)*) $fut:expr) )*)) => {
        async move {
            let mut futures = ( $( $crate::__private::MaybeDone::new($fut), )* );
            // `futures` lives in this async block's state, which is pinned once polled.
            let futures = &mut futures;
            ::std::future::poll_fn(move |cx| {
                let mut pending = false;
                $(
                    let ( $($skip,)* fut, .. ) = &mut *futures;
                    // SAFETY: `fut` is never moved: it stays in the pinned async block state.
                    let fut = unsafe { ::std::pin::Pin::new_unchecked(fut) };
                    if !fut.poll_done(cx) {
                        pending = true;
                    }
                )*
                if pending {
                    return ::std::task::Poll::Pending;
                }
                ::std::task::Poll::Ready(( $({
                    let ( $($skip,)* fut, .. ) = &mut *futures;
                    // SAFETY: as above.
                    let fut = unsafe { ::std::pin::Pin::new_unchecked(fut) };
                    fut.take_output().expect("gather_results! output taken twice")
                }, )* ))
            }).await
        }
    };
}
