//! A rate-1/3 convolutional code (constraint length 7, generators 133/171/165 octal) with
//! soft-decision Viterbi decoding. Soft values are positive for a 1 bit and negative for a 0;
//! their magnitude is the confidence, so weak chips (e.g. from a heavily compressed tile)
//! count for less than strong ones.

/// Constraint length.
const K: usize = 7;
/// Number of encoder states.
const STATES: usize = 1 << (K - 1);
/// Generator polynomials (octal 133, 171, 165).
const POLYS: [u32; 3] = [0o133, 0o171, 0o165];
/// Coded bits per input bit.
pub const RATE_INV: usize = POLYS.len();
/// Zero bits appended to return the encoder to state 0.
pub const TAIL: usize = K - 1;

fn outputs(reg: u32) -> [u8; RATE_INV] {
    std::array::from_fn(|k| ((reg & POLYS[k]).count_ones() & 1) as u8)
}

/// Encodes bits (0/1), appending the zero tail; returns `(bits + TAIL) × 3` coded bits.
pub fn encode(bits: &[u8]) -> Vec<u8> {
    let mut state = 0u32;
    let mut out = Vec::with_capacity((bits.len() + TAIL) * RATE_INV);
    for &b in bits.iter().chain(std::iter::repeat_n(&0u8, TAIL)) {
        let reg = (u32::from(b & 1) << (K - 1)) | state;
        out.extend_from_slice(&outputs(reg));
        state = reg >> 1;
    }
    out
}

/// Number of coded bits for `n` input bits.
pub fn coded_len(n: usize) -> usize {
    (n + TAIL) * RATE_INV
}

/// Decodes soft values of `coded_len(n)` coded bits into `n` bits (maximum-likelihood path that
/// ends in state 0). Returns `None` when the length does not fit.
pub fn decode(soft: &[f32], n: usize) -> Option<Vec<u8>> {
    if soft.len() != coded_len(n) {
        return None;
    }
    let steps = n + TAIL;
    let mut metric = [f32::NEG_INFINITY; STATES];
    metric[0] = 0.0;
    // Survivor: for each step and next state, the previous state (input bit = top state bit).
    let mut survivors = vec![[0u8; STATES]; steps];
    let table: Vec<[u8; RATE_INV]> = (0..(1u32 << K)).map(outputs).collect();
    for (t, survivor) in survivors.iter_mut().enumerate() {
        let chunk = &soft[t * RATE_INV..(t + 1) * RATE_INV];
        let mut next = [f32::NEG_INFINITY; STATES];
        let bits: &[u32] = if t >= n { &[0] } else { &[0, 1] };
        for (s, &m) in metric.iter().enumerate() {
            if m == f32::NEG_INFINITY {
                continue;
            }
            for &b in bits {
                let reg = (b << (K - 1)) | s as u32;
                let out = &table[reg as usize];
                let bm: f32 = out
                    .iter()
                    .zip(chunk)
                    .map(|(o, v)| if *o == 1 { *v } else { -*v })
                    .sum();
                let ns = (reg >> 1) as usize;
                if m + bm > next[ns] {
                    next[ns] = m + bm;
                    survivor[ns] = s as u8;
                }
            }
        }
        metric = next;
    }
    let mut state = 0usize;
    let mut bits = vec![0u8; steps];
    for t in (0..steps).rev() {
        bits[t] = (state >> (K - 2)) as u8 & 1;
        state = survivors[t][state] as usize;
    }
    bits.truncate(n);
    Some(bits)
}

/// Decodes like [`decode`], but returns up to `list` distinct paths that end in state 0, best
/// metric first (parallel list Viterbi: each state keeps its `list` best paths, and the two
/// sorted lists that reach a state are merged). The first path is [`decode`]'s. A caller that
/// tests each path with a check code counts every path it tests. At most 256 paths. `None` when
/// the length does not fit or `list` is 0.
pub fn decode_list(soft: &[f32], n: usize, list: usize) -> Option<Vec<Vec<u8>>> {
    if soft.len() != coded_len(n) || list == 0 {
        return None;
    }
    // Ranks are stored in a byte.
    let l = list.min(256);
    let steps = n + TAIL;
    let mut metric = vec![f32::NEG_INFINITY; STATES * l];
    metric[0] = 0.0;
    let mut next = vec![f32::NEG_INFINITY; STATES * l];
    // Per step, next state and rank: the previous state and its rank.
    let mut back_state = vec![0u8; steps * STATES * l];
    let mut back_rank = vec![0u8; steps * STATES * l];
    let table: Vec<[u8; RATE_INV]> = (0..(1u32 << K)).map(outputs).collect();
    for t in 0..steps {
        let chunk = &soft[t * RATE_INV..(t + 1) * RATE_INV];
        next.fill(f32::NEG_INFINITY);
        for ns in 0..STATES {
            // The register that enters `ns` is (ns << 1) | low; its top bit is the input bit,
            // which the tail forces to 0.
            if t >= n && (ns >> (K - 2)) & 1 == 1 {
                continue;
            }
            let branch = |low: usize| {
                let reg = (ns << 1) | low;
                let bm: f32 = table[reg]
                    .iter()
                    .zip(chunk)
                    .map(|(o, v)| if *o == 1 { *v } else { -*v })
                    .sum();
                (reg & (STATES - 1), bm)
            };
            let ((s0, b0), (s1, b1)) = (branch(0), branch(1));
            let (m0, m1) = (&metric[s0 * l..][..l], &metric[s1 * l..][..l]);
            let out = &mut next[ns * l..][..l];
            let base = (t * STATES + ns) * l;
            let (bs, br) = (&mut back_state[base..][..l], &mut back_rank[base..][..l]);
            // Merge the two predecessors' sorted lists, each shifted by its branch metric (an
            // empty entry is −∞ and stays −∞, so it sorts last).
            let (mut i, mut j) = (0usize, 0usize);
            for r in 0..l {
                let a = if i < l { m0[i] + b0 } else { f32::NEG_INFINITY };
                let b = if j < l { m1[j] + b1 } else { f32::NEG_INFINITY };
                if a == f32::NEG_INFINITY && b == f32::NEG_INFINITY {
                    break;
                }
                if a >= b {
                    (out[r], bs[r], br[r]) = (a, s0 as u8, i as u8);
                    i += 1;
                } else {
                    (out[r], bs[r], br[r]) = (b, s1 as u8, j as u8);
                    j += 1;
                }
            }
        }
        std::mem::swap(&mut metric, &mut next);
    }
    let mut out = Vec::new();
    // State 0's ranks (its lists are sorted, so the first empty one ends them).
    for (r0, &m) in metric[..l].iter().enumerate() {
        if m == f32::NEG_INFINITY {
            break;
        }
        let (mut state, mut rank) = (0usize, r0);
        let mut bits = vec![0u8; steps];
        for t in (0..steps).rev() {
            bits[t] = (state >> (K - 2)) as u8 & 1;
            let at = (t * STATES + state) * l + rank;
            state = usize::from(back_state[at]);
            rank = usize::from(back_rank[at]);
        }
        bits.truncate(n);
        out.push(bits);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_soft(coded: &[u8]) -> Vec<f32> {
        coded
            .iter()
            .map(|b| if *b == 1 { 1.0 } else { -1.0 })
            .collect()
    }

    #[test]
    fn clean_round_trip() {
        let bits: Vec<u8> = (0..96).map(|i| ((i * 7 + 3) % 5 % 2) as u8).collect();
        let coded = encode(&bits);
        assert_eq!(coded.len(), coded_len(96));
        assert_eq!(decode(&to_soft(&coded), 96), Some(bits));
        assert_eq!(decode(&to_soft(&coded), 95), None);
    }

    #[test]
    fn corrects_scattered_errors_and_uses_confidence() {
        let bits: Vec<u8> = (0..96).map(|i| ((i * 13 + 1) % 3 % 2) as u8).collect();
        let coded = encode(&bits);
        let mut soft = to_soft(&coded);
        // Flip every 9th coded bit (11 % of them): hard errors a rate-1/3 code corrects.
        for v in soft.iter_mut().step_by(9) {
            *v = -*v;
        }
        assert_eq!(decode(&soft, 96), Some(bits.clone()));
        // Many errors, but marked as weak: still decoded from the confident majority.
        let mut soft = to_soft(&coded);
        for (i, v) in soft.iter_mut().enumerate() {
            if i % 4 == 0 {
                *v *= -0.2;
            }
        }
        assert_eq!(decode(&soft, 96), Some(bits));
    }

    #[test]
    fn list_decoding_starts_with_the_viterbi_path_and_lists_distinct_paths() {
        let bits: Vec<u8> = (0..96).map(|i| ((i * 11 + 5) % 7 % 2) as u8).collect();
        let coded = encode(&bits);
        // Noisy soft values (deterministic), enough errors that the best path may be wrong.
        let soft: Vec<f32> = to_soft(&coded)
            .iter()
            .enumerate()
            .map(|(i, v)| v + 1.6 * (((i * 7919 + 13) % 101) as f32 / 50.0 - 1.0))
            .collect();
        let list = decode_list(&soft, 96, 16).expect("length fits");
        assert_eq!(list.len(), 16);
        assert_eq!(Some(list[0].clone()), decode(&soft, 96));
        for (i, a) in list.iter().enumerate() {
            assert_eq!(a.len(), 96);
            assert!(list[..i].iter().all(|b| b != a), "path {i} repeats");
        }
        // Metrics come out best first: the correlation of each re-encoded path never rises.
        let corr: Vec<f32> = list
            .iter()
            .map(|p| {
                encode(p)
                    .iter()
                    .zip(&soft)
                    .map(|(o, v)| if *o == 1 { *v } else { -*v })
                    .sum()
            })
            .collect();
        assert!(corr.windows(2).all(|w| w[0] >= w[1] - 1e-3));
        // Clean input: the true path first.
        assert_eq!(decode_list(&to_soft(&coded), 96, 4).expect("fits")[0], bits);
        assert_eq!(decode_list(&soft, 95, 4), None);
        assert_eq!(decode_list(&soft, 96, 0), None);
    }
}
