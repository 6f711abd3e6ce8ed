//! Crash points for chaos tests. With the `crash-points` feature, the process kills itself with
//! SIGKILL when it reaches the point named by `DCS_OPERATOR_CRASH_AT`, so that tests can prove a
//! crash anywhere loses and duplicates nothing. The variable takes:
//! - `name`, or `name#N` for the N-th passage of that point;
//! - `random:SEED:PERCENT[:name,name…]`: every passage of any point (or of the listed ones) kills
//!   the process with probability PERCENT % (fractions allowed), drawn from a generator seeded with
//!   SEED, so that a run is reproducible. The point, the passage and the seed are logged to stderr
//!   before the kill (`crash point NAME reached (random SEED, passage N): killing the process`).
//!
//! Without the feature (release builds, the image) every point compiles to nothing.

/// Marks a point where a crash must be survivable.
#[inline(always)]
pub fn point(name: &'static str) {
    #[cfg(feature = "crash-points")]
    armed::check(name);
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

/// What `DCS_OPERATOR_CRASH_AT` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The `nth` passage (from 1) of the point `name`.
    Named { name: String, nth: u64 },
    /// Any passage of any point (or of `only`, when not empty) with probability `percent` %.
    Random { seed: u64, percent: f64, only: Vec<String> },
}

impl Target {
    /// Parses the variable's value; `None` for an empty or unusable value (no crash then).
    pub fn parse(spec: &str) -> Option<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return None;
        }
        if let Some(rest) = spec.strip_prefix("random:") {
            let mut parts = rest.splitn(3, ':');
            let seed = parts.next()?.trim().parse().ok()?;
            let percent: f64 = parts.next()?.trim().parse().ok()?;
            if !(0.0..=100.0).contains(&percent) {
                return None;
            }
            let only = parts
                .next()
                .map(|list| list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default();
            return Some(Self::Random { seed, percent, only });
        }
        let (name, nth) = spec.split_once('#').map_or((spec, 1), |(p, n)| (p, n.parse().unwrap_or(1)));
        Some(Self::Named { name: name.to_owned(), nth })
    }
}

/// A small, seeded generator (SplitMix64): reproducible across runs and platforms.
#[derive(Debug, Clone)]
pub struct Draws(u64);

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next draw in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(feature = "crash-points")]
mod armed {
    use super::{Draws, Target};
    use std::sync::Mutex;

    struct Armed {
        target: Target,
        passed: u64,
        draws: Draws,
    }

    static STATE: Mutex<Option<Armed>> = Mutex::new(None);
    static LOADED: std::sync::Once = std::sync::Once::new();

    pub fn check(name: &str) {
        LOADED.call_once(|| {
            let target = std::env::var("DCS_OPERATOR_CRASH_AT").ok().and_then(|s| Target::parse(&s));
            if let Some(target) = target {
                let seed = match &target {
                    Target::Random { seed, .. } => *seed,
                    Target::Named { .. } => 0,
                };
                *STATE.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Armed { target, passed: 0, draws: Draws::new(seed) });
            }
        });
        let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
        let Some(armed) = state.as_mut() else { return };
        let die = match &armed.target {
            Target::Named { name: point, nth } => {
                if point != name {
                    return;
                }
                armed.passed += 1;
                armed.passed == *nth
            }
            Target::Random { seed, percent, only } => {
                if !only.is_empty() && !only.iter().any(|o| o == name) {
                    return;
                }
                armed.passed += 1;
                let hit = armed.draws.next_unit() * 100.0 < *percent;
                if hit {
                    eprintln!(
                        "crash point {name} reached (random {seed}, passage {}): killing the process",
                        armed.passed
                    );
                }
                hit
            }
        };
        if die {
            if matches!(armed.target, Target::Named { .. }) {
                eprintln!("crash point {name} reached: killing the process");
            }
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_random_targets_parse() {
        assert_eq!(Target::parse("created"), Some(Target::Named { name: "created".into(), nth: 1 }));
        assert_eq!(Target::parse("status-written#3"), Some(Target::Named { name: "status-written".into(), nth: 3 }));
        assert_eq!(Target::parse("random:42:7.5"), Some(Target::Random { seed: 42, percent: 7.5, only: vec![] }));
        assert_eq!(
            Target::parse("random:1:50:created,configured"),
            Some(Target::Random { seed: 1, percent: 50.0, only: vec!["created".into(), "configured".into()] })
        );
        assert_eq!(Target::parse("random:x:5"), None);
        assert_eq!(Target::parse("random:1:150"), None);
        assert_eq!(Target::parse(""), None);
    }

    #[test]
    fn draws_are_reproducible_and_near_the_asked_rate() {
        let a: Vec<f64> = {
            let mut d = Draws::new(7);
            (0..5).map(|_| d.next_unit()).collect()
        };
        let b: Vec<f64> = {
            let mut d = Draws::new(7);
            (0..5).map(|_| d.next_unit()).collect()
        };
        assert_eq!(a, b);
        let mut d = Draws::new(99);
        let hits = (0..100_000).filter(|_| d.next_unit() * 100.0 < 10.0).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
    }
}
