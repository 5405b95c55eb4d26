//! Picks the next token from logits: repeat penalty, top-k, top-p, min-p, temperature, seeded draw.
//!
//! The chain follows llama.cpp's default order (penalties, top-k, top-p, min-p, temperature,
//! draw), so the same settings mean the same thing as in llama.cpp. It runs once per generated
//! token over a 262 144-entry vocabulary, so nothing sorts the whole vocabulary: top-k keeps a
//! small heap, min-p is a threshold in logit space, and top-p buckets logits so it sorts only the
//! bucket where the mass crosses p.

use crate::{EngineError, Result};
use std::cmp::Ordering;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SamplingParams {
    /// 0 (or less) means greedy: the highest logit, ties to the lowest id.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest most-likely set whose probability reaches p; 1.0 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0.0 keeps all.
    pub min_p: f32,
    /// llama.cpp's repeat penalty: positive logits of recent tokens are divided by it, negative
    /// ones multiplied. 1.0 is off.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the penalty looks at; 0 is off.
    pub repeat_last_n: usize,
    /// Seeds the draw: the same seed, logits and history give the same tokens.
    pub seed: u64,
}

impl Default for SamplingParams {
    /// Gemma's recommended settings. The seed is fixed (0) so runs are reproducible; use
    /// [`SamplingParams::random_seed`] for varied answers.
    fn default() -> Self {
        Self { temperature: 1.0, top_k: 64, top_p: 0.95, min_p: 0.0, repeat_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

impl SamplingParams {
    /// Always the most likely token.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, repeat_last_n: 0, seed: 0 }
    }

    /// A seed from the clock, for callers that want a different answer each time.
    pub fn random_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        splitmix64(&mut (nanos ^ ((std::process::id() as u64) << 32)))
    }

    /// Checks settings that come from users: a clear error instead of silently odd sampling.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(EngineError::InvalidArgument(what));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!("temperature must be a finite number >= 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad(format!("repeat_penalty must be a finite number > 0, got {}", self.repeat_penalty));
        }
        Ok(())
    }
}

/// Holds the settings, the random state and reusable buffers (no per-token allocation once warm).
pub struct Sampler {
    params: SamplingParams,
    rng: u64,
    logits: Vec<f32>,
    candidates: Vec<(u32, f32)>,
    penalized: Vec<u32>,
    buckets: Vec<f64>,
}

impl Sampler {
    /// Out-of-range settings are not rejected here (see [`SamplingParams::validate`]) but read
    /// safely: temperature <= 0 or NaN is greedy, top_p outside (0, 1) and min_p <= 0 are off,
    /// a penalty that is not a positive number is off.
    pub fn new(p: SamplingParams) -> Self {
        let mut rng = p.seed;
        // Warm the state so seeds 0, 1, 2... start far apart.
        splitmix64(&mut rng);
        Self { params: p, rng, logits: Vec::new(), candidates: Vec::new(), penalized: Vec::new(), buckets: Vec::new() }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The next token id for `logits` (one per vocabulary entry). `history` is the ids seen so
    /// far (prompt and generated); its last `repeat_last_n` are penalised. Empty logits give 0.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        if logits.is_empty() {
            log::error!("sampler called with no logits");
            return 0;
        }
        let p = self.params.clone();
        let penalty_on = p.repeat_penalty.is_finite()
            && p.repeat_penalty > 0.0
            && p.repeat_penalty != 1.0
            && p.repeat_last_n > 0
            && !history.is_empty();
        let logits: &[f32] = if penalty_on {
            self.apply_penalty(logits, history);
            &self.logits
        } else {
            logits
        };

        // NaN temperature counts as greedy too.
        if p.temperature.is_nan() || p.temperature <= 0.0 {
            return argmax(logits);
        }

        // Candidates, most likely first once each filter has run.
        let cand = &mut self.candidates;
        cand.clear();
        if p.top_k > 0 && p.top_k < logits.len() {
            top_k_into(logits, p.top_k, cand);
        } else {
            cand.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, finite_or_min(l))));
        }
        let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            // Every logit is -inf or NaN: nothing to weigh, fall back to the lowest id.
            return argmax(logits);
        }

        if p.top_p > 0.0 && p.top_p < 1.0 {
            top_p_retain(cand, max, p.top_p, &mut self.buckets);
        }
        if p.min_p > 0.0 && p.min_p <= 1.0 {
            // p_i >= min_p * p_max  <=>  l_i >= l_max + ln(min_p)
            let threshold = max + p.min_p.ln();
            cand.retain(|c| c.1 >= threshold);
        }

        // Temperature, then a draw from the softmax of what is left.
        let inv_t = 1.0 / p.temperature;
        let mut total = 0.0f64;
        for c in cand.iter_mut() {
            c.1 = ((c.1 - max) * inv_t).exp();
            total += c.1 as f64;
        }
        let target = uniform(&mut self.rng) * total;
        let mut acc = 0.0f64;
        for c in cand.iter() {
            acc += c.1 as f64;
            if acc > target {
                return c.0;
            }
        }
        // Rounding left `target` just past the sum: the last candidate with any weight.
        cand.iter().rev().find(|c| c.1 > 0.0).map(|c| c.0).unwrap_or_else(|| argmax(logits))
    }

    /// Copies the logits and applies llama.cpp's repeat penalty once per distinct recent id.
    fn apply_penalty(&mut self, logits: &[f32], history: &[u32]) {
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        let start = history.len().saturating_sub(self.params.repeat_last_n);
        self.penalized.clear();
        self.penalized.extend_from_slice(&history[start..]);
        self.penalized.sort_unstable();
        self.penalized.dedup();
        let penalty = self.params.repeat_penalty;
        for &id in &self.penalized {
            if let Some(l) = self.logits.get_mut(id as usize) {
                *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
            }
        }
    }
}

/// NaN counts as impossible so one bad logit cannot win or poison the sums.
fn finite_or_min(l: f32) -> f32 {
    if l.is_nan() {
        f32::NEG_INFINITY
    } else {
        l
    }
}

/// Highest logit, ties to the lowest id; NaN never wins (all NaN gives 0).
/// Two simple passes (max, then first match) beat one branchy pass: both vectorise.
fn argmax(logits: &[f32]) -> u32 {
    let best = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    logits.iter().position(|&l| l == best).unwrap_or(0) as u32
}

/// Descending by logit, then ascending id, so equal logits keep a stable order.
fn by_logit_desc(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The k highest logits, sorted most likely first, in one pass with a k-entry min-heap.
fn top_k_into(logits: &[f32], k: usize, out: &mut Vec<(u32, f32)>) {
    use std::collections::BinaryHeap;
    // Heap ordered so its top is the weakest kept entry.
    #[derive(PartialEq)]
    struct Entry(f32, u32);
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, o: &Self) -> Ordering {
            // Weaker = lower logit, or same logit and higher id.
            o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
        }
    }
    let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(k + 1);
    for (i, &l) in logits.iter().enumerate() {
        let l = finite_or_min(l);
        if heap.len() < k {
            heap.push(Entry(l, i as u32));
        } else if let Some(weakest) = heap.peek() {
            // Strictly better only: on a tie the lower id (seen first) stays.
            if l > weakest.0 {
                heap.pop();
                heap.push(Entry(l, i as u32));
            }
        }
    }
    out.extend(heap.into_iter().map(|Entry(l, i)| (i, l)));
    out.sort_unstable_by(by_logit_desc);
}

/// Buckets per nat of logit below the maximum, and how many nats the buckets cover; anything
/// further down shares the last bucket (its mass is below e^-48 of the best token's).
const BUCKETS_PER_NAT: f32 = 64.0;
const BUCKET_NATS: usize = 48;

/// Keeps the smallest most-likely set whose softmax mass reaches `top_p` (at least one).
/// Small sets are sorted; large ones are bucketed by logit so only the bucket where the mass
/// crosses `top_p` gets sorted: O(n) even when the set is most of the vocabulary.
fn top_p_retain(cand: &mut Vec<(u32, f32)>, max: f32, top_p: f32, buckets: &mut Vec<f64>) {
    if cand.len() <= 1024 {
        let total: f64 = cand.iter().map(|c| weight(c.1, max)).sum();
        cand.sort_unstable_by(by_logit_desc);
        let keep = count_to_target(cand, max, top_p as f64 * total).max(1);
        cand.truncate(keep);
        return;
    }
    let n_buckets = BUCKET_NATS * BUCKETS_PER_NAT as usize + 1;
    let bucket_of = |l: f32| (((max - l) * BUCKETS_PER_NAT) as usize).min(n_buckets - 1);
    buckets.clear();
    buckets.resize(n_buckets, 0.0);
    // One exp per candidate: the vocabulary-wide pass is what costs here.
    for c in cand.iter() {
        buckets[bucket_of(c.1)] += weight(c.1, max);
    }
    let target = top_p as f64 * buckets.iter().sum::<f64>();
    // The bucket in which the running mass reaches the target, and the mass above it.
    let mut above = 0.0f64;
    let mut edge = n_buckets - 1;
    for (b, &mass) in buckets.iter().enumerate() {
        if above + mass >= target {
            edge = b;
            break;
        }
        above += mass;
    }
    // Partition in place: [above the edge | edge bucket | dropped]; then sort and cut the edge.
    let mut kept = 0;
    for i in 0..cand.len() {
        if bucket_of(cand[i].1) < edge {
            cand.swap(i, kept);
            kept += 1;
        }
    }
    let mut end = kept;
    for i in kept..cand.len() {
        if bucket_of(cand[i].1) == edge {
            cand.swap(i, end);
            end += 1;
        }
    }
    cand.truncate(end);
    let edge_part = &mut cand[kept..];
    edge_part.sort_unstable_by(by_logit_desc);
    let in_edge = count_to_target(edge_part, max, target - above);
    cand.truncate((kept + in_edge).max(1));
}

/// Unnormalised probability of logit `l` when the best is `max`. f32 `exp` is plenty for
/// weights in (0, 1] and about twice as fast as f64 over a whole vocabulary; sums stay in f64.
fn weight(l: f32, max: f32) -> f64 {
    (l - max).exp() as f64
}

/// How many leading entries of a sorted slice reach `target` mass (all of them if none do).
fn count_to_target(sorted: &[(u32, f32)], max: f32, target: f64) -> usize {
    let mut acc = 0.0f64;
    for (i, c) in sorted.iter().enumerate() {
        acc += weight(c.1, max);
        if acc >= target {
            return i + 1;
        }
    }
    sorted.len()
}

/// SplitMix64: tiny, fast, and the same on every platform, which is all the draw needs.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from the top 53 bits.
fn uniform(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
