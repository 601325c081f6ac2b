//! Panics inside third-party parsers: turned into errors, counted, and kept quiet in the CLI's
//! panic hook while such a call runs.

thread_local! {
    static IN_THIRD_PARTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static CAUGHT_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f`, a call into a third-party parser, turning a panic inside it into `Err(message)`.
/// Use it only around such calls: a panic in capsid's own code is a bug and must stay visible.
/// While `f` runs, [`in_third_party_code`] is true (the CLI's panic hook stays silent then);
/// every caught panic is counted ([`caught_panics`]) so fuzz campaigns can report them.
pub fn catch_third_party_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let before = IN_THIRD_PARTY.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_THIRD_PARTY.with(|c| c.set(before));
    r.map_err(|payload| {
        CAUGHT_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
            .replace('\n', " ")
    })
}

/// True while this thread runs a call wrapped by [`catch_third_party_panic`].
pub fn in_third_party_code() -> bool {
    IN_THIRD_PARTY.with(|c| c.get())
}

/// How many third-party panics this process has caught.
pub fn caught_panics() -> usize {
    CAUGHT_PANICS.load(std::sync::atomic::Ordering::Relaxed)
}
