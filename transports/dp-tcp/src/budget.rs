//! Channels bounded in messages *and* bytes, between a connection's task
//! and its session.
//!
//! A bound in messages alone lets one channel hold `capacity ×` the
//! largest message (1024 × 16 MiB by default); the byte budget bounds
//! what the messages in the channel weigh. A sender takes a message's
//! bytes from the budget before it sends; the receiver gives them back
//! as it takes the message out. A message larger than the whole budget
//! takes all of it, so it still passes, alone, once the channel is empty:
//! nothing waits for room that can never come.
//!
//! Dropping the receiving end closes the budget, so a sender waiting for
//! bytes learns that nobody will ever give them back.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

/// Bytes of messages in one channel, as semaphore permits.
#[derive(Debug, Clone)]
struct Budget {
    sem: Arc<Semaphore>,
    /// The whole budget.
    max: usize,
}

impl Budget {
    fn new(bytes: usize) -> Self {
        let max = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            sem: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// What a message of `len` bytes takes from the budget: at most all of
    /// it, so that it can pass alone.
    fn cost(&self, len: usize) -> u32 {
        u32::try_from(len.min(self.max)).unwrap_or(u32::MAX)
    }

    fn try_take(&self, cost: u32) -> bool {
        match self.sem.try_acquire_many(cost) {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for `cost` bytes; `false` if the receiver is gone.
    async fn take(&self, cost: u32) -> bool {
        match self.sem.acquire_many(cost).await {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    fn give(&self, cost: u32) {
        self.sem.add_permits(cost as usize);
    }
}

/// A channel of at most `capacity` messages weighing at most `bytes`
/// together (see the module's documentation).
pub(crate) fn channel<T>(capacity: usize, bytes: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let budget = Budget::new(bytes);
    (
        Sender {
            tx,
            budget: budget.clone(),
        },
        Receiver { rx, budget },
    )
}

/// The receiver is gone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

/// Why [`Sender::try_send`] did not send.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// No room, in messages or in bytes: the message and its cost, for
    /// [`Sender::room`].
    Full(T, u32),
    Closed,
}

/// The sending end of a [`channel`].
#[derive(Debug)]
pub(crate) struct Sender<T> {
    tx: mpsc::Sender<(T, u32)>,
    budget: Budget,
}

/// Room for one message in a [`channel`], its bytes already taken: use it
/// with [`Slot::send`].
pub(crate) struct Slot<'a, T> {
    permit: mpsc::Permit<'a, (T, u32)>,
    cost: u32,
}

impl<T> Slot<'_, T> {
    /// Sends the message the room was made for.
    pub(crate) fn send(self, m: T) {
        self.permit.send((m, self.cost));
    }
}

impl<T> Sender<T> {
    /// Sends `m`, which weighs `len` bytes, if there is room now.
    pub(crate) fn try_send(&self, m: T, len: usize) -> Result<(), TrySendError<T>> {
        let cost = self.budget.cost(len);
        let permit = match self.tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => return Err(TrySendError::Full(m, cost)),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(TrySendError::Closed),
        };
        if !self.budget.try_take(cost) {
            return Err(TrySendError::Full(m, cost));
        }
        permit.send((m, cost));
        Ok(())
    }

    /// Waits until a message costing `cost` (from
    /// [`TrySendError::Full`]) fits. Cancel safe: until it returns,
    /// nothing is taken.
    pub(crate) async fn room(&self, cost: u32) -> Result<Slot<'_, T>, Closed> {
        // A place in the channel first: held while the bytes come, it is
        // given back if this is cancelled. The bytes are taken in the same
        // poll that returns, so they cannot be lost to a cancellation.
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        if !self.budget.take(cost).await {
            return Err(Closed);
        }
        Ok(Slot { permit, cost })
    }

    /// Sends `m`, which weighs `len` bytes, waiting for room.
    pub(crate) async fn send(&self, m: T, len: usize) -> Result<(), Closed> {
        self.room(self.budget.cost(len)).await?.send(m);
        Ok(())
    }
}

/// The receiving end of a [`channel`]; dropping it closes the channel and
/// its budget.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    rx: mpsc::Receiver<(T, u32)>,
    budget: Budget,
}

impl<T> Receiver<T> {
    /// The next message, its bytes given back to the budget; `None` once
    /// every sender is gone and the channel is empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        let (m, cost) = self.rx.recv().await?;
        self.budget.give(cost);
        Some(m)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.budget.sem.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pending<F: std::future::Future>(f: F) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_pending()
    }

    #[tokio::test]
    async fn bytes_bound_the_channel_and_come_back_on_recv() {
        let (tx, mut rx) = channel::<u8>(100, 10);
        tx.try_send(1, 6).unwrap();
        let Err(TrySendError::Full(2, cost)) = tx.try_send(2, 6) else {
            panic!("6 + 6 bytes fit a budget of 10");
        };
        assert_eq!(cost, 6);
        assert!(pending(tx.room(cost)));
        assert_eq!(rx.recv().await, Some(1));
        tx.room(cost).await.unwrap().send(2);
        assert_eq!(rx.recv().await, Some(2));
        // All 10 are back.
        tx.try_send(3, 10).unwrap();
    }

    #[tokio::test]
    async fn messages_still_bound_the_channel() {
        let (tx, mut rx) = channel::<u8>(1, 1000);
        tx.try_send(1, 1).unwrap();
        assert!(matches!(tx.try_send(2, 1), Err(TrySendError::Full(2, 1))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(2, 1).unwrap();
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_passes_alone() {
        let (tx, mut rx) = channel::<u8>(100, 10);
        tx.try_send(1, 1).unwrap();
        let Err(TrySendError::Full(2, cost)) = tx.try_send(2, 1_000_000) else {
            panic!("an oversized message waits for an empty channel");
        };
        assert_eq!(cost, 10);
        assert_eq!(rx.recv().await, Some(1));
        tx.room(cost).await.unwrap().send(2);
        assert!(matches!(tx.try_send(3, 1), Err(TrySendError::Full(3, 1))));
        assert_eq!(rx.recv().await, Some(2));
        tx.send(3, 1).await.unwrap();
        assert_eq!(rx.recv().await, Some(3));
    }

    #[tokio::test]
    async fn a_cancelled_wait_takes_nothing() {
        let (tx, mut rx) = channel::<u8>(100, 10);
        tx.try_send(1, 8).unwrap();
        assert!(pending(tx.room(5)));
        assert!(tokio::time::timeout(Duration::from_millis(10), tx.room(5))
            .await
            .is_err());
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(2, 10).unwrap();
    }

    #[tokio::test]
    async fn a_dropped_receiver_wakes_a_sender_waiting_for_bytes() {
        let (tx, rx) = channel::<u8>(100, 10);
        tx.try_send(1, 10).unwrap();
        let waiting = tokio::spawn(async move { tx.send(2, 5).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(rx);
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the sender is woken")
            .unwrap();
        assert_eq!(r, Err(Closed));
    }

    #[tokio::test]
    async fn try_send_after_the_receiver_is_gone_is_closed() {
        let (tx, rx) = channel::<u8>(100, 10);
        drop(rx);
        assert!(matches!(tx.try_send(1, 1), Err(TrySendError::Closed)));
    }

    #[test]
    fn budgets_beyond_the_semaphore_are_clamped() {
        let b = Budget::new(usize::MAX);
        assert_eq!(b.max, Semaphore::MAX_PERMITS);
        assert_eq!(b.cost(usize::MAX), u32::MAX);
        assert_eq!(Budget::new(0).max, 1);
    }
}
