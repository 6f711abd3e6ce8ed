//! Crash points for chaos tests. With the `crash-points` feature, the process kills itself with
//! SIGKILL when it reaches the point named by `DCS_OPERATOR_CRASH_AT` (`name`, or `name#N` for
//! its N-th passage), so that tests can prove a crash anywhere loses and duplicates nothing.
//! Without the feature (release builds, the image) every point compiles to nothing.

/// Marks a point where a crash must be survivable.
#[inline(always)]
pub fn point(name: &'static str) {
    #[cfg(feature = "crash-points")]
    armed::check(name);
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

#[cfg(feature = "crash-points")]
mod armed {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    static TARGET: Mutex<Option<(String, u64)>> = Mutex::new(None);
    static LOADED: std::sync::Once = std::sync::Once::new();
    static PASSED: AtomicU64 = AtomicU64::new(0);

    pub fn check(name: &str) {
        LOADED.call_once(|| {
            if let Ok(spec) = std::env::var("DCS_OPERATOR_CRASH_AT") {
                let (point, nth) = spec.split_once('#').map_or((spec.as_str(), 1), |(p, n)| (p, n.parse().unwrap_or(1)));
                *TARGET.lock().expect("crash target") = Some((point.to_owned(), nth));
            }
        });
        let target = TARGET.lock().expect("crash target");
        let Some((point, nth)) = target.as_ref() else { return };
        if point == name && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("crash point {name} reached: killing the process");
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            std::process::abort();
        }
    }
}
