//! A proxy's two legs paired: each client-side connection (end user → proxy frontend) with the
//! server-side connection the proxy opened for it (proxy → backend), so that what a TIME_WAIT
//! collision cost a backend connection is counted against the end users' requests.
//!
//! Without a vendor trailer naming the peer flow, the pairing rests on timing and order. A
//! proxy opens its backend connection right after the request arrives on the frontend (HAProxy
//! in mode http once it has the request's headers; in mode tcp right after the accept, before
//! any data), and serves requests in the order they came (HAProxy's event loop does): so each
//! backend SYN is paired with the oldest earlier frontend request (the originator's first
//! payload, or the handshake's end when it sent none) not paired yet, one to one, in capture
//! order, within a window before it: [`MAX_REQUEST_TO_SYN_NS`] at first, then, once the
//! frontend's sure pairs have shown the proxy's own delay, [`WINDOW_PER_P99`] times their 99th
//! percentile (at least [`MIN_WINDOW_NS`]; [`Frontends::learn_delay`]). The frontend and the
//! backend are connections to different services (responder address and port) from different
//! originators (the end user's address is not the proxy's); nothing else is assumed of the
//! addresses, so a proxy with one interface or two is paired alike.
//!
//! A pair's confidence is 1/k, where k is the number of frontend requests that could have
//! caused its backend SYN (unpaired, within the window before it; counted up to
//! [`AMBIGUITY_COUNTED`]): 1 when a single request was waiting, 1/2 when two were. The other
//! requests of such a choice keep that doubt to their own pair (were the choice wrong, their
//! pair would be too). Timing cannot tell apart two requests waiting at once: the confidence
//! is what the pairing would be worth were the proxy to serve them in any order; in order, as
//! HAProxy does, it does better (the lab's haproxy-busy scenario: 4 end users at once). A
//! request the proxy never forwarded (answered itself, or the client gave up) is taken for the
//! next one's while it is inside the window, with the next requests waiting beside it: those
//! pairs' confidence is below 1; the learnt window keeps that to the proxy's own delay.
//!
//! Pairs of two services count as a proxy's legs only when at least [`MIN_PAIRS`] of them
//! paired and they hold at least half of the backend service's SYNs: two unrelated services
//! on one capture pair by chance now and then, a proxy's legs pair nearly always. A proxy's
//! services also pair the other way round (its next frontend SYN follows the request it sent
//! on a backend connection by about a request interval); of the two directions, the one with
//! the shorter median delay, the proxy's own, is kept.
//!
//! An F5 BIG-IP says it outright: its Ethernet trailer gives each packet's flow id and the
//! flow id of the connection on its other side ([`NamedFlow`], from the SYN's trailer). Two
//! connections naming each other are paired exactly (confidence 1), whatever their timing,
//! and the virtual server is named.
//!
//! Records leave the tracker as their connections end, out of order: a backend SYN is paired
//! once the records seen reach [`HOLD_NS`] past it (its frontend connection, which usually
//! ends after it, has then come out too) or when more than [`MAX_PENDING`] wait; frontend
//! requests wait [`MAX_REQUEST_TO_SYN_NS`] past the backend SYNs paired. Memory stays within a
//! window of recent connections, at most [`MAX_PENDING`] of each side. Until the
//! capture shows two services whose originators are not all one address (a balancer's capture
//! of one SNAT address, a server's of its own service never do), nothing can pair: the
//! records are only parked, the newest few kept, at the cost of a push each.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use twsleuth_decode::{F5NameId, FrameRef};

use crate::config::SECOND_NS;
use crate::findings::Finished;
use crate::records::{ConnectionRecord, Outcome};
use crate::summary::{LatencyMs, LogHistogram};
use crate::tuple::Endpoint;

/// A backend SYN this long after a frontend request is not paired with it: a proxy queueing
/// a request for longer (HAProxy's `timeout queue`) is beyond what timing can pair.
pub const MAX_REQUEST_TO_SYN_NS: i64 = SECOND_NS;
/// Sure pairs (a single candidate) from which the window is learnt, and after which it is
/// learnt again.
pub const SURE_PAIRS_TO_ADAPT: u32 = 64;
/// The window is this many times the 99th percentile of the sure pairs' delays.
pub const WINDOW_PER_P99: i64 = 4;
/// The window is never shorter: a proxy's scheduling hiccups stay inside it (in the lab's
/// captures HAProxy's request → backend SYN is 0.1 ms as a rule, 11.2 ms at the slowest).
pub const MIN_WINDOW_NS: i64 = 20_000_000;
/// Records of connections that ended this long after a backend SYN are waited for before
/// pairing it: the tracker hands a record over at its next sweep (every 5 s of capture), or
/// once the other capture points' views have had their 20 s to join it.
pub const HOLD_NS: i64 = 60 * SECOND_NS;
/// Candidates of each side kept waiting, at most; beyond, the oldest backend SYN is paired at
/// once and the oldest frontend request dropped (counted).
pub const MAX_PENDING: usize = 1 << 16;
/// Frontend requests counted for a pair's ambiguity, at most (its confidence's floor is the
/// inverse).
pub const AMBIGUITY_COUNTED: u32 = 8;
/// Pairs two services need to count as a proxy's legs.
pub const MIN_PAIRS: u64 = 10;
/// Parked candidates kept after each batch, the newest: what the pairing gets once it starts
/// (at 270 connections a second, the 60 s it waits for records).
const PARKED_KEPT: usize = 1 << 14;
/// Room reserved for parked candidates: those kept, and a batch's (a stretch of 65,536
/// segments holds a few thousand connections).
const PARKED_ROOM: usize = 2 * PARKED_KEPT;
/// Services followed as frontends, and service pairs tallied: a proxy has a few; a capture
/// with more (a client browsing) is not one proxy's.
const MAX_SERVICES: usize = 16;

/// Connections named by F5 trailers and waiting for their peer, at most; beyond, a named
/// connection is paired by timing.
const MAX_NAMED_WAITING: usize = 1 << 20;

/// A connection's flow through an F5 BIG-IP, from its SYN's trailer (medium noise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedFlow {
    /// The flow id of this connection.
    pub flow_id: u64,
    /// The flow id of the connection on the BIG-IP's other side (0: none).
    pub peer_flow_id: u64,
    /// The virtual server the trailer names.
    pub virtual_server: Option<F5NameId>,
}

/// One connection as a leg: the one record fields the pairing needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The connection's record ([`ConnectionRecord::uid`]).
    pub uid: u64,
    /// The originator.
    pub orig: Endpoint,
    /// The responder (the service).
    pub resp: Endpoint,
    /// Its first frame, to open it in Wireshark.
    pub first_frame: FrameRef,
}

impl Leg {
    fn of(c: &ConnectionRecord) -> Leg {
        Leg {
            uid: c.uid,
            orig: c.orig(),
            resp: c.resp(),
            first_frame: c.first_frame,
        }
    }
}

/// A frontend connection and the backend connection paired with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegPair {
    /// The client-side connection (end user → proxy).
    pub frontend: Leg,
    /// The server-side connection the proxy opened for it.
    pub backend: Leg,
    /// The backend's first SYN, nanoseconds since the epoch.
    pub backend_syn_ts_ns: i64,
    /// From the frontend's request to the backend's SYN.
    pub request_to_syn_ns: i64,
    /// How sure the pairing is: 1/k for k requests that could have caused the backend SYN;
    /// 1 for a pair named by a vendor trailer.
    pub confidence: f64,
    /// Paired by the flow ids of F5 trailers, not by timing.
    pub named_by_trailer: bool,
    /// The backend SYN's collision with a TIME_WAIT, if it made one.
    pub backend_collision: Option<Outcome>,
    /// What that collision added to the request: the backend's first SYN → SYN-ACK.
    pub added_ns: Option<i64>,
}

/// A connection as a backend: a SYN waiting to be paired, and what it cost.
#[derive(Clone, Copy, Debug)]
struct Backend {
    leg: Leg,
    collision: Option<Outcome>,
    syn_to_syn_ack_ns: Option<i64>,
}

/// A connection as the pairing sees it, either side.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    connection: Backend,
    /// Its first SYN, when captured: a backend's.
    syn_ns: Option<i64>,
    /// Its request: a frontend's.
    request_ns: Option<i64>,
}

impl Candidate {
    fn of(c: &ConnectionRecord) -> Candidate {
        Candidate {
            connection: Backend {
                leg: Leg::of(c),
                collision: c.collision,
                syn_to_syn_ack_ns: c.syn_to_syn_ack_ns,
            },
            syn_ns: c.syn_ts_ns(),
            // A frontend's request: its first payload, or, with none, the end of its handshake
            // (a proxy in TCP mode connects on accept).
            request_ns: c
                .orig_data_ts_ns
                .or_else(|| Some(c.syn_ts_ns()?.saturating_add(c.handshake_ns?))),
        }
    }

    /// What orders parked candidates: the newest are kept.
    fn age_key(&self) -> (i64, u64) {
        (
            self.syn_ns.or(self.request_ns).unwrap_or(i64::MIN),
            self.connection.leg.uid,
        )
    }
}

/// A service (responder address and port) and who connected to it.
#[derive(Clone, Copy, Debug)]
struct ServiceSeen {
    service: Endpoint,
    /// Its first originator's address.
    originator: IpAddr,
    /// Another originator connected to it too.
    several: bool,
}

/// A connection an F5 trailer named, waiting for the connection it names as its peer.
#[derive(Clone, Copy, Debug)]
struct Named {
    connection: Backend,
    syn_ns: i64,
    request_ns: Option<i64>,
    flow: NamedFlow,
}

/// A frontend request waiting for its backend SYN.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    leg: Leg,
    /// Below 1 once another backend SYN could have been this request's and was paired with
    /// another request: 1/k for the k requests that SYN could have been for.
    confidence: f64,
}

/// Frontend requests of one service waiting for a backend SYN, by (request time, uid).
#[derive(Debug)]
struct Frontends {
    service: Endpoint,
    waiting: BTreeMap<(i64, u64), Waiting>,
    /// How long before a backend SYN its request may have come ([`Frontends::learn_delay`]).
    window_ns: i64,
    /// Request → SYN delays of this service's pairs that had a single candidate.
    sure_delays: Option<LogHistogram>,
    /// Sure pairs since the window was last set.
    sure_since_learnt: u32,
    /// Frontend requests that were never paired.
    unpaired: u64,
}

impl Frontends {
    /// Learns the proxy's own delay from this service's pairs that had a single candidate: once
    /// [`SURE_PAIRS_TO_ADAPT`] of them have come, a request waits at most
    /// [`WINDOW_PER_P99`] times their 99th percentile (at least [`MIN_WINDOW_NS`], at most
    /// [`MAX_REQUEST_TO_SYN_NS`]), set again after as many more. A request the proxy never
    /// forwarded (it answered it itself, the client gave up) would otherwise be taken, oldest
    /// first, for the next ones' for up to a second, each pair shifted by one.
    fn learn_delay(&mut self, delay_ns: i64) {
        let delays = self
            .sure_delays
            .get_or_insert_with(|| LogHistogram::new(LogHistogram::COARSE));
        delays.add(delay_ns);
        self.sure_since_learnt += 1;
        if self.sure_since_learnt < SURE_PAIRS_TO_ADAPT {
            return;
        }
        self.sure_since_learnt = 0;
        if let Some(p99) = delays.percentile(0.99) {
            self.window_ns = p99
                .saturating_mul(WINDOW_PER_P99)
                .clamp(MIN_WINDOW_NS, MAX_REQUEST_TO_SYN_NS);
        }
    }
}

/// Figures of one frontend service and one backend service paired.
#[derive(Clone, Debug, Serialize)]
pub struct ServicePair {
    /// The proxy's frontend (what end users connect to).
    pub frontend: Endpoint,
    /// The backend server.
    pub backend: Endpoint,
    /// Pairs.
    pub pairs: u64,
    /// Backend SYNs to that server, paired or not.
    pub backend_syns: u64,
    /// Mean confidence of the pairs.
    pub confidence: f64,
    /// Requests whose backend connection collided with a TIME_WAIT.
    pub requests_slowed: u64,
    /// Of those, pairs named by F5 trailers.
    pub named_by_trailer: u64,
    /// The F5 virtual server the trailers name (capture-derived text: escape it before
    /// showing it).
    pub virtual_server: Option<String>,
    /// Whether these count as a proxy's legs: pairs named by trailers, or [`MIN_PAIRS`]
    /// pairs by timing holding half the backend's SYNs.
    pub proxy: bool,
    #[serde(skip)]
    virtual_server_id: Option<F5NameId>,
    #[serde(skip)]
    confidence_sum: f64,
    #[serde(skip)]
    added: LogHistogram,
    #[serde(skip)]
    request_to_syn: LogHistogram,
}

/// The key figures of the legs paired.
#[derive(Clone, Debug, Serialize)]
pub struct LegSummary {
    /// Frontend connections paired with a backend connection (of the service pairs that count
    /// as a proxy's legs).
    pub pairs: u64,
    /// Mean confidence of the pairs.
    pub confidence: f64,
    /// Of the pairs, those named by F5 trailers (exact).
    pub named_by_trailer: u64,
    /// Connections named by F5 trailers whose peer flow never showed.
    pub named_without_peer: u64,
    /// End users' requests whose backend connection collided with a TIME_WAIT.
    pub requests_slowed: u64,
    /// What those collisions added to the requests (the backend's first SYN → SYN-ACK).
    pub added_latency_ms: LatencyMs,
    /// From a frontend request to its backend SYN: the proxy's own delay.
    pub request_to_syn_ms: LatencyMs,
    /// Backend SYNs to those servers left unpaired.
    pub unpaired_backends: u64,
    /// Frontend requests to those frontends left unpaired.
    pub unpaired_frontends: u64,
    /// Frontend requests dropped before a backend SYN could come, over [`MAX_PENDING`].
    pub frontends_dropped: u64,
    /// Each frontend service and backend service that paired, proxies first.
    pub services: Vec<ServicePair>,
}

impl LegSummary {
    /// The summary, where some legs were paired.
    pub fn paired(self) -> Option<LegSummary> {
        (self.pairs > 0).then_some(self)
    }

    /// Names the virtual servers of the service pairs (ids resolved by `name`).
    pub fn name_virtual_servers(&mut self, name: impl Fn(F5NameId) -> String) {
        for service_pair in &mut self.services {
            service_pair.virtual_server = service_pair.virtual_server_id.map(&name);
        }
    }

    /// Whether `pair` belongs to a service pair that counts as a proxy's legs.
    pub fn counts(&self, pair: &LegPair) -> bool {
        self.services
            .iter()
            .any(|s| s.proxy && s.frontend == pair.frontend.resp && s.backend == pair.backend.resp)
    }
}

/// Pairs the legs of proxies from the records as they leave the tracker ([`LegPairer::add`]
/// per batch), in bounded memory; see the module's documentation for the rules.
#[derive(Debug)]
pub struct LegPairer {
    /// Services seen and their originators, until two of them could be a proxy's legs.
    services_seen: Vec<ServiceSeen>,
    /// Two services seen could be a proxy's legs: their originators are not all one address.
    legs_possible: bool,
    /// The latest candidates, while no two services could be a proxy's legs (a balancer's
    /// capture of one SNAT address, a server's of one service): kept in a vector, the newest
    /// [`PARKED_KEPT`] after each batch, so that such captures cost a push per record.
    parked: Vec<Candidate>,
    /// Backend SYNs waiting, by (SYN time, uid).
    backends: BTreeMap<(i64, u64), Backend>,
    /// F5 flows of connections whose records have not come yet, by uid.
    named_flows: FxHashMap<u64, NamedFlow>,
    /// Connections named by F5 trailers waiting for their peer, by flow id.
    named_waiting: FxHashMap<u64, Named>,
    frontends: Vec<Frontends>,
    /// The latest end of a connection handed over: how far the records have come.
    records_until_ns: i64,
    /// Backend SYNs seen per backend service.
    backend_syns: Vec<(Endpoint, u64)>,
    service_pairs: Vec<ServicePair>,
    frontends_dropped: u64,
    /// Pairs made since [`LegPairer::take_pairs`] was last called, when kept.
    pairs: Vec<LegPair>,
    keep_pairs: bool,
}

impl LegPairer {
    /// A pairer that keeps each pair for [`LegPairer::take_pairs`] (an export), or only the
    /// figures.
    pub fn new(keep_pairs: bool) -> LegPairer {
        LegPairer {
            services_seen: Vec::new(),
            legs_possible: false,
            parked: Vec::new(),
            backends: BTreeMap::new(),
            named_flows: FxHashMap::default(),
            named_waiting: FxHashMap::default(),
            frontends: Vec::new(),
            records_until_ns: i64::MIN,
            backend_syns: Vec::new(),
            service_pairs: Vec::new(),
            frontends_dropped: 0,
            pairs: Vec::new(),
            keep_pairs,
        }
    }

    /// Takes a batch of records: the same batches give the same pairs whatever their order
    /// within each batch (while fewer than 2^20 connections named by F5 trailers wait at
    /// once).
    pub fn add(&mut self, batch: &Finished) {
        for c in &batch.connections {
            self.records_until_ns = self
                .records_until_ns
                .max(c.ts_ns.saturating_add(c.duration_ns));
            let candidate = Candidate::of(c);
            if let Some(flow) = self.named_flows.remove(&c.uid) {
                if self.pair_named(candidate, flow) {
                    continue;
                }
            }
            self.see_service(c);
            if self.parked.capacity() == 0 {
                self.parked.reserve_exact(PARKED_ROOM);
            }
            self.parked.push(candidate);
        }
        if self.legs_possible {
            for candidate in std::mem::take(&mut self.parked) {
                self.consider(candidate);
            }
        } else if self.parked.len() > PARKED_KEPT {
            let older = self.parked.len() - PARKED_KEPT;
            self.parked
                .select_nth_unstable_by_key(older, Candidate::age_key);
            self.parked.drain(..older);
        }
        self.pair_until(self.records_until_ns.saturating_sub(HOLD_NS));
        // Over the caps, after the whole batch: the oldest go first whatever the batch's order.
        while self.backends.len() > MAX_PENDING {
            if let Some(((syn_ns, _), oldest)) = self.backends.pop_first() {
                self.pair(syn_ns, oldest);
            }
        }
        let mut waiting: usize = self.frontends.iter().map(|f| f.waiting.len()).sum();
        while waiting > MAX_PENDING {
            let oldest = self
                .frontends
                .iter_mut()
                .filter_map(|f| Some((*f.waiting.first_key_value()?.0, f)))
                .min_by_key(|(key, _)| *key);
            if let Some((_, frontends)) = oldest {
                frontends.waiting.pop_first();
            }
            waiting -= 1;
            self.frontends_dropped += 1;
        }
    }

    /// The F5 flows of connections, by the uid their records will have (the index of their
    /// SYN's frame): given before those records come.
    pub fn name_flows(&mut self, flows: impl IntoIterator<Item = (u64, NamedFlow)>) {
        for (uid, flow) in flows {
            if self.named_flows.len() < MAX_NAMED_WAITING {
                self.named_flows.insert(uid, flow);
            }
        }
    }

    /// The pairs made since last asked (none unless made with `keep_pairs`).
    pub fn take_pairs(&mut self) -> Vec<LegPair> {
        std::mem::take(&mut self.pairs)
    }

    /// Notes the service a connection went to and from where. Two services can be a proxy's
    /// legs only if their originators are not all one address (the end users' is not the
    /// proxy's).
    fn see_service(&mut self, c: &ConnectionRecord) {
        if self.legs_possible {
            return;
        }
        let service = Endpoint {
            ip: c.resp_h,
            port: c.resp_p,
        };
        let seen = &mut self.services_seen;
        match seen.iter().position(|s| s.service == service) {
            Some(at) if seen[at].several || seen[at].originator == c.orig_h => return,
            Some(at) => seen[at].several = true,
            None if seen.len() < MAX_SERVICES => {
                seen.push(ServiceSeen {
                    service,
                    originator: c.orig_h,
                    several: false,
                });
            }
            // More services than a proxy has: let the pairing decide.
            None => {
                self.legs_possible = true;
                return;
            }
        }
        let seen = &self.services_seen;
        self.legs_possible = seen.iter().enumerate().any(|(i, a)| {
            seen[i + 1..]
                .iter()
                .any(|b| a.several || b.several || a.originator != b.originator)
        });
    }

    /// Puts a connection where the pairing looks: as a frontend request waiting, and as a
    /// backend SYN waiting.
    fn consider(&mut self, candidate: Candidate) {
        let leg = candidate.connection.leg;
        if let Some(request_ns) = candidate.request_ns {
            self.wait_as_frontend(leg, request_ns);
        }
        if let Some(syn_ns) = candidate.syn_ns {
            self.backends
                .insert((syn_ns, leg.uid), candidate.connection);
        }
    }

    fn wait_as_frontend(&mut self, leg: Leg, request_ns: i64) {
        let at = match self.frontends.iter().position(|f| f.service == leg.resp) {
            Some(at) => at,
            None if self.frontends.len() < MAX_SERVICES => {
                self.frontends.push(Frontends {
                    service: leg.resp,
                    waiting: BTreeMap::new(),
                    window_ns: MAX_REQUEST_TO_SYN_NS,
                    sure_delays: None,
                    sure_since_learnt: 0,
                    unpaired: 0,
                });
                self.frontends.len() - 1
            }
            None => return,
        };
        let waiting = Waiting {
            leg,
            confidence: 1.0,
        };
        self.frontends[at]
            .waiting
            .insert((request_ns, leg.uid), waiting);
    }

    /// Pairs a connection an F5 trailer named with the one it names, once both came: the
    /// earlier SYN is the end user's (the BIG-IP opens its server-side flow after). Returns
    /// false for a connection the trailer gives no peer, left to the pairing by timing.
    fn pair_named(&mut self, candidate: Candidate, flow: NamedFlow) -> bool {
        let Some(syn_ns) = candidate.syn_ns else {
            return false;
        };
        if flow.peer_flow_id == 0 || self.named_waiting.len() >= MAX_NAMED_WAITING {
            return false;
        }
        let named = Named {
            connection: candidate.connection,
            syn_ns,
            request_ns: candidate.request_ns,
            flow,
        };
        let Some(peer) = self.named_waiting.remove(&flow.peer_flow_id) else {
            self.named_waiting.insert(flow.flow_id, named);
            return true;
        };
        let (frontend, backend) =
            if (peer.syn_ns, peer.connection.leg.uid) < (named.syn_ns, named.connection.leg.uid) {
                (peer, named)
            } else {
                (named, peer)
            };
        self.count_backend_syn(backend.connection.leg.resp);
        let request_ns = frontend.request_ns.unwrap_or(frontend.syn_ns);
        let collision = backend.connection.collision;
        let pair = LegPair {
            frontend: frontend.connection.leg,
            backend: backend.connection.leg,
            backend_syn_ts_ns: backend.syn_ns,
            request_to_syn_ns: backend.syn_ns.saturating_sub(request_ns),
            confidence: 1.0,
            named_by_trailer: true,
            backend_collision: collision,
            added_ns: collision.and(backend.connection.syn_to_syn_ack_ns),
        };
        let virtual_server = frontend.flow.virtual_server.or(backend.flow.virtual_server);
        self.tally(&pair, virtual_server);
        if self.keep_pairs {
            self.pairs.push(pair);
        }
        true
    }

    /// Counts a backend SYN to `service`.
    fn count_backend_syn(&mut self, service: Endpoint) {
        let syns = &mut self.backend_syns;
        match syns.iter().position(|(s, _)| *s == service) {
            Some(at) => syns[at].1 += 1,
            None if syns.len() < MAX_SERVICES => syns.push((service, 1)),
            None => {}
        }
    }

    /// Pairs the backend SYNs up to `until_ns`, in order.
    fn pair_until(&mut self, until_ns: i64) {
        while let Some(entry) = self.backends.first_entry() {
            if entry.key().0 > until_ns {
                break;
            }
            let ((syn_ns, _), backend) = entry.remove_entry();
            self.pair(syn_ns, backend);
        }
    }

    /// Pairs one backend SYN with the nearest earlier frontend request waiting, if any.
    fn pair(&mut self, syn_ns: i64, backend: Backend) {
        self.count_backend_syn(backend.leg.resp);
        // The requests that could have caused this SYN, oldest first, at most
        // AMBIGUITY_COUNTED: (position of their service, key).
        let mut candidates: Vec<(usize, (i64, u64))> = Vec::new();
        for (at, frontends) in self.frontends.iter_mut().enumerate() {
            let window_start = syn_ns.saturating_sub(frontends.window_ns);
            // Requests too old for this SYN are too old for every later one.
            while let Some(entry) = frontends.waiting.first_entry() {
                if entry.key().0 >= window_start {
                    break;
                }
                entry.remove();
                frontends.unpaired += 1;
            }
            if frontends.service == backend.leg.resp {
                continue;
            }
            let eligible = frontends
                .waiting
                .range(..=(syn_ns, u64::MAX))
                .filter(|(_, waiting)| waiting.leg.orig.ip != backend.leg.orig.ip)
                .take(AMBIGUITY_COUNTED as usize);
            candidates.extend(eligible.map(|(&key, _)| (at, key)));
        }
        candidates.sort_unstable_by_key(|&(_, key)| key);
        candidates.truncate(AMBIGUITY_COUNTED as usize);
        let Some(&(at, key)) = candidates.first() else {
            return;
        };
        let share = 1.0 / candidates.len() as f64;
        // The others could have been this SYN's: whichever of them is paired later is as
        // doubtful (one wrong pair here makes a second one there).
        for &(other_at, other_key) in &candidates[1..] {
            if let Some(other) = self.frontends[other_at].waiting.get_mut(&other_key) {
                other.confidence = other.confidence.min(share);
            }
        }
        let Some(waiting) = self.frontends[at].waiting.remove(&key) else {
            return;
        };
        let frontend = waiting.leg;
        let added_ns = backend.collision.and(backend.syn_to_syn_ack_ns);
        let pair = LegPair {
            frontend,
            backend: backend.leg,
            backend_syn_ts_ns: syn_ns,
            request_to_syn_ns: syn_ns.saturating_sub(key.0),
            confidence: share.min(waiting.confidence),
            named_by_trailer: false,
            backend_collision: backend.collision,
            added_ns,
        };
        if pair.confidence == 1.0 {
            self.frontends[at].learn_delay(pair.request_to_syn_ns);
        }
        self.tally(&pair, None);
        if self.keep_pairs {
            self.pairs.push(pair);
        }
    }

    fn tally(&mut self, pair: &LegPair, virtual_server: Option<F5NameId>) {
        let (frontend, backend) = (pair.frontend.resp, pair.backend.resp);
        let at = match self
            .service_pairs
            .iter()
            .position(|s| s.frontend == frontend && s.backend == backend)
        {
            Some(at) => at,
            None if self.service_pairs.len() < MAX_SERVICES => {
                self.service_pairs.push(ServicePair {
                    frontend,
                    backend,
                    pairs: 0,
                    backend_syns: 0,
                    confidence: 0.0,
                    requests_slowed: 0,
                    named_by_trailer: 0,
                    virtual_server: None,
                    proxy: false,
                    virtual_server_id: None,
                    confidence_sum: 0.0,
                    added: LogHistogram::new(LogHistogram::FINE),
                    request_to_syn: LogHistogram::new(LogHistogram::FINE),
                });
                self.service_pairs.len() - 1
            }
            None => return,
        };
        let tally = &mut self.service_pairs[at];
        tally.pairs += 1;
        tally.named_by_trailer += u64::from(pair.named_by_trailer);
        tally.virtual_server_id = tally.virtual_server_id.or(virtual_server);
        tally.confidence_sum += pair.confidence;
        tally.request_to_syn.add(pair.request_to_syn_ns);
        if pair.backend_collision.is_some() {
            tally.requests_slowed += 1;
            pair.added_ns.inspect(|&ns| tally.added.add(ns));
        }
    }

    /// Pairs the backend SYNs still waiting and gives the figures. With `pairs`, the pairs
    /// still kept are handed over.
    pub fn finish(mut self) -> (LegSummary, Vec<LegPair>) {
        self.pair_until(i64::MAX);
        let mut added = LogHistogram::new(LogHistogram::FINE);
        let mut request_to_syn = LogHistogram::new(LogHistogram::FINE);
        let mut summary = LegSummary {
            pairs: 0,
            confidence: 0.0,
            named_by_trailer: 0,
            named_without_peer: self.named_waiting.len() as u64,
            requests_slowed: 0,
            added_latency_ms: LatencyMs::default(),
            request_to_syn_ms: LatencyMs::default(),
            unpaired_backends: 0,
            unpaired_frontends: 0,
            frontends_dropped: self.frontends_dropped,
            services: Vec::new(),
        };
        let mut services = std::mem::take(&mut self.service_pairs);
        for service_pair in &mut services {
            service_pair.backend_syns = self
                .backend_syns
                .iter()
                .find(|(service, _)| *service == service_pair.backend)
                .map_or(0, |&(_, count)| count);
            service_pair.confidence = service_pair.confidence_sum / service_pair.pairs as f64;
            let by_timing = service_pair.pairs - service_pair.named_by_trailer;
            service_pair.proxy = service_pair.named_by_trailer > 0
                || (by_timing >= MIN_PAIRS
                    && service_pair.backend_syns >= service_pair.pairs
                    && 2 * service_pair.pairs >= service_pair.backend_syns);
        }
        // A proxy's frontend SYNs also follow, by a request's interval, the requests it sent
        // on its previous backend connections: the two services pair the other way round as
        // well. The proxy's own delay is the short one.
        let median = |s: &ServicePair| s.request_to_syn.percentile(0.5).unwrap_or(i64::MAX);
        let reversed_is_nearer: Vec<bool> = services
            .iter()
            .map(|s| {
                s.named_by_trailer == 0
                    && services.iter().any(|r| {
                        r.proxy
                            && r.frontend == s.backend
                            && r.backend == s.frontend
                            && median(r) < median(s)
                    })
            })
            .collect();
        for (service_pair, reversed) in services.iter_mut().zip(reversed_is_nearer) {
            service_pair.proxy &= !reversed;
        }
        let mut confidence_sum = 0.0;
        let mut frontends_counted: Vec<Endpoint> = Vec::new();
        for service_pair in &services {
            if !service_pair.proxy {
                continue;
            }
            summary.pairs += service_pair.pairs;
            summary.named_by_trailer += service_pair.named_by_trailer;
            summary.requests_slowed += service_pair.requests_slowed;
            summary.unpaired_backends += service_pair.backend_syns - service_pair.pairs;
            if !frontends_counted.contains(&service_pair.frontend) {
                frontends_counted.push(service_pair.frontend);
                summary.unpaired_frontends += self
                    .frontends
                    .iter()
                    .find(|f| f.service == service_pair.frontend)
                    .map_or(0, |f| f.unpaired + f.waiting.len() as u64);
            }
            confidence_sum += service_pair.confidence_sum;
            added.merge(&service_pair.added);
            request_to_syn.merge(&service_pair.request_to_syn);
        }
        summary.services = services;
        summary
            .services
            .sort_by(|a, b| b.proxy.cmp(&a.proxy).then(b.pairs.cmp(&a.pairs)));
        if summary.pairs > 0 {
            summary.confidence = confidence_sum / summary.pairs as f64;
        }
        summary.added_latency_ms = added.latency_ms();
        summary.request_to_syn_ms = request_to_syn.latency_ms();
        let pairs = std::mem::take(&mut self.pairs);
        (summary, pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CloseKind, History, ZeekState};

    const MS: i64 = 1_000_000;

    /// A connection from `orig` to `resp` whose SYN left at `syn_ms` and whose originator
    /// sent its request 1 ms later.
    fn connection(uid: u64, orig: &str, resp: &str, syn_ms: i64) -> ConnectionRecord {
        let endpoint = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let (orig, resp) = (endpoint(orig), endpoint(resp));
        let mut history = History::default();
        b"ShAD".iter().for_each(|&l| history.push(l));
        ConnectionRecord {
            uid,
            ts_ns: syn_ms * MS,
            orig_h: orig.ip(),
            orig_p: orig.port(),
            resp_h: resp.ip(),
            resp_p: resp.port(),
            first_frame: FrameRef::default(),
            last_frame: FrameRef::default(),
            duration_ns: 10 * MS,
            orig_pkts: 3,
            orig_bytes: 100,
            resp_pkts: 2,
            resp_bytes: 0,
            syn_retransmits: 0,
            syn_to_syn_ack_ns: Some(MS / 10),
            handshake_ns: Some(MS / 5),
            orig_data_ts_ns: Some((syn_ms + 1) * MS),
            conn_state: ZeekState::SF,
            history,
            close: CloseKind::FinFin,
            active_closer: None,
            time_wait_start_ns: None,
            reuse_interval_ns: None,
            prev_uid: None,
            collision: None,
            client_side_reuse: false,
            unseen_side: None,
            low_confidence: 0,
            view: Default::default(),
            orig_isn: None,
            other_views: Vec::new(),
        }
    }

    fn pair_all(connections: Vec<ConnectionRecord>) -> (LegSummary, Vec<LegPair>) {
        let mut pairer = LegPairer::new(true);
        pairer.add(&Finished {
            connections,
            collisions: Vec::new(),
        });
        let (summary, mut pairs) = pairer.finish();
        pairs.retain(|p| summary.counts(p));
        (summary, pairs)
    }

    /// A proxy's requests every 40 ms, each followed 2 ms later by its backend SYN; request
    /// `i` of `slow` waits with the next one, so that two wait for one SYN.
    fn proxy(requests: u64, slow: Option<u64>) -> Vec<ConnectionRecord> {
        let mut connections = Vec::new();
        for i in 0..requests {
            let at = i as i64 * 40;
            connections.push(connection(
                2 * i,
                &format!("10.0.0.1:{}", 30000 + i),
                "10.0.1.1:80",
                at,
            ));
            let delay = if slow == Some(i) { 42 } else { 3 };
            connections.push(connection(
                2 * i + 1,
                &format!("10.0.2.1:{}", 40000 + i),
                "10.0.3.1:8080",
                at + delay,
            ));
        }
        connections
    }

    #[test]
    fn each_backend_syn_pairs_with_the_request_just_before_it() {
        let (summary, pairs) = pair_all(proxy(20, None));
        assert_eq!(summary.pairs, 20);
        assert_eq!(summary.confidence, 1.0);
        for pair in &pairs {
            assert_eq!(pair.backend.uid, pair.frontend.uid + 1, "{pair:?}");
            assert_eq!(pair.request_to_syn_ns, 2 * MS);
        }
    }

    #[test]
    fn two_requests_waiting_halve_the_confidence_of_both_pairs() {
        // Request 5's backend SYN leaves 42 ms after it, after request 6 arrived: that SYN
        // finds two requests waiting and takes the older, request 5 (right: the proxy serves in
        // order), with confidence 1/2; request 6, the other that SYN could have been for, is
        // paired next with the same doubt. Every other pair is sure.
        let (summary, pairs) = pair_all(proxy(20, Some(5)));
        assert_eq!(summary.pairs, 20);
        assert!(pairs.iter().all(|p| p.backend.uid == p.frontend.uid + 1));
        let doubtful: Vec<(u64, f64)> = pairs
            .iter()
            .filter(|p| p.confidence < 1.0)
            .map(|p| (p.frontend.uid, p.confidence))
            .collect();
        assert_eq!(doubtful, [(10, 0.5), (12, 0.5)]);
        assert_eq!(summary.confidence, 19.0 / 20.0);
    }

    #[test]
    fn records_parked_before_a_second_service_showed_still_pair() {
        // The frontends' records first (one service, one client: nothing could pair yet, they
        // are parked), the backends' in a later batch.
        let (frontends, backends): (Vec<_>, Vec<_>) =
            proxy(20, None).into_iter().partition(|c| c.uid % 2 == 0);
        let mut pairer = LegPairer::new(false);
        for connections in [frontends, backends] {
            pairer.add(&Finished {
                connections,
                collisions: Vec::new(),
            });
        }
        let (summary, _) = pairer.finish();
        assert_eq!((summary.pairs, summary.confidence), (20, 1.0));
    }

    #[test]
    fn a_request_never_forwarded_shifts_no_pair_once_the_delay_is_learnt() {
        // 200 requests, each forwarded 2 ms after it (and the proxy's delay learnt from the
        // first 64), but request 150, which the proxy answered itself: no backend SYN.
        let mut connections = proxy(200, None);
        connections.retain(|c| c.uid != 2 * 150 + 1);
        let (summary, pairs) = pair_all(connections);
        assert_eq!(summary.pairs, 199);
        assert!(pairs.iter().all(|p| p.backend.uid == p.frontend.uid + 1));
        assert_eq!(summary.confidence, 1.0);
        assert_eq!(summary.unpaired_frontends, 1);
    }

    #[test]
    fn one_service_alone_pairs_nothing() {
        let connections = (0..50)
            .map(|i| {
                connection(
                    i,
                    &format!("10.0.0.1:{}", 30000 + i),
                    "10.0.1.1:80",
                    i as i64 * 10,
                )
            })
            .collect();
        assert_eq!(pair_all(connections).0.pairs, 0);
    }

    #[test]
    fn fewer_than_min_pairs_are_not_a_proxy() {
        let (summary, _) = pair_all(proxy(MIN_PAIRS - 1, None));
        assert_eq!(summary.pairs, 0);
        assert!(summary.services.iter().all(|s| !s.proxy));
    }

    #[test]
    fn named_flows_pair_exactly_whatever_the_timing() {
        // The backend SYN 5 s after its request: beyond timing, named by the trailers.
        let frontend = connection(0, "10.0.0.1:30000", "10.0.1.1:80", 0);
        let backend = connection(1, "10.0.2.1:40000", "10.0.3.1:8080", 5_000);
        let mut pairer = LegPairer::new(true);
        let flow = |flow_id, peer_flow_id| NamedFlow {
            flow_id,
            peer_flow_id,
            virtual_server: None,
        };
        pairer.name_flows([(0, flow(7, 8)), (1, flow(8, 7))]);
        pairer.add(&Finished {
            connections: vec![backend, frontend],
            collisions: Vec::new(),
        });
        let (summary, pairs) = pairer.finish();
        assert_eq!((summary.pairs, summary.named_by_trailer), (1, 1));
        assert_eq!((pairs[0].frontend.uid, pairs[0].backend.uid), (0, 1));
        assert!(pairs[0].named_by_trailer);
    }
}
