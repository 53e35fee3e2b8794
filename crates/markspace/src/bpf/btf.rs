//! The offset of a struct member in BTF (`/sys/kernel/btf/vmlinux`): where the running kernel
//! keeps `sk_buff.mark` and `sock.sk_mark`, which translated programs access directly.
//!
//! Hand-written over the format of `include/uapi/linux/btf.h` (a header, a type section of
//! variable-length records, a string section): the crates that read BTF bring a whole loader
//! with them, and only member offsets are needed here. Anonymous struct and union members (the
//! `mark` of `sk_buff` sits in one) are searched through.

/// `BTF_MAGIC`.
const MAGIC: u16 = 0xeb9f;

struct Type {
    name: u32,
    kind: u32,
    kind_flag: bool,
    /// `size` or `type`.
    size_type: u32,
    /// Members of a struct or union: (name, type, offset in bits).
    members: Vec<(u32, u32, u32)>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn types(btf: &[u8]) -> Option<(Vec<Type>, &[u8])> {
    if u16::from_le_bytes(btf.get(0..2)?.try_into().ok()?) != MAGIC {
        return None;
    }
    let hdr = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
    let t = btf.get(hdr + type_off..hdr + type_off + type_len)?;
    let strings = btf.get(hdr + str_off..hdr + str_off + str_len)?;
    // Type 0 is `void`.
    let mut out = vec![Type {
        name: 0,
        kind: 0,
        kind_flag: false,
        size_type: 0,
        members: Vec::new(),
    }];
    let mut at = 0;
    while at + 12 <= t.len() {
        let (name, info, size_type) = (u32_at(t, at)?, u32_at(t, at + 4)?, u32_at(t, at + 8)?);
        at += 12;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let mut members = Vec::new();
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 => {
                for k in 0..vlen {
                    let m = at + 12 * k;
                    members.push((u32_at(t, m)?, u32_at(t, m + 4)?, u32_at(t, m + 8)?));
                }
                12 * vlen
            }
            6 | 13 => 8 * vlen,
            15 | 19 => 12 * vlen,
            _ => 0,
        };
        at += extra;
        out.push(Type {
            name,
            kind,
            kind_flag: info >> 31 != 0,
            size_type,
            members,
        });
    }
    Some((out, strings))
}

fn name(strings: &[u8], off: u32) -> &[u8] {
    let s = strings.get(off as usize..).unwrap_or(&[]);
    &s[..memchr::memchr(0, s).unwrap_or(s.len())]
}

/// The byte offset of `member` in `struct strukt`, searching anonymous members.
pub fn member_offset(btf: &[u8], strukt: &str, member: &str) -> Option<u32> {
    let (types, strings) = types(btf)?;
    let s = types
        .iter()
        .find(|t| t.kind == 4 && name(strings, t.name) == strukt.as_bytes())?;
    find(&types, strings, s, member.as_bytes(), 0).map(|bits| bits / 8)
}

fn find(types: &[Type], strings: &[u8], s: &Type, member: &[u8], base: u32) -> Option<u32> {
    for &(n, ty, off) in &s.members {
        let bits = base + if s.kind_flag { off & 0x00ff_ffff } else { off };
        let nm = name(strings, n);
        if nm == member {
            return Some(bits);
        }
        if nm.is_empty() {
            // Through typedefs and qualifiers to an anonymous struct or union.
            let mut t = types.get(ty as usize)?;
            let mut hops = 0;
            while matches!(t.kind, 8..=11 | 18) && hops < 16 {
                t = types.get(t.size_type as usize)?;
                hops += 1;
            }
            if matches!(t.kind, 4 | 5) {
                if let Some(found) = find(types, strings, t, member, bits) {
                    return Some(found);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: `struct s { int a; union { int x; int mark; }; }` with `mark` at byte 4.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0x\0mark\0";
        let mut t = Vec::new();
        let rec = |t: &mut Vec<u8>, name: u32, info: u32, st: u32| {
            for v in [name, info, st] {
                t.extend_from_slice(&v.to_le_bytes());
            }
        };
        // 1: int (4 bytes)
        rec(&mut t, 1, 1 << 24, 4);
        t.extend_from_slice(&32u32.to_le_bytes());
        // 2: anonymous union { x; mark }
        rec(&mut t, 0, (5 << 24) | 2, 4);
        rec(&mut t, 9, 1, 0);
        rec(&mut t, 11, 1, 0);
        // 3: struct s { a; <anon> at bit 32 }
        rec(&mut t, 5, (4 << 24) | 2, 8);
        rec(&mut t, 7, 1, 0);
        rec(&mut t, 0, 2, 32);
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn finds_a_member_in_an_anonymous_union() {
        assert_eq!(member_offset(&blob(), "s", "mark"), Some(4));
        assert_eq!(member_offset(&blob(), "s", "a"), Some(0));
        assert_eq!(member_offset(&blob(), "s", "nope"), None);
        assert_eq!(member_offset(&blob(), "t", "mark"), None);
        assert_eq!(member_offset(&blob()[..30], "s", "mark"), None);
    }

    #[test]
    fn reads_the_running_kernel_when_it_has_btf() {
        let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let mark = member_offset(&btf, "sk_buff", "mark").expect("sk_buff.mark");
        assert!(mark > 100 && mark.is_multiple_of(4), "{mark}");
        assert!(member_offset(&btf, "sock", "sk_mark").is_some());
    }
}
