//! The in-memory transport on its own: addressing, message passing and
//! closing, without node servers.

use std::io::ErrorKind;

use kaisui_integration_tests::harness::WAIT;
use kaisui_integration_tests::memory_transport::MemoryNetwork;
use ractor_cluster::protocol::meta::network_message;
use ractor_cluster::protocol::{auth, NetworkMessage};
use ractor_cluster::transport::{Transport, TransportConnection};

/// A distinguishable message: an auth `Name` carrying `n`.
fn ping(n: u64) -> NetworkMessage {
    NetworkMessage {
        message: Some(network_message::Message::Auth(
            auth::AuthenticationMessage {
                msg: Some(auth::authentication_message::Msg::Name(auth::NameMessage {
                    name: format!("node-{n}@memory"),
                    ..Default::default()
                })),
            },
        )),
    }
}

async fn connected_pair(
    network: &MemoryNetwork,
) -> (Box<dyn TransportConnection>, Box<dyn TransportConnection>) {
    let server = network.transport("server");
    let client = network.transport("client");
    let mut listener = server.listen(None, 0).await.expect("listen");
    let dialed = client.connect("server".to_string()).await.expect("connect");
    let accepted = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("accept in time")
        .expect("accept");
    (dialed, accepted)
}

#[test_log::test(tokio::test)]
async fn messages_arrive_in_order_as_values() {
    let network = MemoryNetwork::new();
    let (dialed, accepted) = connected_pair(&network).await;
    assert_eq!(dialed.peer_label(), "memory:server");
    assert_eq!(accepted.peer_label(), "memory:client");
    assert!(
        dialed.authenticated_peer().is_none(),
        "cookie handshake must run"
    );

    let (_dial_reader, mut dial_writer) = dialed.split(u64::MAX);
    let (mut accept_reader, _accept_writer) = accepted.split(u64::MAX);
    let batch: Vec<_> = (0..5).map(ping).collect();
    dial_writer.write_messages(&batch).await.expect("write");
    for expected in &batch {
        let got = accept_reader.read_message().await.expect("read");
        assert_eq!(&got, expected);
    }
    assert_eq!(network.messages_carried(), 5);
    assert_eq!(network.connections_opened(), 1);
}

#[test_log::test(tokio::test)]
async fn dropping_one_side_ends_the_other_with_eof() {
    let network = MemoryNetwork::new();
    let (dialed, accepted) = connected_pair(&network).await;
    let (mut dial_reader, mut dial_writer) = dialed.split(u64::MAX);
    drop(accepted);

    let err = dial_reader.read_message().await.expect_err("peer gone");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    let err = dial_writer
        .write_messages(&[ping(1)])
        .await
        .expect_err("peer gone");
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
}

#[test_log::test(tokio::test)]
async fn oversized_messages_are_refused() {
    let network = MemoryNetwork::new();
    let (dialed, accepted) = connected_pair(&network).await;
    let (_dial_reader, mut dial_writer) = dialed.split(u64::MAX);
    let (mut accept_reader, _accept_writer) = accepted.split(2);
    dial_writer.write_messages(&[ping(1)]).await.expect("write");
    let err = accept_reader.read_message().await.expect_err("too big");
    assert_eq!(err.kind(), ErrorKind::InvalidData);
}

#[test_log::test(tokio::test)]
async fn addresses_are_names_on_one_network() {
    let network = MemoryNetwork::new();
    let err = network
        .transport("client")
        .connect("nobody".to_string())
        .await
        .err()
        .expect("nothing listens on that name");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    let listener = network
        .transport("server")
        .listen(None, 0)
        .await
        .expect("listen");
    let err = network
        .transport("server")
        .listen(None, 0)
        .await
        .err()
        .expect("the name is taken");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // Another network does not see this one's names.
    let err = MemoryNetwork::new()
        .transport("client")
        .connect("server".to_string())
        .await
        .err()
        .expect("separate networks");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    // Closing the listener frees its name.
    drop(listener);
    network
        .transport("server")
        .listen(None, 0)
        .await
        .expect("listen again after the first listener closed");
}

#[test_log::test(tokio::test)]
async fn listeners_get_distinct_ports() {
    let network = MemoryNetwork::new();
    let first = network
        .transport("one")
        .listen(None, 0)
        .await
        .expect("listen");
    let second = network
        .transport("two")
        .listen(None, 0)
        .await
        .expect("listen");
    let fixed = network
        .transport("three")
        .listen(None, 4242)
        .await
        .expect("listen");
    let port = |l: &dyn ractor_cluster::transport::TransportListener| {
        l.local_addr().expect("local addr").port()
    };
    assert_ne!(port(first.as_ref()), 0);
    assert_ne!(port(first.as_ref()), port(second.as_ref()));
    assert_eq!(port(fixed.as_ref()), 4242);
}
