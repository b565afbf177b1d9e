//! Identity: endpoints, the 4-tuple that names a flow, and the two roles.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One side of a TCP flow: an IP address and a port. 20 bytes, where a
/// `SocketAddr` takes 32 (it has room for an IPv6 flow label and scope id,
/// which no endpoint of a capture carries): every segment carries two, and
/// the segments, their facts and the records are copied from thread to
/// thread. Ordered as `SocketAddr`s are (IPv4 before IPv6, then address,
/// then port) and printed as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    ip: IpAddr,
    port: u16,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint { ip, port }
    }
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl From<SocketAddr> for Endpoint {
    /// The address and port (an IPv6 flow label and scope id are dropped).
    fn from(a: SocketAddr) -> Endpoint {
        Endpoint::new(a.ip(), a.port())
    }
}

impl std::str::FromStr for Endpoint {
    type Err = std::net::AddrParseError;

    /// `10.0.0.1:80` or `[fd00::1]:80`.
    fn from_str(s: &str) -> Result<Endpoint, Self::Err> {
        s.parse::<SocketAddr>().map(Endpoint::from)
    }
}

impl fmt::Display for Endpoint {
    /// `10.0.0.1:80` or `[fd00::1]:80`, as `ss` and Wireshark print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SocketAddr::new(self.ip, self.port))
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Endpoint", 2)?;
        st.serialize_field("ip", &Collected(self.ip()))?;
        st.serialize_field("port", &self.port())?;
        st.end()
    }
}

/// Serializes a value as the string its `Display` prints, written straight
/// into the output (no string per address).
struct Collected<T>(T);

impl<T: fmt::Display> Serialize for Collected<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The unordered pair of endpoints that names a flow in both directions:
/// the smaller endpoint first, so a segment and its reply map to the same
/// key. Stored as plain words (40 bytes, not two 32-byte socket addresses)
/// because it is hashed and compared for every segment: the connection
/// table's entries then fit a cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Each endpoint's address as an IPv6 address (IPv4 mapped), high and
    /// low 64 bits.
    ips: [[u64; 2]; 2],
    /// Each endpoint's port, with bit 16 set for IPv6 so that an IPv4
    /// address and its IPv4-mapped IPv6 form stay different flows.
    ports: [u32; 2],
}

impl FlowKey {
    pub fn new(x: Endpoint, y: Endpoint) -> FlowKey {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        let (ia, pa) = words(a);
        let (ib, pb) = words(b);
        FlowKey {
            ips: [ia, ib],
            ports: [pa, pb],
        }
    }
}

/// A [`FlowKey`] of two IPv4 endpoints in 12 bytes: the connection table
/// keeps IPv4 flows under these, so that an entry (key and slot) takes 40
/// bytes instead of 64 for the flows nearly every capture has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey4 {
    ips: [u32; 2],
    ports: [u16; 2],
}

impl std::hash::Hash for FlowKey4 {
    /// Two words into the hasher.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.ips[0]) << 32 | u64::from(self.ips[1]));
        state.write_u32(u32::from(self.ports[0]) << 16 | u32::from(self.ports[1]));
    }
}

/// The high 32 bits of an IPv4-mapped IPv6 address's low 64 (`::ffff:0:0/96`).
const MAPPED: u64 = 0xffff;

impl FlowKey {
    /// The key of two IPv4 endpoints given as their addresses' bits and
    /// their ports: [`FlowKey::new`] of the two endpoints, made from the
    /// header's words without building them (for the decoder's fast path).
    pub fn of_v4(x: (u32, u16), y: (u32, u16)) -> FlowKey {
        // Endpoints order IPv4 by address, then port, as these tuples do.
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        let word = |ip: u32| [0, MAPPED << 32 | u64::from(ip)];
        FlowKey {
            ips: [word(a.0), word(b.0)],
            ports: [u32::from(a.1), u32::from(b.1)],
        }
    }

    /// The key in 12 bytes, when both endpoints are IPv4.
    ///
    /// Read off the words, not through [`std::net::Ipv6Addr::to_ipv4_mapped`]: the
    /// tracker asks for every segment, and that way took about a hundred
    /// instructions a call.
    pub fn v4(&self) -> Option<FlowKey4> {
        // An IPv4 endpoint: no IPv6 bit on its port, and its address
        // ::ffff:a.b.c.d (80 zero bits, 16 one bits, the IPv4 address).
        // Both endpoints tested at once, without a branch each.
        let [[high0, low0], [high1, low1]] = self.ips;
        let v4 = (self.ports[0] | self.ports[1]) & (1 << 16) == 0
            && high0 | high1 == 0
            && (low0 >> 32) & (low1 >> 32) == MAPPED
            && (low0 >> 32) | (low1 >> 32) == MAPPED;
        v4.then_some(FlowKey4 {
            ips: [low0 as u32, low1 as u32],
            ports: [self.ports[0] as u16, self.ports[1] as u16],
        })
    }
}

impl From<FlowKey4> for FlowKey {
    fn from(k: FlowKey4) -> FlowKey {
        let word = |ip: u32| {
            let bits = std::net::Ipv4Addr::from_bits(ip).to_ipv6_mapped().to_bits();
            [(bits >> 64) as u64, bits as u64]
        };
        FlowKey {
            ips: [word(k.ips[0]), word(k.ips[1])],
            ports: [u32::from(k.ports[0]), u32::from(k.ports[1])],
        }
    }
}

impl FlowKey {
    /// The two endpoints back, lower first (the order of [`FlowKey::new`]).
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (
            endpoint(self.ips[0], self.ports[0]),
            endpoint(self.ips[1], self.ports[1]),
        )
    }
}

/// The key's words as an endpoint (the inverse of [`words`]).
fn endpoint(ip: [u64; 2], port: u32) -> Endpoint {
    let bits = (u128::from(ip[0]) << 64) | u128::from(ip[1]);
    let v6 = std::net::Ipv6Addr::from_bits(bits);
    let ip = if port & (1 << 16) != 0 {
        IpAddr::V6(v6)
    } else {
        IpAddr::V4(
            v6.to_ipv4_mapped()
                .expect("an IPv4 key word is IPv4-mapped"),
        )
    };
    Endpoint::new(ip, port as u16)
}

/// An endpoint as the key's words.
fn words(e: Endpoint) -> ([u64; 2], u32) {
    let (bits, v6) = match e.ip() {
        IpAddr::V4(ip) => (ip.to_ipv6_mapped().to_bits(), 0),
        IpAddr::V6(ip) => (ip.to_bits(), 1 << 16),
    };
    ([(bits >> 64) as u64, bits as u64], u32::from(e.port()) | v6)
}

impl std::hash::Hash for FlowKey {
    /// Five words into the hasher; the derived hash would add slice
    /// lengths and go through the byte path.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.ips[0][0]);
        state.write_u64(self.ips[0][1]);
        state.write_u64(self.ips[1][0]);
        state.write_u64(self.ips[1][1]);
        state.write_u64(u64::from(self.ports[0]) << 32 | u64::from(self.ports[1]));
    }
}

/// The role a side plays: the client sent the first SYN (or is inferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    /// Index into per-side arrays: client 0, server 1.
    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_key_is_the_same_in_both_directions() {
        let c = "10.0.0.1:40000".parse::<Endpoint>().unwrap();
        let s = "10.0.0.2:80".parse::<Endpoint>().unwrap();
        assert_eq!(FlowKey::new(c, s), FlowKey::new(s, c));
    }

    #[test]
    fn ipv4_and_its_mapped_ipv6_form_are_different_flows() {
        let v4 = "10.0.0.1:40000".parse::<Endpoint>().unwrap();
        let mapped = "[::ffff:10.0.0.1]:40000".parse::<Endpoint>().unwrap();
        let s = "10.0.0.2:80".parse::<Endpoint>().unwrap();
        let s6 = "[::ffff:10.0.0.2]:80".parse::<Endpoint>().unwrap();
        assert_ne!(FlowKey::new(v4, s), FlowKey::new(mapped, s6));
        assert_ne!(FlowKey::new(v4, s), FlowKey::new(v4, s6));
    }

    #[test]
    fn flow_key_tells_ports_and_directions_apart() {
        let c = "10.0.0.1:40000".parse::<Endpoint>().unwrap();
        let c2 = "10.0.0.1:40001".parse::<Endpoint>().unwrap();
        let s = "10.0.0.2:80".parse::<Endpoint>().unwrap();
        assert_ne!(FlowKey::new(c, s), FlowKey::new(c2, s));
        assert_ne!(FlowKey::new(c, s), FlowKey::new(c, c2));
    }

    #[test]
    fn ipv6_endpoint_prints_in_brackets() {
        let e = "[fd00::1]:443".parse::<Endpoint>().unwrap();
        assert_eq!(e.to_string(), "[fd00::1]:443");
    }

    fn socket_addr() -> impl proptest::strategy::Strategy<Value = SocketAddr> {
        use proptest::prelude::*;
        // Few distinct addresses and ports, so that ties in each are common.
        let v4 = (0u32..4, 0u16..4).prop_map(|(a, p)| {
            SocketAddr::new(
                IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | a)),
                80 + p,
            )
        });
        let v6 = (0u128..4, 0u16..4).prop_map(|(a, p)| {
            SocketAddr::new(
                IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8 << 96 | a)),
                80 + p,
            )
        });
        prop_oneof![v4, v6]
    }

    proptest::proptest! {
        /// An endpoint sorts, compares and prints as the socket address it
        /// was made from (reports sort and print endpoints; they were
        /// `SocketAddr`s).
        #[test]
        fn an_endpoint_sorts_and_prints_as_its_socket_address(a in socket_addr(), b in socket_addr()) {
            let (x, y) = (Endpoint::from(a), Endpoint::from(b));
            proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            proptest::prop_assert_eq!(x == y, a == b);
            proptest::prop_assert_eq!(x.to_string(), a.to_string());
            proptest::prop_assert_eq!(x.to_string().parse::<Endpoint>().unwrap(), x);
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn a_key_gives_its_endpoints_back_lower_first() {
        let a = "10.0.0.2:80".parse::<Endpoint>().unwrap();
        let b = "10.0.0.10:40000".parse::<Endpoint>().unwrap();
        assert_eq!(FlowKey::new(b, a).endpoints(), (a, b));
        let c = "[::ffff:10.0.0.2]:80".parse::<Endpoint>().unwrap();
        let d = "[2001:db8::1]:443".parse::<Endpoint>().unwrap();
        assert_eq!(FlowKey::new(d, c).endpoints(), (c, d));
        assert_ne!(FlowKey::new(a, b), FlowKey::new(c, b));
        // IPv4 pairs have a 12-byte key that gives the same key back; an
        // IPv4-mapped IPv6 address is no IPv4 endpoint.
        let k = FlowKey::new(b, a);
        assert_eq!(FlowKey::from(k.v4().unwrap()), k);
        assert_eq!(k.v4().unwrap().ips, [0x0a00_0002, 0x0a00_000a]);
        assert_eq!(k.v4().unwrap().ports, [80, 40000]);
        assert_eq!(FlowKey::new(c, a).v4(), None);
        assert_eq!(FlowKey::new(d, a).v4(), None);
        assert_ne!(FlowKey::new(a, b).v4(), FlowKey::new(b, b).v4());
        assert_eq!(std::mem::size_of::<FlowKey4>(), 12);
    }

    use proptest::prelude::*;

    fn v4_endpoint() -> impl Strategy<Value = (u32, u16)> {
        // Few addresses and ports, so that equal ones come up often.
        (
            prop_oneof![0u32..4, Just(u32::MAX), any::<u32>()],
            prop_oneof![0u16..4, Just(u16::MAX), any::<u16>()],
        )
    }

    fn endpoint_of((ip, port): (u32, u16)) -> Endpoint {
        Endpoint::new(IpAddr::V4(std::net::Ipv4Addr::from_bits(ip)), port)
    }

    proptest! {
        /// The fast path's key is `FlowKey::new`'s, and its 12-byte form
        /// holds the same endpoints.
        #[test]
        fn of_v4_is_new_of_the_endpoints(x in v4_endpoint(), y in v4_endpoint()) {
            let key = FlowKey::of_v4(x, y);
            prop_assert_eq!(key, FlowKey::new(endpoint_of(x), endpoint_of(y)));
            prop_assert_eq!(FlowKey::from(key.v4().unwrap()), key);
        }

        /// `v4` takes exactly the IPv4 endpoints: IPv6 ones, IPv4-mapped
        /// included, keep the whole key.
        #[test]
        fn v4_is_some_for_ipv4_pairs_only(
            x in any::<[u8; 16]>(), y in any::<[u8; 16]>(),
            mx in any::<bool>(), my in any::<bool>(),
            v4x in any::<bool>(), v4y in any::<bool>(),
            px in any::<u16>(), py in any::<u16>(),
        ) {
            let ip = |b: [u8; 16], mapped: bool, v4: bool| {
                let mut b = b;
                if mapped {
                    b[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
                }
                let v6 = Ipv6Addr::from(b);
                match v6.to_ipv4_mapped() {
                    Some(v4addr) if v4 => IpAddr::V4(v4addr),
                    _ => IpAddr::V6(v6),
                }
            };
            let (a, b) = (ip(x, mx, v4x), ip(y, my, v4y));
            let key = FlowKey::new(Endpoint::new(a, px), Endpoint::new(b, py));
            prop_assert_eq!(key.v4().is_some(), a.is_ipv4() && b.is_ipv4());
            if let Some(k4) = key.v4() {
                prop_assert_eq!(FlowKey::from(k4), key);
            }
        }
    }
}
