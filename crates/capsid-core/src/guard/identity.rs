//! Host and process identity: the host name that goes into temporary and lock file names, and
//! whether a process of this host is still alive.

use std::sync::OnceLock;

/// This machine's host name (`localhost` when the system does not say).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut name = read_host_name().unwrap_or_default();
        // Names go into file names: keep them tame.
        name.retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if name.is_empty() {
            "localhost".to_string()
        } else {
            name
        }
    })
}

#[cfg(unix)]
fn read_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(not(unix))]
fn read_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

/// True unless process `pid` of this host is known to be gone (unknown counts as alive, so that
/// nothing of a running process is ever swept).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if p <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
        let rc = unsafe { libc::kill(p, 0) };
        if rc == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}
