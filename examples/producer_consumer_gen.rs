//! Seeds 001/002: the producer/consumer dialogue with a generator as the consumer, exactly as
//! the seeds write it in Python (`n = yield r` / `c.send(n)` / `c.close()`).
//!
//! ```text
//! cargo run --example producer_consumer_gen
//! ```

use kettle::generator::{Generator, GeneratorState};

/// The seed's `consumer()`: yields its answer, receives the next number; `None` ends it.
fn consumer() -> Generator<Option<u32>, &'static str> {
    Generator::new(|co, _first| {
        let mut r = "";
        loop {
            let Some(n) = co.suspend(r) else {
                return; // `if not n: return`
            };
            println!("[CONSUMER] Consuming {n}...");
            r = "200 OK";
        }
    })
}

/// The seed's `produce(c)`.
fn produce(mut c: Generator<Option<u32>, &'static str>) {
    c.send(None).expect("a new generator starts"); // c.send(None): start the generator
    let mut n = 0;
    while n < 5 {
        n += 1;
        println!("[PRODUCER] Producing {n}...");
        // Switch to the consumer; it runs until its next `yield`.
        match c.send(Some(n)) {
            Ok(GeneratorState::Yielded(r)) => println!("[PRODUCER] Consumer return: {r}"),
            Ok(GeneratorState::Complete(())) => break,
            Err(e) => panic!("the consumer stopped early: {e}"),
        }
    }
    c.close();
}

fn main() {
    let c = consumer();
    produce(c);
}
