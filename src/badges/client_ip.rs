//! Which address a badge request counts against. By default the TCP peer: a forwarding header
//! can say anything. Behind a reverse proxy every request would then share the proxy's bucket,
//! so the proxies listed in `badger.trusted_proxies` are believed: the client is the right-most
//! address of `Forwarded` (or, without it, `X-Forwarded-For`) that is not itself a trusted
//! proxy. Entries left of it were written by the client and are never looked at.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `badger.trusted_proxies`: addresses (`10.0.0.1`) or networks (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        crate::config::parse_trusted_proxies(entries).map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` carrying `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = if headers.contains_key("forwarded") {
            header_items(headers, "forwarded")
                .filter_map(forwarded_for)
                .collect()
        } else {
            header_items(headers, "x-forwarded-for").collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // A hop we cannot read ends the walk: the last proxy we believe is the answer.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The comma-separated items of every line of a header, in order.
fn header_items<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1` or `[2001:db8::1]:8080`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_are_believed_and_the_right_most_untrusted_hop_wins() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let forged = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(trusted.client(ip("192.0.2.9"), &forged), ip("192.0.2.9"));
        // The client wrote 1.1.1.1; the proxy appended the real address (as a second line,
        // as HAProxy does); a second trusted proxy is skipped.
        let chained = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7, 10.1.2.3"),
        ]);
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &chained),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::5]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &forwarded),
            ip("2001:db8::5")
        );
        // No header, or an unreadable hop: the trusted peer (or last believed hop) counts.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let junk = headers(&[("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.3")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &junk), ip("10.0.0.3"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
