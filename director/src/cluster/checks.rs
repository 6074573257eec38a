//! The unique checks and the servers sharing each: servers (of any
//! services) with the same address and [`CheckSpec`] share one check.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::check::CheckSpec;
use crate::cluster::health::CheckState;

use super::CheckId;

/// One unique check and the servers using it.
#[derive(Debug, Clone)]
pub struct CheckEntry {
    pub address: IpAddr,
    pub spec: Arc<CheckSpec>,
    pub state: CheckState,
    /// (service index, server index) of every server using it.
    pub users: Users,
}

/// The servers using one check: (service index, server index). Almost
/// every check has one user, held inline: a vector per check was a heap
/// block each (20,000 of them at 20,000 servers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    first: Option<(u32, u32)>,
    // Boxed: one word in the common case (no second user), not three.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<(u32, u32)>>>,
}

impl Users {
    pub(super) fn push(&mut self, (i, j): (usize, usize)) {
        // Indices come from vectors of the configuration, far below 2^32.
        let user = (i as u32, j as u32);
        if self.first.is_none() {
            self.first = Some(user);
        } else {
            self.rest.get_or_insert_default().push(user);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.first
            .iter()
            .chain(self.rest.iter().flat_map(|r| r.iter()))
            .map(|&(i, j)| (i as usize, j as usize))
    }

    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

/// Finds a check by (address, spec) through a 64-bit digest of both: a
/// map from digests to ids is a third the size of one keyed by the pair
/// (an address and a shared spec per entry). Ids whose digest was already
/// taken by another pair (a collision, about never) go to `collided`.
/// Built where checks are looked up (a model's construction, a reload that
/// changes checks), not kept: 0.5 MB at 20,000 checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckIndex {
    by_digest: HashMap<u64, CheckId>,
    collided: Vec<CheckId>,
}

impl CheckIndex {
    pub(super) fn with_capacity(n: usize) -> CheckIndex {
        CheckIndex {
            by_digest: HashMap::with_capacity(n),
            collided: Vec::new(),
        }
    }

    pub(crate) fn of(checks: &[CheckEntry]) -> CheckIndex {
        let mut index = CheckIndex::with_capacity(checks.len());
        for (id, c) in checks.iter().enumerate() {
            index.insert(c.address, &c.spec, id);
        }
        index
    }

    fn digest(addr: IpAddr, spec: &CheckSpec) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one((addr, spec))
    }

    pub(crate) fn get(
        &self,
        checks: &[CheckEntry],
        addr: IpAddr,
        spec: &CheckSpec,
    ) -> Option<CheckId> {
        let is = |id: &CheckId| checks[*id].address == addr && *checks[*id].spec == *spec;
        match self.by_digest.get(&Self::digest(addr, spec)) {
            Some(id) if is(id) => Some(*id),
            Some(_) => self.collided.iter().copied().find(is),
            None => None,
        }
    }

    pub(super) fn insert(&mut self, addr: IpAddr, spec: &CheckSpec, id: CheckId) {
        match self.by_digest.entry(Self::digest(addr, spec)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push(id),
        }
    }
}
