//! CPU (or node) id sets in libvirt's list syntax: `0-3,5`, and on input also `1-4,^3,6`.
//!
//! The same syntax is used by sysfs (`cpulist`, `shared_cpu_list`), by the capabilities XML
//! (`siblings`, `cpus`) and by domain XML (`cpuset`), so this type is shared by all of them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::{char, digit1, multispace0};
use nom::combinator::{all_consuming, map_res, opt};
use nom::multi::separated_list1;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// Ids above this are rejected rather than stored: a typo such as `0-4294967295` must not
/// make us allocate billions of entries. libvirt's own bitmaps are bounded similarly.
pub const MAX_ID: u32 = 1 << 20;

/// An ordered set of non-negative ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(BTreeSet<u32>);

/// Why a cpuset string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cpuset '{input}': {reason}")]
pub struct CpuSetError {
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
enum Term {
    Add(u32, u32),
    Remove(u32, u32),
}

fn number(i: &str) -> IResult<&str, u32> {
    map_res(digit1, str::parse::<u32>).parse(i)
}

fn range(i: &str) -> IResult<&str, (u32, u32)> {
    let (i, start) = number(i)?;
    let (i, end) = opt(preceded(char('-'), number)).parse(i)?;
    Ok((i, (start, end.unwrap_or(start))))
}

fn term(i: &str) -> IResult<&str, Term> {
    let ws = multispace0;
    delimited(
        ws,
        alt((
            preceded(tag("^"), range).map(|(a, b)| Term::Remove(a, b)),
            range.map(|(a, b)| Term::Add(a, b)),
        )),
        multispace0,
    )
    .parse(i)
}

impl CpuSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse libvirt's syntax. Terms apply left to right, so `^3` removes 3 only from what
    /// earlier terms added (this is libvirt's order of evaluation too).
    pub fn parse(input: &str) -> Result<Self, CpuSetError> {
        let err = |reason: &str| CpuSetError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (_, terms) = all_consuming(separated_list1(char(','), term))
            .parse(input)
            .map_err(|_| err("expected comma-separated ids, ranges 'N-M' or exclusions '^N'"))?;
        let mut set = BTreeSet::new();
        for t in terms {
            let (a, b, add) = match t {
                Term::Add(a, b) => (a, b, true),
                Term::Remove(a, b) => (a, b, false),
            };
            if a > b {
                return Err(err(&format!("range {a}-{b} is reversed")));
            }
            if b > MAX_ID {
                return Err(err(&format!("id {b} exceeds the maximum {MAX_ID}")));
            }
            for id in a..=b {
                if add {
                    set.insert(id);
                } else {
                    set.remove(&id);
                }
            }
        }
        Ok(Self(set))
    }

    /// Parse a sysfs list file's content, where an empty (or all-blank) file means "no ids",
    /// as for a memory-only NUMA node's `cpulist`.
    pub fn parse_sysfs(content: &str) -> Result<Self, CpuSetError> {
        if content.trim().is_empty() {
            Ok(Self::new())
        } else {
            Self::parse(content.trim())
        }
    }

    pub fn insert(&mut self, id: u32) -> bool {
        self.0.insert(id)
    }

    pub fn remove(&mut self, id: u32) -> bool {
        self.0.remove(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.0.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn first(&self) -> Option<u32> {
        self.0.first().copied()
    }

    pub fn last(&self) -> Option<u32> {
        self.0.last().copied()
    }

    /// Maximal runs of consecutive ids, as inclusive `(start, end)` pairs.
    pub fn ranges(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for id in self.iter() {
            match out.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(id) => *end = id,
                _ => out.push((id, id)),
            }
        }
        out
    }
}

/// libvirt's canonical form: runs of two or more ids collapse to `a-b`; the empty set is `""`.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.ranges().into_iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for CpuSet {
    type Err = CpuSetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl serde::Serialize for CpuSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CpuSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CpuSet::parse_sysfs(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &CpuSet) -> Vec<u32> {
        s.iter().collect()
    }

    #[test]
    fn parses_ranges_and_exclusions() {
        let s = CpuSet::parse("1-4,^3,6").unwrap();
        assert_eq!(ids(&s), vec![1, 2, 4, 6]);
        assert_eq!(s.to_string(), "1-2,4,6");
        assert_eq!(CpuSet::parse("0").unwrap().to_string(), "0");
        assert_eq!(CpuSet::parse("0-7").unwrap().to_string(), "0-7");
        assert_eq!(CpuSet::parse("0,4").unwrap().to_string(), "0,4");
        assert_eq!(CpuSet::parse(" 0 , 2-3 ").unwrap().to_string(), "0,2-3");
    }

    #[test]
    fn exclusion_applies_in_order() {
        assert_eq!(ids(&CpuSet::parse("^3,1-4").unwrap()), vec![1, 2, 3, 4]);
        assert_eq!(ids(&CpuSet::parse("0-9,^2-8").unwrap()), vec![0, 1, 9]);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            ",",
            "1,",
            "a",
            "1-",
            "-1",
            "3-1",
            "1--2",
            "^",
            "1 2",
            "99999999999",
        ] {
            assert!(CpuSet::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert!(CpuSet::parse(&format!("0-{}", MAX_ID + 1)).is_err());
    }

    #[test]
    fn sysfs_empty_is_empty_set() {
        assert!(CpuSet::parse_sysfs("\n").unwrap().is_empty());
        assert_eq!(CpuSet::parse_sysfs("0-23\n").unwrap().len(), 24);
        assert_eq!(CpuSet::new().to_string(), "");
    }

    #[test]
    fn serde_round_trip() {
        let s = CpuSet::parse("0-2,5").unwrap();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"0-2,5\"");
        let back: CpuSet = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }

    proptest::proptest! {
        #[test]
        fn format_parse_round_trip(ids in proptest::collection::btree_set(0u32..300, 1..40)) {
            let set: CpuSet = ids.iter().copied().collect();
            let text = set.to_string();
            let back = CpuSet::parse(&text).unwrap();
            proptest::prop_assert_eq!(&back, &set);
            // Canonical: no run of consecutive ids is split.
            for w in back.ranges().windows(2) {
                proptest::prop_assert!(w[0].1 + 1 < w[1].0);
            }
        }

        #[test]
        fn parse_never_panics(s in "[0-9,^ -]{0,20}") {
            let _ = CpuSet::parse(&s);
        }
    }
}
