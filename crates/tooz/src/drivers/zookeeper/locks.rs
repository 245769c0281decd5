//! Locks on ZooKeeper: kazoo's recipe, which Python tooz uses, so that the two exclude each
//! other. A contender is an ephemeral sequential node `<owner hex>__lock__<sequence>` under
//! the lock's node, holding the member id; the lowest sequence holds the lock. A waiter keeps
//! its node (its place in the queue) and watches only its predecessor; a try that is refused
//! deletes its node at once. The fencing token is the contender's czxid.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use zookeeper_client::{CreateMode, Error as ZkError};

use super::{Contender, NAME, Session, ZookeeperBackend, error, paths, token};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

impl ZookeeperBackend {
    /// The node of lock `name`: `/tooz/locks/<name>`.
    pub(super) fn lock_dir(&self, name: &LockName) -> String {
        let name = paths::lock(name.as_bytes());
        format!("{}/{}/{name}", self.options.base, paths::LOCKS)
    }

    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        let dir = self.lock_dir(request.name);
        let shared = request.mode == LockMode::Shared;
        self.contend(&dir, request.owner, request.wait, shared)
            .await
    }

    /// One attempt at the kazoo lock whose node is `dir`, for grant `owner`: its token if it
    /// holds the lock now; if not, its contender stays queued (`wait`) or is withdrawn.
    pub(super) async fn contend(
        &self,
        dir: &str,
        owner: OwnerToken,
        wait: bool,
        shared: bool,
    ) -> Result<Option<FencingToken>> {
        let session = self.session()?;
        let client = &session.client;
        let sent = tokio::time::Instant::now();
        // At most: our queued node found gone (another deleted it), then a new one.
        for _ in 0..3 {
            let queued = {
                let contenders = self.contenders();
                contenders
                    .get(&owner)
                    .filter(|c| c.dir == dir && c.session == session.id)
                    .and_then(|c| Some((c.node.clone()?, c.czxid)))
            };
            let (node, czxid, children) = match queued {
                Some((node, czxid)) => {
                    match self
                        .call("acquiring a lock", client.get_children(dir))
                        .await?
                    {
                        Ok((children, _)) => (node, czxid, children),
                        Err(ZkError::NoNode) => (node, czxid, Vec::new()),
                        Err(e) => return Err(e.into()),
                    }
                }
                None => self.create_contender(&session, dir, owner, shared).await?,
            };
            self.saw_holder(dir, &children);
            match paths::predecessor(&children, &node) {
                // Our node is gone (or its name is beyond kazoo's pattern): withdrawn if it is
                // there, then a new place at the back of the queue.
                Err(()) => {
                    self.withdraw(dir, owner).await?;
                }
                Ok(None) => {
                    if let Some(contender) = self.contenders().get_mut(&owner) {
                        contender.predecessor = None;
                    }
                    // (Not handed out if the session ended meanwhile.)
                    self.answered(&session, sent)?;
                    return token(czxid).map(Some);
                }
                Ok(Some(predecessor)) if wait => {
                    if let Some(contender) = self.contenders().get_mut(&owner) {
                        contender.predecessor = Some(predecessor.to_owned());
                    }
                    return Ok(None);
                }
                Ok(Some(_)) => {
                    self.withdraw(dir, owner).await?;
                    return Ok(None);
                }
            }
        }
        Err(error::unexpected("our lock contender keeps vanishing"))
    }

    /// Creates grant `owner`'s contender under `dir` (and `dir` if missing) and reads the
    /// contenders, in one round trip (ZooKeeper answers a session's requests in order, so the
    /// list includes the new node): the node's name, its czxid, and the list.
    async fn create_contender(
        &self,
        session: &Session,
        dir: &str,
        owner: OwnerToken,
        shared: bool,
    ) -> Result<(String, i64, Vec<String>)> {
        let client = &session.client;
        let prefix = paths::contender_prefix(owner.as_u128(), shared);
        let path = format!("{dir}/{prefix}");
        // Recorded before the request leaves: a node whose creation's answer is lost is found
        // again by its prefix, and withdrawn.
        let in_doubt = Contender {
            dir: dir.to_owned(),
            node: None,
            czxid: 0,
            predecessor: None,
            session: session.id,
            abandoned: false,
            withdrawing: None,
        };
        self.contenders().insert(owner, in_doubt.clone());
        let options = self.create_options(CreateMode::EphemeralSequential);
        for first in [true, false] {
            let created = client.create(&path, self.member.as_bytes(), &options);
            let listed = client.get_children(dir);
            let both = async { tokio::join!(created, listed) };
            let (created, listed) = self.bounded("acquiring a lock", both).await?;
            match created {
                Ok((stat, sequence)) => {
                    let node = format!("{prefix}{sequence}");
                    // (Recorded again even if a withdrawal ran meanwhile, finding nothing yet:
                    // the attempt's own hand-back withdraws it.)
                    let made = Contender {
                        node: Some(node.clone()),
                        czxid: stat.czxid,
                        ..in_doubt.clone()
                    };
                    self.contenders().insert(owner, made);
                    let (children, _) = listed?;
                    return Ok((node, stat.czxid, children));
                }
                Err(ZkError::NoNode) if first => self.ensure_path(client, dir).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(error::unexpected("a lock node vanishes as it is made"))
    }

    /// Withdraws grant `owner`'s contender under `dir` (a release, a resignation, a waiter
    /// giving up): whether a node of ours was there to delete.
    pub(super) async fn withdraw(&self, dir: &str, owner: OwnerToken) -> Result<bool> {
        self.withdraw_by(dir, owner, Withdrawer::Holder).await
    }

    async fn withdraw_by(&self, dir: &str, owner: OwnerToken, by: Withdrawer) -> Result<bool> {
        // Marked first: if this fails, heartbeats withdraw it later (see
        // `withdraw_abandoned`).
        let Some((contender, claim)) = claim(&mut self.contenders(), dir, owner, by) else {
            return Ok(false);
        };
        // Ends the claim however this ends, a dropped future included: a claim left standing
        // would hide the contender from heartbeats for as long as the session lives.
        let mut claimed = Claimed {
            contenders: &self.contenders,
            owner,
            claim,
            withdrawn: false,
        };
        let withdrawn = self.delete_contender(&contender, owner).await;
        claimed.withdrawn = withdrawn.is_ok();
        withdrawn
    }

    /// Deletes a claimed contender's node: whether it was there (`false` if its session, and
    /// the node with it, is gone).
    async fn delete_contender(&self, contender: &Contender, owner: OwnerToken) -> Result<bool> {
        let session = match self.session() {
            Ok(session) if session.id == contender.session => session,
            // Its session ended, and the node with it.
            Ok(_) | Err(Error::SessionLost { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let client = &session.client;
        let dir = &contender.dir;
        let node = match &contender.node {
            Some(node) => Some(node.clone()),
            None => {
                // Its creation's answer was lost: found by the owner's prefix, if it was made.
                let prefix = paths::owner_prefix(owner.as_u128());
                match self
                    .call("releasing a lock", client.get_children(dir))
                    .await?
                {
                    Ok((children, _)) => children.into_iter().find(|c| c.starts_with(&prefix)),
                    Err(ZkError::NoNode) => None,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let Some(node) = node else {
            return Ok(false);
        };
        let path = format!("{dir}/{node}");
        match self
            .call("releasing a lock", client.delete(&path, None))
            .await?
        {
            Ok(()) => Ok(true),
            Err(ZkError::NoNode) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Withdraws the contenders whose withdrawal began and failed (heartbeats call this).
    pub(super) async fn withdraw_abandoned(&self) {
        let abandoned = unclaimed_abandoned(&self.contenders());
        for (owner, dir) in abandoned {
            if let Err(e) = self.withdraw_by(&dir, owner, Withdrawer::Heartbeat).await {
                tracing::debug!(backend = NAME, error = %e, "a contender is still to withdraw");
            }
        }
    }
}

/// Who withdraws a contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withdrawer {
    /// Its holder or waiter (a release, a resignation, giving up).
    Holder,
    /// A heartbeat finishing a withdrawal that failed.
    Heartbeat,
}

/// Numbers withdrawal claims.
static NEXT_CLAIM: AtomicU64 = AtomicU64::new(1);

/// Claims `owner`'s contender under `dir` for a withdrawal: marks it abandoned (so that a
/// failed withdrawal is finished by heartbeats) and under way, by a new claim number. A
/// heartbeat claims only a contender still abandoned and with no withdrawal under way, so that
/// a release never hears "already gone" because a heartbeat deleted its node first.
fn claim(
    contenders: &mut HashMap<OwnerToken, Contender>,
    dir: &str,
    owner: OwnerToken,
    by: Withdrawer,
) -> Option<(Contender, u64)> {
    let contender = contenders.get_mut(&owner).filter(|c| c.dir == dir)?;
    if by == Withdrawer::Heartbeat && (!contender.abandoned || contender.withdrawing.is_some()) {
        return None;
    }
    let claim = NEXT_CLAIM.fetch_add(1, Ordering::Relaxed);
    contender.abandoned = true;
    contender.withdrawing = Some(claim);
    Some((contender.clone(), claim))
}

/// Ends withdrawal `claim` of `owner`'s contender, if that entry is still the one claimed (a
/// new attempt of the same owner records a fresh one, which its own hand-back withdraws):
/// removed if the withdrawal was done, else left to heartbeats.
fn end_claim(
    contenders: &mut HashMap<OwnerToken, Contender>,
    owner: OwnerToken,
    claim: u64,
    withdrawn: bool,
) {
    let Some(contender) = contenders.get_mut(&owner) else {
        return;
    };
    if contender.withdrawing != Some(claim) {
        return;
    }
    if withdrawn {
        contenders.remove(&owner);
    } else {
        contender.withdrawing = None;
    }
}

/// A claim under way; ends it when dropped (done, failed, or cut off).
struct Claimed<'a> {
    contenders: &'a Mutex<HashMap<OwnerToken, Contender>>,
    owner: OwnerToken,
    claim: u64,
    withdrawn: bool,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let mut contenders = self.contenders.lock().unwrap_or_else(|e| e.into_inner());
        end_claim(&mut contenders, self.owner, self.claim, self.withdrawn);
    }
}

/// The abandoned contenders no withdrawal is under way for, with their lock's node.
fn unclaimed_abandoned(contenders: &HashMap<OwnerToken, Contender>) -> Vec<(OwnerToken, String)> {
    contenders
        .iter()
        .filter(|(_, c)| c.abandoned && c.withdrawing.is_none())
        .map(|(owner, c)| (*owner, c.dir.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contender(dir: &str) -> Contender {
        Contender {
            dir: dir.to_owned(),
            node: Some("n".into()),
            czxid: 1,
            predecessor: None,
            session: 7,
            abandoned: false,
            withdrawing: None,
        }
    }

    #[test]
    fn a_heartbeat_leaves_a_withdrawal_under_way_alone_and_finishes_a_failed_one() {
        let (owner, other) = (OwnerToken::generate(), OwnerToken::generate());
        let mut contenders = HashMap::from([(owner, contender("/l")), (other, contender("/l"))]);
        assert!(
            unclaimed_abandoned(&contenders).is_empty(),
            "nobody gave up"
        );
        assert!(
            claim(&mut contenders, "/l", owner, Withdrawer::Heartbeat).is_none(),
            "a heartbeat withdraws only what was given up"
        );
        // A release begins: a heartbeat now must neither list nor claim it.
        let (_, release) = claim(&mut contenders, "/l", owner, Withdrawer::Holder).unwrap();
        assert!(unclaimed_abandoned(&contenders).is_empty());
        assert!(claim(&mut contenders, "/l", owner, Withdrawer::Heartbeat).is_none());
        // The release failed (no answer), or was cut off: the next heartbeat finishes it.
        end_claim(&mut contenders, owner, release, false);
        assert_eq!(
            unclaimed_abandoned(&contenders),
            vec![(owner, "/l".to_owned())]
        );
        let (_, beat) = claim(&mut contenders, "/l", owner, Withdrawer::Heartbeat).unwrap();
        assert!(unclaimed_abandoned(&contenders).is_empty());
        end_claim(&mut contenders, owner, beat, true);
        assert!(!contenders.contains_key(&owner), "withdrawn");
        // Another lock's node is not this contender's, and is left as it is.
        assert!(claim(&mut contenders, "/m", other, Withdrawer::Holder).is_none());
        assert!(!contenders[&other].abandoned);
    }

    #[test]
    fn a_claims_end_leaves_an_entry_recorded_anew_meanwhile() {
        let owner = OwnerToken::generate();
        let mut contenders = HashMap::from([(owner, contender("/l"))]);
        // A waiter giving up claims its contender while its attempt is still creating the node;
        // the attempt then records the node made, afresh.
        let (_, leave) = claim(&mut contenders, "/l", owner, Withdrawer::Holder).unwrap();
        contenders.insert(owner, contender("/l"));
        end_claim(&mut contenders, owner, leave, true);
        assert!(
            contenders.contains_key(&owner),
            "the node recorded afresh must stay for the attempt's own hand-back"
        );
        end_claim(&mut contenders, owner, leave, false);
        assert_eq!(contenders[&owner].withdrawing, None);
    }

    #[test]
    fn a_withdrawal_cut_off_leaves_its_contender_to_heartbeats() {
        let owner = OwnerToken::generate();
        let contenders = Mutex::new(HashMap::from([(owner, contender("/l"))]));
        let (_, claim) = claim(
            &mut contenders.lock().unwrap(),
            "/l",
            owner,
            Withdrawer::Holder,
        )
        .unwrap();
        // The future holding the claim is dropped mid-delete (a timeout around a hand-back).
        drop(Claimed {
            contenders: &contenders,
            owner,
            claim,
            withdrawn: false,
        });
        let contenders = contenders.lock().unwrap();
        assert_eq!(
            unclaimed_abandoned(&contenders),
            vec![(owner, "/l".to_owned())]
        );
    }
}
