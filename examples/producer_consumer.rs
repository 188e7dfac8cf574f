//! Seed 001: the producer/consumer dialogue, here as two tasks talking through queues.
//!
//! In the seed the consumer is a generator driven by `send()`; with tasks, the producer puts
//! each item on a queue and awaits the consumer's answer on another, so control passes back
//! and forth exactly as with `send()` and `yield`. (The generator form is `producer_consumer_gen`.)

use kettle::sync::Queue;

/// Receives numbers until the producer sends `None` (the seed's `c.close()`), answering each.
async fn consumer(requests: Queue<Option<u32>>, replies: Queue<&'static str>) {
    while let Some(n) = requests.get().await {
        println!("[CONSUMER] Consuming {n}...");
        replies.put("200 OK").await;
    }
}

async fn produce(requests: Queue<Option<u32>>, replies: Queue<&'static str>) {
    for n in 1..=5 {
        println!("[PRODUCER] Producing {n}...");
        requests.put(Some(n)).await;
        let r = replies.get().await;
        println!("[PRODUCER] Consumer return: {r}");
    }
    requests.put(None).await;
}

#[kettle::main]
async fn main() {
    // Capacity one: like a generator, at most one message is in flight.
    let requests = Queue::new(1);
    let replies = Queue::new(1);
    let c = kettle::spawn(consumer(requests.clone(), replies.clone()));
    produce(requests, replies).await;
    c.await.expect("the consumer finishes when told to");
}
