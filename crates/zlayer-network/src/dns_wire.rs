//! The few bits of the DNS wire format (RFC 1035) the embedded responder
//! needs: read the question of a query, write an answer of A records.

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Response code: the name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
/// Response code: the server failed.
pub const RCODE_SERVFAIL: u8 = 2;
/// Response code: refused.
pub const RCODE_REFUSED: u8 = 5;

/// The question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked for, lower case, without the trailing dot.
    pub name: String,
    /// Record type.
    pub qtype: u16,
    /// Where the question section ends in the packet.
    pub end: usize,
}

/// Parses the first question of `packet`; `None` for anything malformed
/// or not a plain query.
pub fn parse_query(packet: &[u8]) -> Option<Question> {
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return None;
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    if qdcount != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *packet.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not used in questions we accept
        }
        let label = packet.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*packet.get(pos)?, *packet.get(pos + 1)?]);
    packet.get(pos + 3)?;
    Some(Question {
        name: labels.join("."),
        qtype,
        end: pos + 4,
    })
}

/// A response to `query` (whose question is `q`) carrying `ips` as A
/// records, or the error `rcode` when it is non-zero.
pub fn answer(query: &[u8], q: &Question, ips: &[Ipv4Addr], rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + ips.len() * 16);
    out.extend_from_slice(&query[..2]); // id
    let rd = query[2] & 0x01;
    out.push(0x80 | 0x04 | rd); // QR, AA, RD copied
    out.push(0x80 | (rcode & 0x0f)); // RA, rcode
    out.extend_from_slice(&[0, 1]); // qdcount
    let an = if rcode == 0 { ips.len() as u16 } else { 0 };
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // nscount, arcount
    out.extend_from_slice(&query[12..q.end]);
    if rcode == 0 {
        for ip in ips {
            out.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to question
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&[0, 1]); // class IN
            out.extend_from_slice(&5u32.to_be_bytes()); // TTL: replicas come and go
            out.extend_from_slice(&[0, 4]);
            out.extend_from_slice(&ip.octets());
        }
    }
    out
}

/// A query for `name` type `qtype` with id `id` (used by tests and tools).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out
}

/// The A records of a response, with its rcode.
pub fn parse_answer(packet: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    let q = parse_query(&{
        let mut p = packet.to_vec();
        *p.get_mut(2)? &= 0x7f;
        p
    })?;
    let rcode = packet[3] & 0x0f;
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let mut pos = q.end;
    let mut ips = Vec::new();
    for _ in 0..ancount {
        // name: a pointer (2 bytes) or labels
        if *packet.get(pos)? & 0xc0 == 0xc0 {
            pos += 2;
        } else {
            while *packet.get(pos)? != 0 {
                pos += 1 + *packet.get(pos)? as usize;
            }
            pos += 1;
        }
        let rtype = u16::from_be_bytes([*packet.get(pos)?, *packet.get(pos + 1)?]);
        let rdlen = u16::from_be_bytes([*packet.get(pos + 8)?, *packet.get(pos + 9)?]) as usize;
        pos += 10;
        if rtype == TYPE_A && rdlen == 4 {
            let b = packet.get(pos..pos + 4)?;
            ips.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
        pos += rdlen;
    }
    Some((rcode, ips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let q = query(0x1234, "Web.", TYPE_A);
        let parsed = parse_query(&q).unwrap();
        assert_eq!(parsed.name, "web");
        let ips = [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
        let r = answer(&q, &parsed, &ips, 0);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(parse_answer(&r).unwrap(), (0, ips.to_vec()));
        let r = answer(&q, &parsed, &[], RCODE_NXDOMAIN);
        assert_eq!(parse_answer(&r).unwrap(), (RCODE_NXDOMAIN, vec![]));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_query(&[0; 5]).is_none());
        assert!(parse_query(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 70]).is_none());
    }
}
