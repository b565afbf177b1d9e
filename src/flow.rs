//! Identity: endpoints, the 4-tuple that names a flow, and the two roles.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One side of a TCP flow: an IP address and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint(pub SocketAddr);

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint(SocketAddr::new(ip, port))
    }
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

impl fmt::Display for Endpoint {
    /// `10.0.0.1:80` or `[fd00::1]:80`, as `ss` and Wireshark print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Endpoint", 2)?;
        st.serialize_field("ip", &self.ip().to_string())?;
        st.serialize_field("port", &self.port())?;
        st.end()
    }
}

/// The unordered pair of endpoints that names a flow in both directions:
/// `a` is always the smaller endpoint, so a segment and its reply map to the
/// same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: Endpoint,
    pub b: Endpoint,
}

impl FlowKey {
    pub fn new(x: Endpoint, y: Endpoint) -> FlowKey {
        if x <= y {
            FlowKey { a: x, b: y }
        } else {
            FlowKey { a: y, b: x }
        }
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
        let c = Endpoint("10.0.0.1:40000".parse().unwrap());
        let s = Endpoint("10.0.0.2:80".parse().unwrap());
        assert_eq!(FlowKey::new(c, s), FlowKey::new(s, c));
    }

    #[test]
    fn ipv6_endpoint_prints_in_brackets() {
        let e = Endpoint("[fd00::1]:443".parse().unwrap());
        assert_eq!(e.to_string(), "[fd00::1]:443");
    }
}
