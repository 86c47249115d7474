//! The one shutdown mechanism: a tree of cancellation tokens, each node
//! with the tasks it spawned. Cancelling a node cancels its subtree; a drain
//! stops the nodes one by one, in the order the daemon needs (see
//! `daemon::drain`). Nothing is aborted and no task is told to stop by a
//! dropped channel: every task watches its token.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A node of the shutdown tree. Cloning gives another handle to the same node.
#[derive(Clone, Default)]
pub struct Tasks {
    /// Cancelled when this node or any ancestor is.
    token: CancellationToken,
    /// The tasks spawned on this node (not on its children), so a drain can
    /// wait for one stage without waiting for the ones after it.
    tracker: TaskTracker,
}

impl Tasks {
    /// A root.
    pub fn new() -> Self {
        Self::default()
    }

    /// A child node: cancelled with this one, or on its own.
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
            tracker: TaskTracker::new(),
        }
    }

    /// Spawns `task` on this node; the task watches [`Tasks::cancelled`]
    /// (or a token of its own under this node) to end.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Spawns `task` on this node, dropped where it stands when `token` (this
    /// node's or one under it) is cancelled.
    pub fn spawn_until<F>(&self, token: CancellationToken, task: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker
            .spawn(async move { token.run_until_cancelled(task).await })
    }

    /// A token under this node, for one task this node may cancel alone.
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// This node's own token: cancelled with it, and no node of its own.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Tasks of this node still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Cancels this node and waits for its tasks to end.
    pub async fn stop(&self) {
        self.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Lets this node's tasks finish on their own for up to `grace`, then
    /// cancels the rest and waits for them. Returns how many were cut off.
    pub async fn finish_within(&self, grace: Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let cut_off = self.tracker.len();
        self.stop().await;
        cut_off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cancelling_a_node_cancels_its_children_but_not_its_parent() {
        let root = Tasks::new();
        let child = root.child();
        let grandchild = child.child();
        child.cancel();
        assert!(child.is_cancelled() && grandchild.is_cancelled());
        assert!(!root.is_cancelled());
        root.cancel();
        assert!(root.child().is_cancelled(), "a late child starts cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_waits_for_tasks_that_watch_their_token() {
        let tasks = Tasks::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let watcher = tasks.clone();
        tasks.spawn(async move {
            watcher.cancelled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = done_tx.send(());
        });
        tasks.stop().await;
        assert!(
            done_rx.await.is_ok(),
            "stop returned only after the task ended"
        );
        assert_eq!(tasks.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn finish_within_cuts_off_only_what_outlives_the_grace() {
        let tasks = Tasks::new();
        let quick = tasks.spawn_until(tasks.child_token(), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let slow = tasks.spawn_until(tasks.child_token(), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        assert_eq!(tasks.finish_within(Duration::from_secs(5)).await, 1);
        assert_eq!(quick.await.unwrap(), Some(()), "finished on its own");
        assert_eq!(slow.await.unwrap(), None, "cut off at the grace");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_under_its_own_token_can_be_cancelled_alone() {
        let tasks = Tasks::new();
        let one = tasks.child_token();
        let other = tasks.child_token();
        let first = tasks.spawn_until(one.clone(), std::future::pending::<()>());
        let second = tasks.spawn_until(other, async {});
        one.cancel();
        assert_eq!(first.await.unwrap(), None);
        assert_eq!(second.await.unwrap(), Some(()));
        assert!(!tasks.is_cancelled());
    }
}
