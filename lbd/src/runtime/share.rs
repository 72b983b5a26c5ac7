//! How `global.maxconn` is shared between frontends (pure).
//!
//! `global.maxconn` is the total. A frontend with its own `maxconn` is
//! capped there. Frontends without one split what the others did not take
//! in equal parts, so the caps add up to at most the total and no
//! frontend can fill the global pool and starve another (an http
//! frontend full of slow clients no longer stops a tcp frontend next to
//! it). HAProxy gives such a frontend the whole global limit; a fair
//! share keeps one frontend's trouble its own, and an admin who wants a
//! frontend to use more says so with its `maxconn`. When the frontends'
//! own limits add up to more than the total (`lbd check` warns), the ones
//! without a limit get an equal share of the total instead, and the
//! global limit still bounds everything.

/// The connection cap of each frontend, in the order of `own` (each
/// frontend's own `maxconn`, if set).
pub fn frontend_caps(global: u32, own: &[Option<u32>]) -> Vec<u32> {
    let reserved: u64 = own.iter().flatten().map(|&m| u64::from(m)).sum();
    let without = own.iter().filter(|m| m.is_none()).count();
    let share = match u64::try_from(without) {
        Ok(n) if n > 0 => {
            let left = u64::from(global).saturating_sub(reserved) / n;
            let fallback = u64::from(global) / u64::try_from(own.len()).unwrap_or(u64::MAX);
            u32::try_from(if left == 0 { fallback } else { left })
                .unwrap_or(global)
                .max(1)
        }
        _ => global,
    };
    own.iter().map(|m| m.unwrap_or(share)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frontend_without_maxconn_gets_everything() {
        assert_eq!(frontend_caps(20_000, &[None]), [20_000]);
    }

    #[test]
    fn frontends_without_maxconn_split_what_is_left() {
        // 100 total, one frontend takes 40: the other two get 30 each.
        assert_eq!(frontend_caps(100, &[None, Some(40), None]), [30, 40, 30]);
        // Two without a limit: half each, never the whole pool.
        assert_eq!(frontend_caps(10, &[None, None]), [5, 5]);
    }

    #[test]
    fn over_reserved_totals_fall_back_to_an_equal_share() {
        // Own limits already exceed the total: the others get total / count.
        assert_eq!(frontend_caps(10, &[Some(10), None]), [10, 5]);
        assert_eq!(frontend_caps(1, &[Some(1), None, None]), [1, 1, 1]);
    }
}
