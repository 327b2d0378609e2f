//! The SSRF guard: webhook and API URLs come from users, so by default Herald refuses to
//! connect to addresses inside the host's own networks (loopback, private ranges, link-local
//! cloud metadata endpoints, ...).
//!
//! The check runs on the addresses actually connected to, not on the URL's text: a
//! resolver ([`GuardedResolver`]) drops forbidden addresses after DNS resolution, so a
//! public name that resolves to `127.0.0.1` (or re-resolves there later: DNS rebinding) is
//! refused too. IP-literal hosts never reach a resolver, so they are checked when the
//! configuration is built and again before each attempt.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is not a public destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `0.0.0.0`, `::` — connecting there reaches the local host on most systems.
    Unspecified,
    /// `0.0.0.0/8` other than `0.0.0.0`: "this network".
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 unique local `fc00::/7`, deprecated
    /// site-local `fec0::/10`, local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT shared space.
    SharedAddressSpace,
    /// `169.254.0.0/16` (cloud metadata lives at `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`: never
    /// routed, so no real receiver lives there.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`: benchmarking networks.
    Benchmarking,
    /// `240.0.0.0/4`, `192.0.0.0/24`, `100::/64`, IPv4-compatible `::a.b.c.d`: reserved or
    /// deprecated ranges.
    Reserved,
}

impl AddressClass {
    /// A stable short name for error details and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::ThisNetwork => "this-network",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared-address-space (CGNAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class that makes `ip` a forbidden destination, or `None` for a public address.
///
/// IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address, because that is
/// where the packets end up.
pub fn forbidden_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, _, _) => AddressClass::ThisNetwork,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (169, 254, _) => AddressClass::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (192, 0, 0) => AddressClass::Reserved,
        (224..=239, _, _) => AddressClass::Multicast,
        (240..=255, _, _) => AddressClass::Reserved,
        _ => return None,
    };
    Some(class)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let class = match s {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => return forbidden_v4(embedded_v4(hi, lo)),
        // IPv4-compatible ::a.b.c.d (deprecated by RFC 4291)
        [0, 0, 0, 0, 0, 0, _, _] => AddressClass::Reserved,
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return forbidden_v4(embedded_v4(hi, lo)),
        // Local-use NAT64 64:ff9b:1::/48
        [0x64, 0xff9b, 1, ..] => AddressClass::Private,
        // Discard-only 100::/64
        [0x100, 0, 0, 0, ..] => AddressClass::Reserved,
        // Benchmarking 2001:2::/48
        [0x2001, 2, 0, ..] => AddressClass::Benchmarking,
        // Documentation 2001:db8::/32 and 3fff::/20
        [0x2001, 0xdb8, ..] => AddressClass::Documentation,
        [0x3fff, b, ..] if b & 0xf000 == 0 => AddressClass::Documentation,
        // 6to4 2002:a.b.c.d::/48 — judged by the embedded IPv4 address
        [0x2002, hi, lo, ..] => return forbidden_v4(embedded_v4(hi, lo)),
        [a, ..] if a & 0xfe00 == 0xfc00 => AddressClass::Private,
        [a, ..] if a & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => AddressClass::Private,
        [a, ..] if a & 0xff00 == 0xff00 => AddressClass::Multicast,
        _ => return None,
    };
    Some(class)
}

/// A destination the guard refused. It travels through reqwest's error chain as the source
/// of the connect error, where the transport finds it and reports
/// `Refused { reason: "destination_forbidden" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenDestination {
    /// The host as written in the URL.
    pub host: String,
    /// The refused addresses and why (the first few; enough to diagnose).
    pub refused: Vec<(IpAddr, AddressClass)>,
}

impl ForbiddenDestination {
    /// The observation's reason code.
    pub const REASON: &'static str = "destination_forbidden";
}

impl fmt::Display for ForbiddenDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "destination {} is not a public address (", self.host)?;
        for (i, (ip, class)) in self.refused.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{ip}: {class}")?;
        }
        f.write_str("); set allow_private_network to deliver there")
    }
}

impl StdError for ForbiddenDestination {}

/// How many refused addresses an error keeps: enough to diagnose, bounded for logs.
const MAX_REPORTED: usize = 4;

/// Keeps the allowed addresses; returns the refusal if none remain.
pub(crate) fn filter_addrs(
    host: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, ForbiddenDestination> {
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for addr in addrs {
        match forbidden_class(addr.ip()) {
            None => allowed.push(addr),
            Some(class) if refused.len() < MAX_REPORTED => refused.push((addr.ip(), class)),
            Some(_) => {}
        }
    }
    if allowed.is_empty() && !refused.is_empty() {
        return Err(ForbiddenDestination {
            host: host.to_owned(),
            refused,
        });
    }
    Ok(allowed)
}

/// Checks an IP-literal host (which skips DNS, so the resolver never sees it).
pub(crate) fn check_literal(host: &str, ip: IpAddr) -> Result<(), ForbiddenDestination> {
    filter_addrs(host, [SocketAddr::new(ip, 0)]).map(drop)
}

/// A DNS resolver for reqwest that resolves with the system resolver
/// (`tokio::net::lookup_host`) and drops forbidden addresses, failing with
/// [`ForbiddenDestination`] when none remain.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: reqwest replaces it with the URL's port.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = filter_addrs(&host, resolved)?;
            if allowed.is_empty() {
                return Err(format!("{host} resolved to no address").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        forbidden_class(s.parse().unwrap())
    }

    #[test]
    fn classifies_ipv4_special_ranges() {
        use AddressClass::*;
        let table: &[(&str, Option<AddressClass>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.168.1.1", Some(Private)),
            ("192.169.0.1", None),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.253.0.1", None),
            ("192.0.2.10", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.0", None),
            ("192.0.0.8", Some(Reserved)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("11.0.0.1", None),
        ];
        for (ip, expected) in table {
            assert_eq!(class(ip), *expected, "{ip}");
        }
    }

    #[test]
    fn classifies_ipv6_special_ranges() {
        use AddressClass::*;
        let table: &[(&str, Option<AddressClass>)] = &[
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(Private)),
            ("fd12:3456:789a::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("3fff:fff::1", Some(Documentation)),
            ("3fff:1000::1", None),
            ("2001:2::1", Some(Benchmarking)),
            ("100::1", Some(Reserved)),
            ("::7f00:1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Private)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("2001:4860:4860::8888", None),
        ];
        for (ip, expected) in table {
            assert_eq!(class(ip), *expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_that_embeds_ipv4_is_judged_by_the_embedded_address() {
        use AddressClass::*;
        let table: &[(&str, Option<AddressClass>)] = &[
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
        ];
        for (ip, expected) in table {
            assert_eq!(class(ip), *expected, "{ip}");
        }
    }

    #[test]
    fn filtering_keeps_public_addresses_and_drops_forbidden_ones() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap(), "8.8.8.8:0".parse().unwrap()];
        assert_eq!(
            filter_addrs("mixed.example", addrs),
            Ok(vec!["8.8.8.8:0".parse().unwrap()])
        );
    }

    #[test]
    fn filtering_only_forbidden_addresses_is_a_refusal_naming_host_and_class() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let err = filter_addrs("localhost", addrs).unwrap_err();
        assert_eq!(err.host, "localhost");
        assert_eq!(err.refused.len(), 2);
        let text = err.to_string();
        assert!(text.contains("localhost"), "{text}");
        assert!(text.contains("127.0.0.1: loopback"), "{text}");
    }

    #[test]
    fn refusals_report_a_bounded_number_of_addresses() {
        let addrs = (1..=20u8).map(|i| SocketAddr::from(([10, 0, 0, i], 0)));
        let err = filter_addrs("big.internal", addrs).unwrap_err();
        assert_eq!(err.refused.len(), MAX_REPORTED);
    }

    #[test]
    fn ip_literals_are_checked_without_dns() {
        assert!(check_literal("169.254.169.254", "169.254.169.254".parse().unwrap()).is_err());
        assert!(check_literal("1.1.1.1", "1.1.1.1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        let name: Name = "localhost".parse().unwrap();
        let err = match GuardedResolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let forbidden = err.downcast_ref::<ForbiddenDestination>().expect("a typed refusal");
        assert_eq!(forbidden.host, "localhost");
        assert_eq!(forbidden.refused[0].1, AddressClass::Loopback);
    }
}
