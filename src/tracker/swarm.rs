//! How a reply's peer quota is split between the address families.

/// How many peers of each family an HTTP reply carries, as upstream splits
/// them: each family first gets up to a quarter of `numwant`, the rest is
/// shared in proportion to what each family has left (fixed point, scale
/// 1024), and a slot lost to rounding goes to IPv6, then IPv4.
pub fn split_quota(numwant: usize, have4: usize, have6: usize) -> (usize, usize) {
    if have4 + have6 <= numwant {
        return (have4, have6);
    }
    let mut take4 = (numwant / 4).min(have4);
    let mut take6 = (numwant / 4).min(have6);
    let rest = (numwant - take4 - take6) as u64;
    let (left4, left6) = ((have4 - take4) as u64, (have6 - take6) as u64);
    let scale = (rest << 10) / (left4 + left6).max(1);
    take4 += ((left4 * scale) >> 10) as usize;
    take6 += ((left6 * scale) >> 10) as usize;
    if take4 + take6 < numwant && take6 < have6 {
        take6 += 1;
    }
    if take4 + take6 < numwant && take4 < have4 {
        take4 += 1;
    }
    (take4.min(have4), take6.min(have6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_split() {
        assert_eq!(split_quota(50, 10, 5), (10, 5));
        assert_eq!(split_quota(50, 100, 0), (50, 0));
        assert_eq!(split_quota(50, 0, 100), (0, 50));
        let (a, b) = split_quota(50, 100, 100);
        assert_eq!(a + b, 50);
        assert!(a >= 12 && b >= 12);
        let (a, b) = split_quota(40, 1000, 20);
        assert_eq!(a + b, 40);
        assert!(b >= 10);
        assert_eq!(split_quota(0, 10, 10), (0, 0));
    }
}
