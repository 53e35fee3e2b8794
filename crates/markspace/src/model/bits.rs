//! [`Bits`]: a 32-bit mark value or mask, and the one parser every reader of numbers uses.
//!
//! # How the tools read numbers
//!
//! Every tool whose text markspace reads converts numbers with C `strtoul` in base 0 (`0x`/`0X`
//! hexadecimal, a leading `0` octal, else decimal), requires the whole word to be consumed, and
//! refuses values above 32 bits. They differ only before the digits:
//!
//! - iptables, ip6tables, ebtables: `xtables_strtoui` → `xtables_strtoul_base`
//!   (netfilter iptables, `libxtables/xtables.c`) skips leading whitespace, refuses `-`
//!   explicitly, and calls `strtoumax(s, &end, 0)`, which also takes a leading `+`; the mark
//!   helpers then check `min <= v <= UINT32_MAX` and that `end` reaches `/` or the end.
//! - iproute2 `get_u32(…, 0)` (`lib/utils.c`; `ip rule fwmark`, `ip xfrm … mark`, tc `fw`,
//!   `skbedit mark`): `strtoul(arg, &ptr, 0)`, the whole argument consumed, `res > 0xFFFFFFFF`
//!   refused. `+5` is accepted; `-N` wraps to a 64-bit value above 32 bits and is refused
//!   (only `-0` slips through: not modelled).
//! - Open vSwitch `parse_int_string` (`lib/util.c`, used by `mf_from_integer_string` for
//!   `pkt_mark`/`ct_mark`): `0x` hex of any length (leading zeros skipped), else
//!   `strtoull(s, tail, 0)`; a value wider than the field is `ERANGE`.
//! - nft (`src/scanner.l`): the scanner only makes a number of `{digit}+` or `0[xX]{hexdigit}+`
//!   (no sign: `-` and `+` are tokens of their own). Hex goes through `strtoull(…, 16)`; a
//!   decimal string starting with `0` through `strtoull(…, 8)` and must be consumed whole, so
//!   `010` is 8 and `09` is not a number (a string). Values that do not fit the 32-bit mark are
//!   refused by the evaluator.
//! - arptables reads its mark options in hexadecimal with an optional `0x` ([`Bits::parse_hex`]).
//!
//! Words reach these parsers already split on whitespace, so leading whitespace never occurs.
//! Hence three entry points: [`Bits::parse`] (digits only: nft, and tool output, which never
//! carries a sign), [`Bits::parse_arg`] (an argument as the `strtoul` tools read it: a leading
//! `+` allowed) and [`Bits::parse_hex`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-bit mark value or mask. Displayed and serialised as the reports write it: `0x0000c000`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bits(pub u32);

/// Why a word is not a 32-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseBitsError {
    /// Nothing to read.
    Empty,
    /// Not a number in C base-0 syntax (`0x` without digits, `09`, `12ab`, a sign).
    Invalid,
    /// A well-formed number above `0xffffffff`.
    TooLarge,
}

impl fmt::Display for ParseBitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseBitsError::Empty => "empty number",
            ParseBitsError::Invalid => {
                "not a number (decimal, 0x-prefixed hex or 0-prefixed octal)"
            }
            ParseBitsError::TooLarge => "does not fit in 32 bits",
        })
    }
}

impl std::error::Error for ParseBitsError {}

/// The digits of `s` in `radix`; an invalid digit wins over an overflow (C stops at the digit
/// and the caller sees trailing garbage).
fn digits(s: &str, radix: u32) -> Result<u32, ParseBitsError> {
    if s.is_empty() {
        return Err(ParseBitsError::Invalid);
    }
    let mut value = Some(0u32);
    for c in s.chars() {
        let d = c.to_digit(radix).ok_or(ParseBitsError::Invalid)?;
        value = value
            .and_then(|v| v.checked_mul(radix))
            .and_then(|v| v.checked_add(d));
    }
    value.ok_or(ParseBitsError::TooLarge)
}

impl Bits {
    /// Reads a number as C `strtoul(s, &end, 0)` with `*end == '\0'` and a 32-bit range check:
    /// `0x`/`0X` hex, a leading `0` octal, else decimal; no sign, no whitespace (see the module
    /// documentation for each tool).
    pub fn parse(s: &str) -> Result<Bits, ParseBitsError> {
        if s.is_empty() {
            return Err(ParseBitsError::Empty);
        }
        let n = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            digits(hex, 16)?
        } else if let Some(oct) = s.strip_prefix('0').filter(|r| !r.is_empty()) {
            digits(oct, 8)?
        } else {
            digits(s, 10)?
        };
        Ok(Bits(n))
    }

    /// [`Bits::parse`] with the one thing `strtoul` adds for a command-line argument of
    /// iptables (`xtables_strtoui`), iproute2 (`get_u32`) and OVS: a leading `+`.
    pub fn parse_arg(s: &str) -> Result<Bits, ParseBitsError> {
        match s.strip_prefix('+') {
            Some("") => Err(ParseBitsError::Invalid),
            Some(rest) => Bits::parse(rest),
            None => Bits::parse(s),
        }
    }

    /// Hexadecimal with an optional `0x`/`0X`, as arptables reads its mark options.
    pub fn parse_hex(s: &str) -> Result<Bits, ParseBitsError> {
        if s.is_empty() {
            return Err(ParseBitsError::Empty);
        }
        let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
        digits(hex.unwrap_or(s), 16).map(Bits)
    }
}

impl FromStr for Bits {
    type Err = ParseBitsError;

    /// [`Bits::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bits::parse(s)
    }
}

impl From<u32> for Bits {
    fn from(v: u32) -> Self {
        Bits(v)
    }
}

impl From<Bits> for u32 {
    fn from(b: Bits) -> Self {
        b.0
    }
}

impl fmt::Display for Bits {
    /// `0x%08x`, the reports' format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl Serialize for Bits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The registry's form: a string read by [`Bits::parse`] (`"0x0000c000"`) or a TOML integer.
impl<'de> Deserialize<'de> for Bits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => Bits::parse(&s)
                .map_err(|e| serde::de::Error::custom(format!("invalid 32-bit value `{s}`: {e}"))),
            Raw::Number(n) => u32::try_from(n)
                .map(Bits)
                .map_err(|_| serde::de::Error::custom(format!("{n} does not fit in 32 bits"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseBitsError::*;

    #[test]
    fn base_zero() {
        assert_eq!(Bits::parse("0x80"), Ok(Bits(0x80)));
        assert_eq!(Bits::parse("0XfF"), Ok(Bits(0xff)));
        assert_eq!(Bits::parse("010"), Ok(Bits(8)));
        assert_eq!(Bits::parse("0"), Ok(Bits(0)));
        assert_eq!(Bits::parse("00"), Ok(Bits(0)));
        assert_eq!(Bits::parse("51820"), Ok(Bits(51820)));
        assert_eq!(Bits::parse("4294967295"), Ok(Bits(u32::MAX)));
        assert_eq!(Bits::parse("0xffffffff"), Ok(Bits(u32::MAX)));
        assert_eq!(Bits::parse("0x00000000000000ff"), Ok(Bits(0xff)));
        assert_eq!(Bits::parse("037777777777"), Ok(Bits(u32::MAX)));
    }

    #[test]
    fn refusals() {
        assert_eq!(Bits::parse(""), Err(Empty));
        assert_eq!(Bits::parse("0x"), Err(Invalid));
        assert_eq!(
            Bits::parse("09"),
            Err(Invalid),
            "nft: a string, strtoul: trailing 9"
        );
        assert_eq!(Bits::parse("12ab"), Err(Invalid));
        assert_eq!(Bits::parse("+5"), Err(Invalid));
        assert_eq!(Bits::parse("-1"), Err(Invalid));
        assert_eq!(Bits::parse(" 5"), Err(Invalid));
        assert_eq!(Bits::parse("4294967296"), Err(TooLarge));
        assert_eq!(Bits::parse("0x100000000"), Err(TooLarge));
        assert_eq!(Bits::parse("040000000000"), Err(TooLarge));
        assert_eq!(Bits::parse("99999999999x"), Err(Invalid));
    }

    #[test]
    fn arguments_and_hex() {
        assert_eq!(Bits::parse_arg("+5"), Ok(Bits(5)));
        assert_eq!(Bits::parse_arg("+0x10"), Ok(Bits(16)));
        assert_eq!(Bits::parse_arg("+"), Err(Invalid));
        assert_eq!(Bits::parse_arg("-5"), Err(Invalid));
        assert_eq!(Bits::parse_arg("++5"), Err(Invalid));
        assert_eq!(Bits::parse_hex("10"), Ok(Bits(16)));
        assert_eq!(Bits::parse_hex("0x10"), Ok(Bits(16)));
        assert_eq!(Bits::parse_hex("0x"), Err(Invalid));
        assert_eq!(Bits::parse_hex(""), Err(Empty));
    }

    #[test]
    fn display_serialize_fromstr() {
        assert_eq!(Bits(0xc000).to_string(), "0x0000c000");
        assert_eq!(
            serde_json::to_string(&Bits(0x4000)).unwrap(),
            "\"0x00004000\""
        );
        assert_eq!("0x4000".parse::<Bits>(), Ok(Bits(0x4000)));
        let round: Bits = serde_json::from_str("\"0x0000c000\"").unwrap();
        assert_eq!(round, Bits(0xc000));
        let num: Bits = serde_json::from_str("16384").unwrap();
        assert_eq!(num, Bits(0x4000));
        assert!(serde_json::from_str::<Bits>("\"0xg\"").is_err());
        assert!(serde_json::from_str::<Bits>("-1").is_err());
    }
}
