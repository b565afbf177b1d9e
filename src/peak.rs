//! The most TIME_WAIT intervals open at once, swept online.
//!
//! Records retire out of time order, so the sweep cannot apply an interval
//! when it arrives; but the tracker knows a time before which no record
//! still to come starts its TIME_WAIT (`Tracker::time_wait_floor`). Up to
//! that floor the sweep is final: starts before it are applied in time
//! order, and only the intervals still open (a heap by end) and those that
//! arrived but start at or after the floor are kept. Memory is then the
//! intervals open at once (rate × TIME_WAIT), not every interval of the
//! capture, and the answer is the same as sorting them all at the end.

use crate::time::Timestamp;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

/// Takes the entry `is` picks from those kept under `i`'s (from, until),
/// and the list once it is empty: the cuts of [`PeakSweep`] are found by
/// the interval they cut.
fn take_one<T, V>(
    map: &mut HashMap<(Timestamp, Timestamp), Vec<V>>,
    i: &Interval<T>,
    is: impl Fn(&V) -> bool,
) -> Option<V> {
    let key = (i.from, i.until);
    let list = map.get_mut(&key)?;
    let taken = list.swap_remove(list.iter().position(is)?);
    if list.is_empty() {
        map.remove(&key);
    }
    Some(taken)
}

/// How many more intervals a full heap of `capacity` makes room for: an
/// eighth more (four at least), not twice as many
/// ([`crate::mem::eighth_more`]; the waiting list grows by the same rule,
/// [`crate::mem::reserve_by_eighth`]). A busy server has a sweep for each of
/// thousands of pairs, each list as long as the most intervals open at
/// once so far; doubling left a quarter of them unused on average, and a
/// longer capture, whose most open at once is a little higher, crossed
/// more doublings.
fn room(capacity: usize) -> usize {
    crate::mem::eighth_more(capacity, 1, 4)
}

/// One interval [from, until) and what the caller wants back of it.
#[derive(Debug, Clone, Copy)]
pub struct Interval<T> {
    pub from: Timestamp,
    pub until: Timestamp,
    pub item: T,
}

impl<T> PartialEq for Interval<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Interval<T> {}
impl<T> PartialOrd for Interval<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Interval<T> {
    /// By end, then start: the heap's order.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.until, self.from).cmp(&(other.until, other.from))
    }
}

/// Peak of concurrently open intervals, when it was first reached and
/// (when asked for) the intervals open at that moment. An interval ending
/// exactly when another starts is closed first.
#[derive(Debug)]
pub struct PeakSweep<T> {
    /// Arrived, not applied yet (they start at or after `applied`).
    pending: Vec<Interval<T>>,
    /// Applied and not ended as of the last start applied.
    open: BinaryHeap<Reverse<Interval<T>>>,
    /// Every start before this has been applied.
    applied: Option<Timestamp>,
    peak: u64,
    peak_at: Option<Timestamp>,
    /// Keep the intervals open at the peak once it is at least this high
    /// (else only count them): `u64::MAX` never, 0 always and for good (a
    /// level of 0 is never raised). A caller whose peaks below some level
    /// can never make a finding spares itself their intervals (most pairs
    /// of a busy server).
    keep_from: u64,
    /// Intervals open at `peak_at` that have ended since.
    ended_at_peak: Vec<Interval<T>>,
    /// Cuts of waiting intervals (see [`PeakSweep::cut`]), by (from,
    /// original end): the new end, applied when the interval is.
    waiting_cuts: HashMap<(Timestamp, Timestamp), Vec<(T, Timestamp)>>,
    /// Open intervals cut short whose original is still in `open`, by
    /// (from, original end): that original is skipped when it comes out,
    /// and `open` counts one too many until then.
    dead: HashMap<(Timestamp, Timestamp), Vec<T>>,
    /// Entries in `dead`.
    dead_count: usize,
}

impl<T: Copy + PartialEq> PeakSweep<T> {
    /// A sweep that only counts: [`PeakSweep::finish`] gives no intervals.
    pub fn counting() -> PeakSweep<T> {
        PeakSweep::keeping_from(u64::MAX)
    }

    /// A sweep that keeps the intervals open at its peak when that peak is
    /// at least `level`.
    pub fn keeping_from(level: u64) -> PeakSweep<T> {
        PeakSweep {
            pending: Vec::new(),
            open: BinaryHeap::new(),
            applied: None,
            peak: 0,
            peak_at: None,
            keep_from: level,
            ended_at_peak: Vec::new(),
            waiting_cuts: HashMap::new(),
            dead: HashMap::new(),
            dead_count: 0,
        }
    }

    /// The interval [from, until) that holds `item` ends at `at` instead
    /// (a 4-tuple taken over by a new incarnation after the interval was
    /// added; the caller cuts only intervals it added). A waiting interval
    /// takes its new end when it is applied; one already applied gets a
    /// shortened copy, and the original is skipped when its end comes. Both
    /// are found by (from, until): no scan.
    pub fn cut(&mut self, from: Timestamp, until: Timestamp, at: Timestamp, item: T) {
        if at >= until || until <= from {
            // Not shorter, or an empty interval, which was never added.
            return;
        }
        if self.applied.is_none_or(|a| from >= a) {
            self.waiting_cuts
                .entry((from, until))
                .or_default()
                .push((item, at));
            return;
        }
        self.dead.entry((from, until)).or_default().push(item);
        self.dead_count += 1;
        self.open.push(Reverse(Interval {
            from,
            until: at.max(from),
            item,
        }));
    }

    /// Whether `i` is the original of a cut interval (and forgets it).
    fn take_dead(&mut self, i: &Interval<T>) -> bool {
        if self.dead_count == 0 || take_one(&mut self.dead, i, |d| *d == i.item).is_none() {
            return false;
        }
        self.dead_count -= 1;
        true
    }

    /// Intervals open now: what `open` holds less the cut originals.
    fn open_count(&self) -> u64 {
        (self.open.len() - self.dead_count) as u64
    }

    /// An interval; an empty one (a 4-tuple reused the instant its
    /// TIME_WAIT began) is never open.
    pub fn add(&mut self, from: Timestamp, until: Timestamp, item: T) {
        if until > from {
            crate::mem::reserve_by_eighth(&mut self.pending, 1, 4);
            self.pending.push(Interval { from, until, item });
        }
    }

    /// No interval still to come starts before `floor`: apply every start
    /// before it.
    pub fn advance(&mut self, floor: Timestamp) {
        if self.applied.is_some_and(|a| a >= floor) {
            return;
        }
        self.applied = Some(floor);
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by_key(|i| i.from);
        let n = pending.partition_point(|i| i.from < floor);
        for i in pending.drain(..n) {
            self.apply(i);
        }
        self.pending = pending;
        // A cut of an interval that was never added (or was added empty)
        // waits for nothing once its start is behind the floor.
        if !self.waiting_cuts.is_empty() {
            self.waiting_cuts.retain(|(from, _), _| *from >= floor);
        }
        // Every start still to come is at or after the floor, and would
        // end these first.
        self.end_until(floor);
    }

    fn apply(&mut self, mut i: Interval<T>) {
        if !self.waiting_cuts.is_empty()
            && let Some((_, at)) = take_one(&mut self.waiting_cuts, &i, |(item, _)| *item == i.item)
        {
            if at <= i.from {
                // Taken over the instant it began: never open.
                return;
            }
            i.until = at;
        }
        self.end_until(i.from);
        if self.open.len() == self.open.capacity() {
            self.open.reserve_exact(room(self.open.capacity()));
        }
        self.open.push(Reverse(i));
        let open = self.open_count();
        if open > self.peak {
            self.peak = open;
            self.peak_at = Some(i.from);
            self.ended_at_peak.clear();
        }
    }

    /// Drops the open intervals that end at or before `t`.
    fn end_until(&mut self, t: Timestamp) {
        while let Some(Reverse(top)) = self.open.peek() {
            if top.until > t {
                break;
            }
            let Reverse(ended) = self.open.pop().expect("peeked");
            if self.take_dead(&ended) {
                // The original of a cut interval: its copy ended already.
                continue;
            }
            if self.peak >= self.keep_from
                && self
                    .peak_at
                    .is_some_and(|p| ended.from <= p && ended.until > p)
            {
                self.ended_at_peak.push(ended);
            }
        }
    }

    /// Keeps the intervals open at every peak from now on, whatever its
    /// height, and for good ([`PeakSweep::raise_keep_from`] no longer
    /// raises the level). Those of the present peak that ended before this
    /// call were not kept if it was below the level: they are missing from
    /// what [`PeakSweep::finish`] gives if no higher peak comes.
    pub fn keep_every_peak(&mut self) {
        self.keep_from = 0;
    }

    /// Keeps the intervals open at a peak only from `level` (when higher
    /// than the level so far, and the sweep does not keep every peak), and
    /// drops those kept for a lower peak.
    pub fn raise_keep_from(&mut self, level: u64) {
        if self.keep_from > 0 && level > self.keep_from {
            self.keep_from = level;
            if self.peak < level {
                self.ended_at_peak = Vec::new();
            }
        }
    }

    /// Applies what is left: the peak, when it was first reached, and the
    /// intervals open then (empty when the peak is below the level given
    /// to [`PeakSweep::keeping_from`]).
    pub fn finish(mut self) -> (u64, Option<Timestamp>, Vec<Interval<T>>) {
        self.pending.sort_unstable_by_key(|i| i.from);
        for i in std::mem::take(&mut self.pending) {
            self.apply(i);
        }
        let mut at_peak = std::mem::take(&mut self.ended_at_peak);
        if let (true, Some(p)) = (self.peak >= self.keep_from, self.peak_at) {
            for Reverse(i) in std::mem::take(&mut self.open) {
                if !self.take_dead(&i) && i.from <= p && i.until > p {
                    at_peak.push(i);
                }
            }
        }
        (self.peak, self.peak_at, at_peak)
    }

    /// A bound on the peak [`PeakSweep::finish`] would give, without
    /// applying what waits: every interval still to be applied starts
    /// after those applied, so at most the intervals open now and all
    /// waiting ones are ever open together. A caller that only wants
    /// peaks above some level skips the finish of sweeps below it.
    pub fn peak_at_most(&self) -> u64 {
        self.peak.max(self.open_count() + self.pending.len() as u64)
    }

    /// Whether intervals wait for the floor to pass their start.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Intervals held in memory (open or waiting for the floor).
    pub fn held(&self) -> usize {
        self.pending.len() + self.open.len() + self.ended_at_peak.len() + self.dead_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    /// The next of a small deterministic sequence (an LCG) from `seed`.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed
    }

    /// The reference: every interval sorted at the end (the code this
    /// replaced): -1 before +1 at the same instant.
    fn batch(iv: &[(i64, i64)]) -> (u64, Option<Timestamp>) {
        let mut ev: Vec<(Timestamp, i8)> = Vec::new();
        for &(f, u) in iv {
            ev.push((t(f), 1));
            ev.push((t(u), -1));
        }
        ev.sort_unstable();
        let (mut open, mut peak, mut at) = (0i64, 0u64, None);
        for (ts, d) in ev {
            open += i64::from(d);
            if open > peak as i64 {
                peak = open as u64;
                at = Some(ts);
            }
        }
        (peak, at)
    }

    #[test]
    fn online_with_a_floor_equals_sorting_everything() {
        // Intervals of 60 s (some cut short by reuse) retired in a shuffled
        // order up to 70 s after they start, the floor trailing 61 s behind.
        let mut iv = Vec::new();
        let mut seed: u64 = 7;
        for i in 0..20_000i64 {
            let x = lcg(&mut seed);
            let from = i * 37 + (x >> 60) as i64;
            let len = if x.is_multiple_of(5) {
                (x >> 40) as i64 % 60_000
            } else {
                60_000
            };
            iv.push((from, from + len));
        }
        let mut sweep: PeakSweep<usize> = PeakSweep::keeping_from(0);
        let mut order: Vec<usize> = (0..iv.len()).collect();
        // Retire each one 60-70 s after its start.
        order.sort_by_key(|&i| iv[i].0 + 60_000 + (i as i64 * 7919) % 10_000);
        let mut max_held = 0;
        for &i in &order {
            let retired_at = iv[i].0 + 60_000 + (i as i64 * 7919) % 10_000;
            sweep.add(t(iv[i].0), t(iv[i].1), i);
            sweep.advance(t(retired_at - 70_001));
            max_held = max_held.max(sweep.held());
        }
        let (peak, at, open) = sweep.finish();
        assert_eq!((peak, at), batch(&iv));
        let p = at.unwrap();
        let mut want: Vec<usize> = (0..iv.len())
            .filter(|&i| t(iv[i].0) <= p && t(iv[i].1) > p)
            .collect();
        let mut got: Vec<usize> = open.iter().map(|i| i.item).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        // About 70 s of starts (37 ms apart) wait or are open at once.
        assert!(max_held < 4000, "held {max_held} of 20000");
    }

    #[test]
    fn an_end_at_a_start_closes_first() {
        let mut s: PeakSweep<()> = PeakSweep::counting();
        s.add(t(0), t(10), ());
        s.add(t(10), t(20), ());
        s.advance(t(5));
        s.add(t(10), t(30), ());
        let (peak, at, _) = s.finish();
        assert_eq!((peak, at), (2, Some(t(10))));
        assert_eq!(batch(&[(0, 10), (10, 20), (10, 30)]), (2, Some(t(10))));
    }

    /// Stopped after any prefix of adds, cuts and floor advances, the
    /// bound is at least the peak the finish then gives: the waiting
    /// intervals can raise it (starts 37 ms apart, all overlapping), the
    /// bound counts them.
    #[test]
    fn the_peak_bound_is_never_below_the_finished_peak() {
        let mut events: Vec<(i64, bool, i64, i64)> = Vec::new();
        let mut seed: u64 = 5;
        for i in 0..400i64 {
            let x = lcg(&mut seed);
            let from = i * 37 + (x >> 60) as i64;
            events.push((from, false, from, from + 60_000));
            if x.is_multiple_of(4) {
                let at = from + 1 + (x >> 40) as i64 % 2_000;
                events.push((at, true, from, from + 60_000));
            }
        }
        events.sort_unstable();
        let mut raised = 0;
        for n in (0..=events.len()).step_by(7) {
            let mut sweep: PeakSweep<i64> = PeakSweep::keeping_from(0);
            for &(at, is_cut, from, until) in &events[..n] {
                if is_cut {
                    sweep.cut(t(from), t(until), t(at), from);
                } else {
                    sweep.add(t(from), t(until), from);
                }
                sweep.advance(t(at - 1_000));
            }
            let (bound, so_far) = (sweep.peak_at_most(), sweep.peak);
            let (peak, _, _) = sweep.finish();
            assert!(
                bound >= peak,
                "after {n} events: bound {bound}, peak {peak}"
            );
            raised += usize::from(peak > so_far);
        }
        // The waiting intervals did raise the peak (else the test shows
        // nothing about counting them).
        assert!(raised > 10, "{raised}");
    }

    #[test]
    fn cutting_intervals_online_equals_sorting_the_cut_ones() {
        // As above, but a fifth of the intervals is cut short after it was
        // added: some still waiting, some applied already.
        let mut iv = Vec::new();
        let mut seed: u64 = 11;
        for i in 0..5_000i64 {
            let x = lcg(&mut seed);
            let from = i * 37 + (x >> 60) as i64;
            iv.push((
                from,
                from + 60_000,
                x.is_multiple_of(5).then_some((x >> 40) as i64 % 60_000),
            ));
        }
        let mut sweep: PeakSweep<usize> = PeakSweep::keeping_from(0);
        // Add each at its start, cut it (if it is cut) 30 s later, with
        // the floor trailing 1 s behind: cuts meet waiting and open ones.
        let mut events: Vec<(i64, bool, usize)> = Vec::new();
        for (i, &(from, _, cut)) in iv.iter().enumerate() {
            events.push((from, false, i));
            if let Some(len) = cut {
                events.push((from + len.max(1), true, i));
            }
        }
        events.sort_unstable();
        for &(at, is_cut, i) in &events {
            let (from, until, _) = iv[i];
            if is_cut {
                sweep.cut(t(from), t(until), t(at), i);
            } else {
                sweep.add(t(from), t(until), i);
            }
            sweep.advance(t(at - 1_000));
        }
        let (peak, at, open) = sweep.finish();
        let cut: Vec<(i64, i64)> = iv
            .iter()
            .map(|&(f, u, c)| (f, c.map_or(u, |len| f + len.max(1))))
            .collect();
        assert_eq!((peak, at), batch(&cut));
        let p = at.unwrap();
        let mut want: Vec<usize> = (0..cut.len())
            .filter(|&i| t(cut[i].0) <= p && t(cut[i].1) > p)
            .collect();
        let mut got: Vec<usize> = open.iter().map(|i| i.item).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    }

    /// A sweep keeps the intervals open at its peak only when the peak
    /// reaches its level: all of them at the level, none above it. Raised
    /// past the peak long after it (its intervals all ended), the sweep
    /// drops what it kept; raised to the peak, it keeps them all. One that
    /// keeps every peak is never raised.
    #[test]
    fn the_intervals_at_the_peak_are_kept_from_the_level() {
        // Dense starts for 55 s, then sparse ones for 555 s.
        let iv: Vec<(i64, i64)> = (0..3_000i64)
            .map(|i| {
                let from = if i < 1_500 {
                    i * 37
                } else {
                    55_500 + (i - 1_500) * 370
                };
                (from, from + 60_000)
            })
            .collect();
        let run = |level: u64, raise: Option<u64>| {
            let mut s: PeakSweep<usize> = PeakSweep::keeping_from(level);
            for (i, &(from, until)) in iv.iter().enumerate() {
                if i == 2_900
                    && let Some(r) = raise
                {
                    s.raise_keep_from(r);
                }
                s.add(t(from), t(until), i);
                s.advance(t(from - 1_000));
            }
            let (peak, _, open) = s.finish();
            let mut kept: Vec<usize> = open.iter().map(|i| i.item).collect();
            kept.sort_unstable();
            (peak, kept)
        };
        let (peak, every) = run(0, None);
        assert!(peak > 1_000 && every.len() as u64 == peak, "{peak}");
        assert!(
            every.iter().all(|&i| i < 1_600),
            "the peak is in the dense part"
        );
        assert_eq!(run(peak, None).1, every);
        assert_eq!(run(peak + 1, None), (peak, Vec::new()));
        assert_eq!(run(1, Some(peak)).1, every);
        assert_eq!(run(1, Some(peak + 1)), (peak, Vec::new()));
        assert_eq!(run(0, Some(peak + 1)).1, every);
    }
}
