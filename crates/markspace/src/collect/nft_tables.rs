//! The names of the node's nf_tables tables, from one netlink dump of tables only.
//!
//! `nft list tables` (nftables 1.0.6) fills its cache with every rule of every table before it
//! prints the names, and the kernel's rule dump restarts its walk from the first rule for every
//! buffer it fills, so it grows with the square of the rules: 48 s of a 61 s `audit --live` on a
//! node of 230k iptables-nft lines. The table dump (`NFT_MSG_GETTABLE` with `NLM_F_DUMP`, the
//! request `nft` itself starts with) sends one small message per table and touches no rule.
//!
//! The request is written by hand: one `nlmsghdr` and one `nfgenmsg`
//! (`include/uapi/linux/netfilter/nfnetlink.h`, `nf_tables.h`). The crates that wrap nf_tables
//! netlink were weighed: `rustables` is GPL-3.0 (this project is Apache-2.0),
//! `netlink-packet-netfilter` covers nflog and conntrack messages, not nf_tables, and `neli`
//! would bring a generic netlink framework for one request. The socket is `rustix`'s safe API
//! (the workspace forbids `unsafe`).

use std::io;
use std::time::Duration;

use rustix::net::netlink::{SocketAddrNetlink, NETFILTER};
use rustix::net::sockopt::{set_socket_timeout, Timeout};
use rustix::net::{bind, recv, sendto, socket, AddressFamily, RecvFlags, SendFlags, SocketType};

/// One nf_tables table: its family as `nft` names it, and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NftTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge` or `netdev`.
    pub(crate) family: &'static str,
    /// The table's name.
    pub(crate) name: String,
}

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE`.
const GETTABLE: u16 = (10 << 8) | 1;
/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE`: the type of each table in the answer.
const NEWTABLE: u16 = 10 << 8;
/// `NLMSG_ERROR`, `NLMSG_DONE`.
const ERROR: u16 = 2;
const DONE: u16 = 3;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const REQUEST_DUMP: u16 = 0x1 | 0x300;
/// `NLM_F_DUMP_INTR`: the tables changed while they were dumped.
const DUMP_INTR: u16 = 0x10;
/// `NFTA_TABLE_NAME`.
const TABLE_NAME: u16 = 1;
/// How many times an interrupted dump is started again before giving up.
const TRIES: usize = 3;

/// The nft name of an `NFPROTO_*` family.
fn family_name(family: u8) -> Option<&'static str> {
    Some(match family {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => return None,
    })
}

/// The dump request: a `nlmsghdr` (length, type, flags, sequence, port 0 for the kernel) and a
/// `nfgenmsg` for every family (`NFPROTO_UNSPEC`, version 0, resource id 0).
fn request(seq: u32) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..4].copy_from_slice(&20u32.to_ne_bytes());
    m[4..6].copy_from_slice(&GETTABLE.to_ne_bytes());
    m[6..8].copy_from_slice(&REQUEST_DUMP.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// What one buffer of the answer said.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// More messages follow.
    More,
    /// `NLMSG_DONE`.
    Done,
    /// The dump was interrupted by a change: start again.
    Interrupted,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("nf_tables dump: {what}"),
    )
}

/// Reads the messages of one received buffer into `out`.
fn read_buffer(buf: &[u8], seq: u32, out: &mut Vec<NftTable>) -> io::Result<Read> {
    let mut at = 0;
    let mut interrupted = false;
    while at + 16 <= buf.len() {
        let len = u32_at(buf, at).ok_or_else(|| malformed("short header"))? as usize;
        let kind = u16_at(buf, at + 4).ok_or_else(|| malformed("short header"))?;
        let flags = u16_at(buf, at + 6).ok_or_else(|| malformed("short header"))?;
        let got_seq = u32_at(buf, at + 8).ok_or_else(|| malformed("short header"))?;
        if len < 16 || at + len > buf.len() {
            return Err(malformed("message length out of bounds"));
        }
        let body = &buf[at + 16..at + len];
        at += len.div_ceil(4) * 4;
        if got_seq != seq {
            continue;
        }
        interrupted |= flags & DUMP_INTR != 0;
        match kind {
            DONE => {
                return Ok(if interrupted {
                    Read::Interrupted
                } else {
                    Read::Done
                })
            }
            ERROR => {
                let errno = u32_at(body, 0).ok_or_else(|| malformed("short error"))? as i32;
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
            }
            NEWTABLE => {
                let family = *body.first().ok_or_else(|| malformed("short table"))?;
                if let (Some(family), Some(name)) = (family_name(family), table_name(body)) {
                    out.push(NftTable { family, name });
                }
            }
            _ => {}
        }
    }
    Ok(if interrupted {
        Read::Interrupted
    } else {
        Read::More
    })
}

/// The `NFTA_TABLE_NAME` attribute of a table message (after its 4-byte `nfgenmsg`).
fn table_name(body: &[u8]) -> Option<String> {
    let mut at = 4;
    while at + 4 <= body.len() {
        let len = u16_at(body, at)? as usize;
        let kind = u16_at(body, at + 2)? & 0x3fff;
        if len < 4 || at + len > body.len() {
            return None;
        }
        if kind == TABLE_NAME {
            let value = &body[at + 4..at + len];
            let value = value.split(|&b| b == 0).next().unwrap_or(value);
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        at += len.div_ceil(4) * 4;
    }
    None
}

/// Every nf_tables table of this network namespace, by one `NFT_MSG_GETTABLE` dump; an
/// interrupted dump is started again. Each receive waits at most `timeout`.
pub(crate) fn list(timeout: Duration) -> io::Result<Vec<NftTable>> {
    let fd = socket(AddressFamily::NETLINK, SocketType::RAW, Some(NETFILTER))?;
    bind(&fd, &SocketAddrNetlink::new(0, 0))?;
    set_socket_timeout(&fd, Timeout::Recv, Some(timeout))?;
    let kernel = SocketAddrNetlink::new(0, 0);
    let mut buf = vec![0u8; 1 << 16];
    for seq in 1..=TRIES as u32 {
        sendto(&fd, &request(seq), SendFlags::empty(), &kernel)?;
        let mut tables = Vec::new();
        loop {
            let (_, n) = recv(&fd, &mut buf[..], RecvFlags::empty())?;
            if n > buf.len() {
                return Err(malformed("message larger than the buffer"));
            }
            match read_buffer(&buf[..n], seq, &mut tables)? {
                Read::More => continue,
                Read::Done => return Ok(tables),
                Read::Interrupted => break,
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        format!("nf_tables dump: interrupted by changes {TRIES} times"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message of `kind` with `body`, padded to 4 bytes.
    fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// A table message: `nfgenmsg`, then a flags attribute and the name attribute.
    fn table(family: u8, name: &str) -> Vec<u8> {
        let mut b = vec![family, 0, 0, 0];
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&(2u16 | 0x4000).to_ne_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        let len = 4 + name.len() + 1;
        b.extend_from_slice(&(len as u16).to_ne_bytes());
        b.extend_from_slice(&TABLE_NAME.to_ne_bytes());
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn the_request_is_a_dump_of_tables() {
        let r = request(7);
        assert_eq!(u32_at(&r, 0), Some(20));
        assert_eq!(u16_at(&r, 4), Some(0x0a01));
        assert_eq!(u16_at(&r, 6), Some(0x0301));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert_eq!(&r[16..], &[0, 0, 0, 0]);
    }

    #[test]
    fn reads_tables_until_done() {
        let mut buf = message(NEWTABLE, 0x2, 1, &table(2, "filter"));
        buf.extend(message(NEWTABLE, 0x2, 1, &table(1, "kube-proxy")));
        buf.extend(message(NEWTABLE, 0x2, 9, &table(10, "other-request")));
        let mut out = Vec::new();
        assert_eq!(read_buffer(&buf, 1, &mut out).unwrap(), Read::More);
        let done = message(DONE, 0x2, 1, &0u32.to_ne_bytes());
        assert_eq!(read_buffer(&done, 1, &mut out).unwrap(), Read::Done);
        let names: Vec<(&str, &str)> = out.iter().map(|t| (t.family, &*t.name)).collect();
        assert_eq!(names, [("ip", "filter"), ("inet", "kube-proxy")]);
    }

    #[test]
    fn reports_errors_interruptions_and_bad_lengths() {
        let err = message(ERROR, 0, 1, &(-1i32).to_ne_bytes());
        let e = read_buffer(&err, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(1));
        let mut buf = message(NEWTABLE, 0x2 | DUMP_INTR, 1, &table(2, "nat"));
        buf.extend(message(DONE, 0x2, 1, &0u32.to_ne_bytes()));
        assert_eq!(
            read_buffer(&buf, 1, &mut Vec::new()).unwrap(),
            Read::Interrupted
        );
        let mut cut = message(NEWTABLE, 0x2, 1, &table(2, "nat"));
        cut.truncate(24);
        assert!(read_buffer(&cut, 1, &mut Vec::new()).is_err());
    }
}
