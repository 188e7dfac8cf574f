//! UDP through real sockets on 127.0.0.1.

mod common;

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::LATE;
use kettle::net::UdpSocket;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[kettle::test]
async fn send_to_and_recv_from_both_ways() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = UdpSocket::bind(any_port()).unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    assert_ne!(a_addr.port(), 0);
    let mut buf = [0u8; 64];

    assert_eq!(a.send_to(b"to b", b_addr).await.unwrap(), 4);
    let (n, from) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"to b"[..], a_addr));

    // Answer whoever wrote, as a UDP server does.
    b.send_to(b"reply to a", from).await.unwrap();
    let (n, from) = a.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"reply to a"[..], b_addr));
}

#[kettle::test]
async fn datagram_boundaries_are_kept() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = UdpSocket::bind(any_port()).unwrap();
    let to = b.local_addr().unwrap();
    for msg in [&b"one"[..], b"", b"three", &[9u8; 1200]] {
        a.send_to(msg, to).await.unwrap();
    }
    let mut buf = [0u8; 2048];
    for msg in [&b"one"[..], b"", b"three", &[9u8; 1200]] {
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], msg);
    }
}

#[kettle::test]
async fn connected_mode_send_recv_and_filtering() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = UdpSocket::bind(any_port()).unwrap();
    let stranger = UdpSocket::bind(any_port()).unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());

    assert_eq!(
        a.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    a.connect(b_addr).unwrap();
    b.connect(a_addr).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b_addr);

    // A connected socket only accepts datagrams from its peer: the stranger's is dropped by
    // the kernel, so the first one b sees is a's.
    stranger.send_to(b"noise", b_addr).await.unwrap();
    a.send(b"signal").await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"signal"[..], a_addr));

    b.send(b"back").await.unwrap();
    let n = a.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"back");
}

#[kettle::test]
async fn a_waiting_receiver_is_woken_by_a_later_datagram() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = Rc::new(UdpSocket::bind(any_port()).unwrap());
    let to = b.local_addr().unwrap();
    let receiver = {
        let b = b.clone();
        kettle::spawn(async move {
            let mut buf = [0u8; 16];
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            buf[..n].to_vec()
        })
    };
    kettle::sleep(Duration::from_millis(20)).await;
    assert!(!receiver.done(), "nothing was sent yet");
    a.send_to(b"late", to).await.unwrap();
    let got = kettle::wait_for(receiver, LATE).await.unwrap().unwrap();
    assert_eq!(got, b"late");
}

#[kettle::test]
async fn a_cancelled_recv_loses_nothing() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = UdpSocket::bind(any_port()).unwrap();
    let mut buf = [0u8; 16];
    let err = kettle::wait_for(b.recv_from(&mut buf), Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    a.send_to(b"after", b.local_addr().unwrap()).await.unwrap();
    let (n, _) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"after");
}

#[kettle::test]
async fn many_datagrams_from_many_tasks() {
    let server = Rc::new(UdpSocket::bind(any_port()).unwrap());
    let to = server.local_addr().unwrap();
    // An echo server task.
    {
        let server = server.clone();
        kettle::spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                server.send_to(&buf[..n], from).await.unwrap();
            }
        });
    }
    let clients: Vec<_> = (0..20u32)
        .map(|i| {
            kettle::spawn(async move {
                let s = UdpSocket::bind(any_port()).unwrap();
                s.connect(to).unwrap();
                let mut buf = [0u8; 256];
                for round in 0..10u32 {
                    let msg = format!("{i}/{round}");
                    s.send(msg.as_bytes()).await.unwrap();
                    let n = s.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], msg.as_bytes());
                }
            })
        })
        .collect();
    kettle::wait_for(kettle::gather(clients), Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
}

#[kettle::test]
async fn sending_to_a_closed_port_reports_connection_refused() {
    // Find a port nobody listens on.
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let s = UdpSocket::bind(any_port()).unwrap();
    s.connect(closed).unwrap();
    s.send(b"anyone?").await.unwrap();
    // The ICMP "port unreachable" arrives asynchronously and fails the next receive.
    let mut buf = [0u8; 16];
    let err = kettle::wait_for(s.recv(&mut buf), LATE)
        .await
        .expect("the ICMP error should end the receive")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[kettle::test]
async fn poll_variants_work_with_poll_fn() {
    let a = UdpSocket::bind(any_port()).unwrap();
    let b = UdpSocket::bind(any_port()).unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    poll_fn(|cx| a.poll_send_to(cx, b"polled", b_addr))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"polled"[..], a_addr));

    a.connect(b_addr).unwrap();
    b.connect(a_addr).unwrap();
    poll_fn(|cx| b.poll_send(cx, b"again")).await.unwrap();
    let n = poll_fn(|cx| a.poll_recv(cx, &mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"again");
}

#[kettle::test]
async fn broadcast_ttl_and_buffers_read_back() {
    let s = UdpSocket::bind(any_port()).unwrap();
    assert!(!s.broadcast().unwrap());
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.set_ttl(7).unwrap();
    assert_eq!(s.ttl().unwrap(), 7);
    s.set_recv_buffer_size(64 * 1024).unwrap();
    assert!(s.recv_buffer_size().unwrap() >= 64 * 1024);
    s.set_send_buffer_size(32 * 1024).unwrap();
    assert!(s.send_buffer_size().unwrap() >= 32 * 1024);
    assert!(s.take_error().unwrap().is_none());
    let debug = format!("{s:?}");
    assert!(debug.contains("UdpSocket"), "{debug}");
}

#[kettle::test]
async fn ipv6_loopback_when_available() {
    let Ok(a) = UdpSocket::bind("[::1]:0".parse().unwrap()) else {
        return; // no IPv6 in this environment
    };
    let b = UdpSocket::bind("[::1]:0".parse().unwrap()).unwrap();
    a.send_to(b"six", b.local_addr().unwrap()).await.unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"six"[..], a.local_addr().unwrap()));
    // The hop limit goes through IPV6_UNICAST_HOPS on an IPv6 socket.
    a.set_ttl(9).unwrap();
    assert_eq!(a.ttl().unwrap(), 9);
}

#[test]
fn udp_sockets_need_a_running_loop() {
    let err = UdpSocket::bind(any_port()).unwrap_err();
    assert!(
        err.to_string().contains("running kettle event loop"),
        "{err}"
    );
}
