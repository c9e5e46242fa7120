//! Receiving idiomatically on both sides of DpTcp.
//!
//! A shop protocol with three variants, each carrying its own protobuf:
//! two casts and one call. In Rust it is one enum; on the Haskell side it
//! is one type per variant, in module `Kaisui.Shop` of an executable:
//!
//! ```haskell
//! data Order  = Order  !ByteString             -- protobuf Order
//! data Cancel = Cancel !ByteString             -- protobuf Cancel
//! data Quote  = Quote  !ProcessId !ByteString  -- protobuf Quote, reply to the pid
//! newtype Price = Price ByteString             -- protobuf Price
//! ```
//!
//! Each ByteString holds the protobuf in its length-delimited form.
//!
//! A Haskell process picks messages by type with `receiveWait [match ...]`,
//! in any order (played here by `Process::expect_fp` and
//! `Process::receive_matching`); a Rust actor gets them as variants of its
//! own enum, in the order they were sent.

mod common;

use std::time::Duration;

use common::{rust_node_with, RustNode, T};
use dp_peer::{PlainNode, Process};
use dp_tcp::{haskell_type_fingerprint, DpTcpConfig, TypeRegistry};
use dp_wire::binary::{Decode, Encode, Reader};
use dp_wire::dp::{Message, ProcessId};
use dp_wire::fingerprint::Fingerprint;
use dp_wire::Limits;
use ractor::{call_t, cast, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use tokio::sync::mpsc;

/// An order of `quantity` × `item`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Order {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub item: String,
    #[prost(uint32, tag = "3")]
    pub quantity: u32,
}

/// Cancels order `id`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Cancel {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// Asks what `quantity` × `item` costs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Quote {
    #[prost(string, tag = "1")]
    pub item: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

/// The answer to a [`Quote`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Price {
    #[prost(string, tag = "1")]
    pub item: String,
    #[prost(uint64, tag = "2")]
    pub cents: u64,
}

ractor_cluster::derive_serialization_for_prost_type! {Order}
ractor_cluster::derive_serialization_for_prost_type! {Cancel}
ractor_cluster::derive_serialization_for_prost_type! {Quote}
ractor_cluster::derive_serialization_for_prost_type! {Price}

/// The shop's protocol.
#[derive(RactorClusterMessage)]
pub enum ShopMsg {
    Order(Order),
    Cancel(Cancel),
    #[rpc]
    Quote(Quote, RpcReplyPort<Price>),
}

/// What the Rust shop saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Order(Order),
    Cancel(Cancel),
    Quote(Quote),
}

const CENTS_EACH: u64 = 250;

fn fp(name: &str) -> Fingerprint {
    haskell_type_fingerprint("main", "Kaisui.Shop", name)
}

fn types() -> TypeRegistry {
    TypeRegistry::new()
        .module("main", "Kaisui.Shop")
        .cast("Order", "Order")
        .cast("Cancel", "Cancel")
        .call("Quote", "Quote", "Price")
}

/// One protobuf as one strict ByteString field: u64 BE length ++ the
/// message in protobuf's length-delimited form (varint length, then the
/// message), which is what ractor_cluster's prost serialization produces
/// (`docs/haskell-guide.md`).
fn field<M: prost::Message>(m: &M) -> Vec<u8> {
    let b = m.encode_length_delimited_to_vec();
    let mut v = (b.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(&b);
    v
}

/// The protobuf inside one strict ByteString field (see [`field`]).
fn unfield<M: prost::Message + Default>(payload: &[u8]) -> M {
    let n = u64::from_be_bytes(payload[..8].try_into().unwrap()) as usize;
    assert_eq!(payload.len(), 8 + n, "exactly one ByteString field");
    M::decode_length_delimited(&payload[8..]).expect("the protobuf of the expected type")
}

/// `Quote from bytes`: the reply pid and the Quote.
fn parse_quote(m: &Message) -> (ProcessId, Quote) {
    let payload = m.payload();
    let limits = Limits::default();
    let mut r = Reader::shared(&payload, &limits);
    let from = ProcessId::decode(&mut r).expect("the reply pid first");
    (from, unfield(&r.take_rest()))
}

/// `Quote me bytes`, as a Haskell caller sends it.
fn quote_from(me: &ProcessId, q: &Quote) -> Message {
    let mut payload = Vec::new();
    me.encode(&mut payload);
    payload.extend_from_slice(&field(q));
    Message::new(fp("Quote"), payload)
}

fn price_of(q: &Quote) -> Price {
    Price {
        item: q.item.clone(),
        cents: CENTS_EACH * u64::from(q.quantity),
    }
}

/// Reports every message to the test and prices every quote.
struct Shop;

impl Actor for Shop {
    type Msg = ShopMsg;
    type State = mpsc::UnboundedSender<Seen>;
    type Arguments = mpsc::UnboundedSender<Seen>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        seen: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(seen)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        seen: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // An exhaustive match over our own enum: no fingerprints here.
        let s = match message {
            ShopMsg::Order(o) => Seen::Order(o),
            ShopMsg::Cancel(c) => Seen::Cancel(c),
            ShopMsg::Quote(q, reply) => {
                let _ = reply.send(price_of(&q));
                Seen::Quote(q)
            }
        };
        let _ = seen.send(s);
        Ok(())
    }
}

/// A ractor node on DpTcp that knows the shop's [`types`].
async fn rust_node(name: &str) -> RustNode {
    rust_node_with(name, DpTcpConfig::new(types())).await
}

/// Waits (bounded) until `p` has `n` messages queued.
async fn queued(p: &Process, n: usize) {
    let deadline = tokio::time::Instant::now() + T;
    while p.queue_len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            p.queue_len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_process_receives_rust_messages_by_type_in_its_own_order() {
    let rust = rust_node("typed-to-haskell").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let shop = peer.spawn();
    peer.register("shop-typed-to-haskell", &shop.pid());
    let peer_id = peer.node_id().as_str().unwrap().to_owned();
    ractor_cluster::client_connect_transport(&rust.server, peer_id.clone())
        .await
        .unwrap();
    let to: ActorRef<ShopMsg> = rust
        .dp
        .whereis(&peer_id, "shop-typed-to-haskell", T)
        .await
        .unwrap()
        .into();

    let tea = Order {
        id: 1,
        item: "tea".into(),
        quantity: 2,
    };
    let cake = Order {
        id: 2,
        item: "cake".into(),
        quantity: 1,
    };
    let cancel = Cancel {
        id: 1,
        reason: "changed my mind".into(),
    };
    let quote = Quote {
        item: "tea".into(),
        quantity: 3,
    };

    // The Haskell shop waits until everything is in its mailbox, then
    // serves the quote first, then cancellations, then orders:
    //   receiveWait [match $ \(Quote from b) -> send from (Price ...)]
    //   receiveWait [match $ \(Cancel b) -> ...]
    //   replicateM_ 2 $ receiveWait [match $ \(Order b) -> ...]
    let haskell = tokio::spawn(async move {
        queued(&shop, 4).await;
        let mut arrival = Vec::new();
        let q = shop
            .receive_matching(
                |m| {
                    arrival.push(m.fingerprint);
                    m.fingerprint == fp("Quote")
                },
                T,
            )
            .await
            .unwrap();
        let (from, q): (ProcessId, Quote) = parse_quote(&q);
        shop.send(&from, Message::new(fp("Price"), field(&price_of(&q))))
            .await
            .unwrap();
        let c: Cancel = unfield(&shop.expect_fp(fp("Cancel"), T).await.unwrap().payload());
        let o1: Order = unfield(&shop.expect_fp(fp("Order"), T).await.unwrap().payload());
        let o2: Order = unfield(&shop.expect_fp(fp("Order"), T).await.unwrap().payload());
        assert_eq!(shop.queue_len(), 0);
        (shop, arrival, q, c, o1, o2)
    });

    cast!(to, ShopMsg::Order(tea.clone())).unwrap();
    cast!(to, ShopMsg::Cancel(cancel.clone())).unwrap();
    cast!(to, ShopMsg::Order(cake.clone())).unwrap();
    let price = call_t!(to, ShopMsg::Quote, 10_000, quote.clone()).unwrap();
    assert_eq!(
        price,
        Price {
            item: "tea".into(),
            cents: 750
        }
    );

    let (_shop, arrival, q, c, o1, o2) = haskell.await.unwrap();
    // They arrived in sending order; the shop took them in its own.
    assert_eq!(
        arrival,
        [fp("Order"), fp("Cancel"), fp("Order"), fp("Quote")]
    );
    assert_eq!(q, quote);
    assert_eq!(c, cancel);
    // Messages of one type keep their order.
    assert_eq!((o1, o2), (tea, cake));
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn rust_actor_receives_haskell_messages_as_its_variants_in_order() {
    let rust = rust_node("typed-to-rust").await;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (shop, _) = Actor::spawn(Some("shop-typed-to-rust".into()), Shop, seen_tx)
        .await
        .unwrap();
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let to = rust.dp.pid_of(&shop.get_cell()).unwrap();

    let cancel = Cancel {
        id: 9,
        reason: "out of stock".into(),
    };
    let order = Order {
        id: 10,
        item: "scones".into(),
        quantity: 4,
    };
    let quote = Quote {
        item: "scones".into(),
        quantity: 4,
    };
    let again = Order {
        id: 11,
        item: "jam".into(),
        quantity: 1,
    };
    // `send` keeps the order between one sender and one receiver.
    p.send(&to, Message::new(fp("Cancel"), field(&cancel)))
        .await
        .unwrap();
    p.send(&to, Message::new(fp("Order"), field(&order)))
        .await
        .unwrap();
    p.send(&to, quote_from(&p.pid(), &quote)).await.unwrap();
    p.send(&to, Message::new(fp("Order"), field(&again)))
        .await
        .unwrap();

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(
            tokio::time::timeout(T, seen_rx.recv())
                .await
                .expect("the shop gets every message in time")
                .expect("shop alive"),
        );
    }
    assert_eq!(
        got,
        [
            Seen::Cancel(cancel),
            Seen::Order(order),
            Seen::Quote(quote.clone()),
            Seen::Order(again),
        ]
    );
    // The Haskell caller gets its Price: `receiveWait [match $ \(Price b) -> ...]`.
    let price: Price = unfield(&p.expect_fp(fp("Price"), T).await.unwrap().payload());
    assert_eq!(price, price_of(&quote));
    assert_eq!(price.cents, 1000);
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}
