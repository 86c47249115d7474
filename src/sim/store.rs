//! Every simulated instance, each behind its own lock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use tokio::time::Instant;

use super::state::InstanceSim;

/// All instances. The map is write-locked only to add an instance; each
/// instance has its own lock.
pub(crate) struct Store {
    pub(crate) map: RwLock<HashMap<u64, Mutex<InstanceSim>>>,
}

impl Store {
    pub(crate) fn insert(&self, id: u64, instance: InstanceSim) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Mutex::new(instance));
    }

    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Runs `f` on one instance (after applying time-driven transitions).
    pub(crate) fn with<R>(
        &self,
        id: u64,
        now: Instant,
        f: impl FnOnce(&mut InstanceSim) -> R,
    ) -> Option<R> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut instance = map.get(&id)?.lock().unwrap_or_else(PoisonError::into_inner);
        instance.settle(now);
        Some(f(&mut instance))
    }

    /// Runs `f` on every instance, in id order.
    pub(crate) fn each<R>(
        &self,
        now: Instant,
        mut f: impl FnMut(u64, &mut InstanceSim) -> R,
    ) -> Vec<R> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<u64> = map.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| {
                let mut instance = map.get(&id)?.lock().unwrap_or_else(PoisonError::into_inner);
                instance.settle(now);
                Some(f(id, &mut instance))
            })
            .collect()
    }
}
